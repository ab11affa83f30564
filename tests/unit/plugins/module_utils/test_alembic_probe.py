"""The revision graph of backendai_alembic's probe: heads, pending revisions and its cache.

Loading the migration scripts imports every revision file; the probe caches the graph in the
virtualenv, keyed by the names, sizes and times of the versions directory. These tests use a
stand-in for alembic's ScriptDirectory that counts how often the scripts are loaded.
"""

from __future__ import annotations

import json
import sys

import pytest
from ansible_collections.backendai.cluster.plugins.module_utils import _alembic_probe as probe

# base <- a <- b <- m (merge of b and c) <- head;  a <- c
GRAPH = {"base": [], "a": ["base"], "b": ["a"], "c": ["a"], "m": ["b", "c"], "head": ["m"]}


class Script:
    def __init__(self, revision, down):
        self.revision = revision
        self.down_revision = None if not down else (down[0] if len(down) == 1 else tuple(down))


class Scripts:
    loads = 0

    def walk_revisions(self):
        Scripts.loads += 1
        return [Script(r, d) for r, d in GRAPH.items()]


class Cfg:
    def __init__(self, location):
        self.location = location

    def get_main_option(self, name):
        return {"script_location": self.location}.get(name)


@pytest.fixture
def scripts(tmp_path, monkeypatch):
    """A versions directory, an empty virtualenv prefix and the counting stand-in."""
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    for rev in GRAPH:
        (versions / f"{rev}.py").write_text(f"revision = {rev!r}\n")
    prefix = tmp_path / "venv"
    prefix.mkdir()
    monkeypatch.setattr(sys, "prefix", str(prefix))
    Scripts.loads = 0

    def load(p, cfg):
        probe.SCRIPTS.pop(p["config"], None)
        probe.SCRIPTS.setdefault(p["config"], Scripts())
        return probe._revision_graph(p, cfg)

    return {"versions": versions, "prefix": prefix, "cfg": Cfg(str(tmp_path / "migrations")),
            "load": load}


def test_pending_revisions_are_listed_oldest_first_through_a_merge():
    assert probe._between(GRAPH, "head", ["a"]) == ["b", "c", "m", "head"]
    assert probe._between(GRAPH, "head", ["c"]) == ["b", "m", "head"]
    assert probe._between(GRAPH, "head", ["head"]) == []


def test_the_graph_is_loaded_once_then_read_from_the_cache(scripts):
    p = {"config": "/etc/x/alembic.ini"}
    first = scripts["load"](p, scripts["cfg"])
    assert first == GRAPH
    cache = json.loads((scripts["prefix"] / ".bai-alembic-graph.json").read_text())
    assert cache["graph"] == GRAPH
    # Scripts unchanged: the cache answers, the scripts are not loaded again.
    assert scripts["load"](p, scripts["cfg"]) == GRAPH
    assert Scripts.loads == 1


def test_a_changed_versions_directory_loads_the_scripts_again(scripts):
    p = {"config": "/etc/x/alembic.ini"}
    scripts["load"](p, scripts["cfg"])
    (scripts["versions"] / "next.py").write_text("revision = 'next'\n")
    scripts["load"](p, scripts["cfg"])
    assert Scripts.loads == 2


def test_check_mode_writes_no_cache(scripts):
    scripts["load"]({"config": "/etc/x/alembic.ini", "check_mode": True}, scripts["cfg"])
    assert not (scripts["prefix"] / ".bai-alembic-graph.json").exists()


def test_a_corrupt_cache_is_ignored(scripts):
    (scripts["prefix"] / ".bai-alembic-graph.json").write_text("{not json")
    assert scripts["load"]({"config": "/etc/x/alembic.ini"}, scripts["cfg"]) == GRAPH
    assert Scripts.loads == 1
