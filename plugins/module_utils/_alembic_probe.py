# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""The program backendai_alembic runs in the service's virtualenv: the schema's revisions.

Sent to the service's virtualenv by ``_venv_prelude.program``; see there.
"""

import asyncio

try:  # in a module; inside the virtualenv the prelude's source comes first instead
    from ansible_collections.backendai.cluster.plugins.module_utils._venv_prelude import (
        PAYLOAD,
        add_url_secret,
        engine_for,
        fail,
        where_of,
    )
except ImportError:
    pass

SCRIPTS = {}


def main(p):
    import sqlalchemy as sa
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    cfg = Config(p["config"])
    url = cfg.get_main_option("sqlalchemy.url")
    if not url:
        fail("sqlalchemy.url is not set in the [alembic] section of " + p["config"])
    PAYLOAD["url"] = url
    add_url_secret(url)

    def inspect(conn):
        tables = sa.inspect(conn).get_table_names()
        current = list(MigrationContext.configure(conn).get_current_heads())
        return tables, current

    async def probe():
        engine = engine_for(url, p.get("timeout", 10))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(inspect)
        finally:
            await engine.dispose()

    tables, current = asyncio.run(probe())
    state = {
        "current": current,
        "tables": len([t for t in tables if t != "alembic_version"]),
        "database": where_of(url),
    }
    if p.get("light"):  # only the database side (after a command ran)
        return state

    graph = _revision_graph(p, cfg)
    heads = sorted(set(graph) - {d for downs in graph.values() for d in downs})
    unknown = [rev for rev in current if rev not in graph]
    pending = []
    if current and not unknown and len(heads) == 1:
        pending = _between(graph, heads[0], current)
    state.update(heads=heads, unknown=unknown, pending=pending)
    return state


def _ancestors(graph, revs):
    seen, todo = set(), list(revs)
    while todo:
        rev = todo.pop()
        if rev not in seen:
            seen.add(rev)
            todo.extend(graph.get(rev, ()))
    return seen


def _between(graph, head, current):
    """The revisions after ``current`` up to ``head``, oldest first."""
    todo = _ancestors(graph, [head]) - _ancestors(graph, current)
    order, done = [], set()
    while todo:
        ready = sorted(r for r in todo if all(d in done or d not in todo for d in graph[r]))
        order.extend(ready)
        done.update(ready)
        todo.difference_update(ready)
    return order


def _scripts_key(cfg):
    """An identity of the installed migration scripts (names, sizes, times of the versions
    directory), or None when it cannot be had without loading them."""
    import hashlib
    import importlib.util
    import os

    location = (cfg.get_main_option("script_location") or "").strip()
    if not location or cfg.get_main_option("version_locations"):
        return None
    try:
        if ":" in location:
            package, sub = location.split(":", 1)
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                return None
            base = os.path.join(next(iter(spec.submodule_search_locations)), sub)
        else:
            base = os.path.abspath(location)
        versions = os.path.join(base, "versions")
        digest = hashlib.sha256(versions.encode())
        for entry in sorted(os.scandir(versions), key=lambda e: e.name):
            if entry.name.endswith(".py") and entry.is_file():
                st = entry.stat()
                digest.update("{} {} {}\n".format(entry.name, st.st_size, st.st_mtime_ns).encode())
        return digest.hexdigest()
    except (ImportError, OSError, ValueError):
        return None


def _revision_graph(p, cfg):
    """revision -> its down revisions, of the migration scripts installed in this virtualenv.

    Loading the scripts imports every revision file (seconds for the manager's hundreds); the
    graph is therefore cached in the virtualenv, keyed by the scripts' identity, and loaded
    again only after the package changed.
    """
    import json
    import os
    import sys

    key = _scripts_key(cfg)
    cache_file = os.path.join(sys.prefix, ".bai-alembic-graph.json")
    if key:
        try:
            with open(cache_file) as fh:
                cached = json.load(fh)
            if cached.get("key") == key:
                return cached["graph"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass
    if p["config"] not in SCRIPTS:
        from alembic.script import ScriptDirectory
        try:
            SCRIPTS[p["config"]] = ScriptDirectory.from_config(cfg)
        except Exception as exc:
            fail("cannot load the migration scripts named by script_location in {}: {}: {}"
                 .format(p["config"], type(exc).__name__, exc))
    graph = {}
    for sc in SCRIPTS[p["config"]].walk_revisions():
        down = sc.down_revision
        if isinstance(down, str):
            down = [down]
        graph[sc.revision] = list(down or ())
    if key and not p.get("check_mode"):
        try:
            tmp = "{}.{}".format(cache_file, os.getpid())
            with open(tmp, "w") as fh:
                json.dump({"key": key, "graph": graph}, fh)
            os.replace(tmp, cache_file)
        except OSError:
            pass
    return graph
