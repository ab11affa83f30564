"""``ansible-doc -t filter`` shows every filter of the collection, with options and examples."""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import yaml
from conftest import ansible_doc_json

ROOT = pathlib.Path(__file__).resolve().parents[4]
FILTERS = {"to_toml": {"_input", "inline_max_keys"}, "from_toml": {"_input"}}


@pytest.fixture(scope="module")
def docs():
    return ansible_doc_json("filter", ["backendai.cluster." + name for name in FILTERS])


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_is_documented(docs, name):
    entry = docs["backendai.cluster." + name]
    doc = entry["doc"]
    assert doc["name"] == name
    assert doc["short_description"]
    assert set(doc["options"]) == FILTERS[name]
    assert all(opt.get("description") and opt.get("type") for opt in doc["options"].values())
    assert entry["return"]["_value"]["type"]
    examples = yaml.safe_load(entry["examples"])
    assert any(f"backendai.cluster.{name}" in json.dumps(task) for task in examples)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_filter_plugin_provides_the_documented_name(name):
    sys.path.insert(0, str(ROOT / ".collections"))
    try:
        from ansible_collections.backendai.cluster.plugins.filter.toml import FilterModule
    finally:
        sys.path.pop(0)
    assert name in FilterModule().filters()
