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

    if p["config"] not in SCRIPTS:
        from alembic.script import ScriptDirectory
        try:
            SCRIPTS[p["config"]] = ScriptDirectory.from_config(cfg)
        except Exception as exc:
            fail("cannot load the migration scripts named by script_location in {}: {}: {}"
                 .format(p["config"], type(exc).__name__, exc))
    script = SCRIPTS[p["config"]]
    heads = list(script.get_heads())
    unknown = []
    for rev in current:
        try:
            if script.get_revision(rev) is None:
                unknown.append(rev)
        except Exception:
            unknown.append(rev)
    pending = []
    if current and not unknown and len(heads) == 1:
        steps = script.iterate_revisions(heads[0], tuple(current))
        pending = [s.revision for s in steps if s.revision not in current]
        pending.reverse()
    state.update(heads=heads, unknown=unknown, pending=pending)
    return state
