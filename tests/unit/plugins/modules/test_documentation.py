"""Every module's documentation matches what the module accepts and is complete.

The documentation is read the way users read it (``ansible-doc --json``, doc fragments merged);
the argument spec is the one the module really builds (AnsibleModule is stopped right after it
receives the spec). Options, types, defaults, choices, required flags and aliases must agree,
EXAMPLES must be a YAML list of tasks that call the module, and RETURN must describe every key
(type and description; 'returned' at the top level).
"""

from __future__ import annotations

import importlib
import pathlib

import pytest
import yaml
from ansible.module_utils import basic
from conftest import ansible_doc_json

ROOT = pathlib.Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (ROOT / "plugins/modules").glob("*.py") if p.stem != "__init__")
FQCN = "backendai.cluster."
PACKAGE = "ansible_collections.backendai.cluster.plugins.modules"


@pytest.fixture(scope="module")
def docs():
    return ansible_doc_json("module", [FQCN + m for m in MODULES])


class _SpecSeen(Exception):
    def __init__(self, spec):
        super().__init__("argument spec")
        self.spec = spec


def argument_spec(name, monkeypatch):
    def stop(self, argument_spec, **kwargs):
        raise _SpecSeen(argument_spec)

    monkeypatch.setattr(basic.AnsibleModule, "__init__", stop)
    module = importlib.import_module(f"{PACKAGE}.{name}")
    with pytest.raises(_SpecSeen) as seen:
        module.main()
    return seen.value.spec


def compare(doc_options, spec, where, problems):
    for name in sorted(set(doc_options) | set(spec)):
        path = f"{where}{name}"
        if name not in spec:
            problems.append(f"{path}: documented but not accepted")
            continue
        if name not in doc_options:
            problems.append(f"{path}: accepted but not documented")
            continue
        doc, arg = doc_options[name], spec[name]
        if not doc.get("description"):
            problems.append(f"{path}: no description")
        if doc.get("type", "str") != arg.get("type", "str"):
            problems.append(f"{path}: type {doc.get('type', 'str')} documented, "
                            f"{arg.get('type', 'str')} accepted")
        if doc.get("default") != arg.get("default"):
            problems.append(f"{path}: default {doc.get('default')!r} documented, "
                            f"{arg.get('default')!r} accepted")
        if bool(doc.get("required")) != bool(arg.get("required")):
            problems.append(f"{path}: required={bool(doc.get('required'))} documented")
        if list(doc.get("choices") or []) != list(arg.get("choices") or []):
            problems.append(f"{path}: choices {doc.get('choices')} documented, "
                            f"{arg.get('choices')} accepted")
        if sorted(doc.get("aliases") or []) != sorted(arg.get("aliases") or []):
            problems.append(f"{path}: aliases {doc.get('aliases')} documented, "
                            f"{arg.get('aliases')} accepted")
        if arg.get("type") == "list" and doc.get("elements") != arg.get("elements"):
            problems.append(f"{path}: elements {doc.get('elements')} documented, "
                            f"{arg.get('elements')} accepted")
        if arg.get("options") or doc.get("suboptions"):
            compare(doc.get("suboptions") or {}, arg.get("options") or {}, path + ".", problems)


@pytest.mark.parametrize("name", MODULES)
def test_documented_options_match_the_argument_spec(name, docs, monkeypatch):
    doc = docs[FQCN + name]["doc"]
    spec = argument_spec(name, monkeypatch)
    problems = []
    compare(doc.get("options") or {}, spec, "", problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", MODULES)
def test_documentation_is_complete(name, docs):
    entry = docs[FQCN + name]
    doc = entry["doc"]
    assert doc.get("short_description"), "short_description missing"
    assert doc.get("description"), "description missing"
    assert doc.get("author"), "author missing"
    assert doc.get("version_added"), "version_added missing"
    attributes = doc.get("attributes") or {}
    for attribute in ("check_mode", "diff_mode", "idempotent"):
        assert attributes.get(attribute, {}).get("support") in ("full", "partial", "none"), (
            f"attribute {attribute} missing")
    assert attributes["check_mode"]["support"] == "full", "every module supports check mode"


@pytest.mark.parametrize("name", MODULES)
def test_examples_are_tasks_that_call_the_module(name, docs):
    examples = yaml.safe_load(docs[FQCN + name]["examples"])
    assert isinstance(examples, list) and examples, "EXAMPLES is not a YAML list of tasks"

    def calls(task):
        if FQCN + name in task:
            return True
        return any(calls(t) for key in ("block", "rescue", "always") for t in task.get(key, []))

    assert all(isinstance(t, dict) and t.get("name") for t in examples), "every example has a name"
    assert any(calls(t) for t in examples), f"no example calls {FQCN}{name}"


@pytest.mark.parametrize("name", MODULES)
def test_return_values_are_described(name, docs):
    returned = docs[FQCN + name]["return"]
    assert returned, "RETURN is empty"

    def check(values, where):
        for key, value in values.items():
            assert value.get("description"), f"{where}{key}: no description"
            # Ansible requires 'returned' at the top level only (contained keys inherit it).
            assert where or value.get("returned"), f"{key}: no 'returned'"
            assert value.get("type"), f"{where}{key}: no type"
            if value.get("contains"):
                check(value["contains"], f"{where}{key}.")

    check(returned, "")
