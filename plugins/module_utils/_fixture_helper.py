# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""The program backendai_fixture runs in the manager's virtualenv: declared rows, read and written.

Sent to the manager's virtualenv by ``_venv_prelude.program``, which explains how.
"""

import asyncio
import json

try:  # names of the prelude (defined before this source inside the virtualenv)
    from ansible_collections.backendai.cluster.plugins.module_utils._venv_prelude import (
        PAYLOAD,
        SECRETS,
        add_url_secret,
        engine_for,
        fail,
    )
except ImportError:
    pass

import copy
import datetime
import decimal
import enum
import uuid as uuid_mod
from collections.abc import Mapping


def load_models():
    import sqlalchemy as sa
    from ai.backend.manager.models import base as mbase
    from ai.backend.manager.models.base import ensure_all_tables_registered, metadata
    ensure_all_tables_registered()
    return sa, mbase, metadata


def db_url(p):
    config = p["config"]
    if config.endswith(".ini"):
        from alembic.config import Config
        url = Config(config).get_main_option("sqlalchemy.url")
        if not url:
            fail("sqlalchemy.url is not set in the [alembic] section of " + config)
        return url
    from pathlib import Path

    from ai.backend.manager.config.bootstrap import BootstrapConfig
    try:
        cfg = asyncio.run(BootstrapConfig.load_from_file(Path(config)))
    except Exception as exc:
        fail("cannot load the manager configuration {}: {}: {}".format(
            config, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
    url = cfg.db.sqlalchemy_url()
    if url.password:
        SECRETS.add(str(url.password))
    return url.render_as_string(hide_password=False)


NATURAL_KEYS = {
    "resource_presets": [("name", "scaling_group_name")],
    "container_registries": [("registry_name", "project")],
}


def to_plain(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else v
    if isinstance(v, decimal.Decimal):
        return int(v) if v == v.to_integral_value() else str(v.normalize())
    if isinstance(v, enum.Enum):
        return to_plain(v.value)
    if isinstance(v, uuid_mod.UUID):
        return str(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=datetime.timezone.utc)
        return v.astimezone(datetime.timezone.utc).isoformat()
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, datetime.timedelta):
        return to_plain(v.total_seconds())
    if isinstance(v, (bytes, bytearray, memoryview)):
        import base64
        return base64.b64encode(bytes(v)).decode()
    if isinstance(v, Mapping):
        return {str(k): to_plain(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset)):
        return sorted((to_plain(x) for x in v), key=lambda x: json.dumps(x, sort_keys=True))
    if isinstance(v, (list, tuple)):
        return [to_plain(x) for x in v]
    if hasattr(v, "model_dump"):
        return to_plain(v.model_dump(mode="json"))
    if hasattr(v, "to_json"):
        return to_plain(v.to_json())
    return str(v)


class Ctx:
    def __init__(self):
        self.sa, self.mbase, self.metadata = load_models()
        from sqlalchemy.dialects.postgresql.asyncpg import dialect
        self.dialect = dialect()
        from ai.backend.manager.models.hasher.types import PasswordColumn
        self.PasswordColumn = PasswordColumn
        self.SecretColumn = getattr(self.mbase, "SecretColumn", ())

    def table(self, name):
        t = self.metadata.tables.get(name)
        if t is None:
            fail("unknown table {!r} (not in the schema of the installed "
                 "backend.ai-manager)".format(name))
        return t

    def is_password(self, col):
        return isinstance(col.type, self.PasswordColumn)

    def is_secret(self, col):
        return bool(self.SecretColumn) and isinstance(col.type, self.SecretColumn)

    def convert(self, table, col, value):
        """A fixture value as the Python object populate_fixture would bind."""
        if value is None:
            return None
        b = self.mbase
        t = col.type
        sa = self.sa
        try:
            if isinstance(t, sa.DateTime) and isinstance(value, str):
                from dateutil.parser import isoparse
                return isoparse(value)
            if isinstance(t, sa.Interval) and not isinstance(value, datetime.timedelta):
                if isinstance(value, Mapping):
                    return datetime.timedelta(**value)
                return datetime.timedelta(seconds=value)
            if isinstance(t, b.EnumType):
                return t._enum_cls[value] if not isinstance(value, enum.Enum) else value
            if isinstance(t, (b.StrEnumType, b.EnumValueType)):
                return t._enum_cls(value) if not isinstance(value, enum.Enum) else value
            if isinstance(t, b.StructuredJSONObjectColumn):
                return t._schema.from_json(value)
            if isinstance(t, b.StructuredJSONObjectListColumn):
                return [t._schema.from_json(item) for item in value]
            if isinstance(t, b.ResourceSlotColumn):
                from ai.backend.common.types import ResourceSlot
                return value if isinstance(value, ResourceSlot) else ResourceSlot.from_json(value)
            if isinstance(t, b.VFolderHostPermissionColumn):
                from ai.backend.common.types import VFolderHostPermissionMap
                return VFolderHostPermissionMap(value)
            if isinstance(t, b.PydanticColumn):
                return t._schema.model_validate(value)
            if isinstance(t, b.GUID) and isinstance(value, str):
                return uuid_mod.UUID(value)
        except Exception as exc:
            fail("{}.{}: invalid value {!r}: {}: {}".format(
                table.name, col.name, value, type(exc).__name__, exc))
        return value

    def canon(self, col, pyvalue):
        """A comparable JSON form of a Python-level column value."""
        t = col.type
        value = pyvalue
        if pyvalue is not None and isinstance(t, self.sa.types.TypeDecorator):
            try:
                value = t.process_bind_param(pyvalue, self.dialect)
            except Exception:
                value = pyvalue
        plain = to_plain(value)
        if isinstance(t, self.mbase.VFolderHostPermissionColumn) and isinstance(plain, dict):
            plain = {h: sorted(p) if isinstance(p, list) else p for h, p in plain.items()}
        return plain

    def keys(self, table):
        sa = self.sa
        keys = [tuple(c.name for c in table.primary_key)]
        for con in table.constraints:
            if isinstance(con, sa.UniqueConstraint):
                keys.append(tuple(c.name for c in con.columns))
        for ix in table.indexes:
            if ix.unique and ix.dialect_options["postgresql"].get("where") is None:
                keys.append(tuple(c.name for c in ix.columns))
        return [k for k in keys if k]

    def match_key(self, table, row):
        for key in self.keys(table):
            if all(row.get(c) is not None for c in key):
                return {c: row[c] for c in key}
        for key in NATURAL_KEYS.get(table.name, []):
            if row.get(key[0]) is not None:
                return {c: row.get(c) for c in key}
        options = [" + ".join(k) for k in self.keys(table) + NATURAL_KEYS.get(table.name, [])]
        fail("{}: a row needs the columns of one of its keys to be matched ({}); got {}".format(
            table.name, " or ".join(options), ", ".join(sorted(row)) or "no columns"))


def is_ref(value):
    return isinstance(value, dict) and "__ref__" in value


def is_pending(value):
    return isinstance(value, dict) and "__pending__" in value


def describe_ref(spec):
    what = ", ".join("{}={}".format(k, v) for k, v in spec["match"].items())
    return "{}.{} of the row with {}".format(spec["table"], spec["column"], what)


async def resolve_refs(ctx, conn, targets, declared, allow_pending=False):
    """Replace {"__ref__": ...} values in ``targets`` by the referenced column value.

    The value is looked up among the ``declared`` rows first, then in the database. With
    ``allow_pending``, a reference to a declared row that does not exist yet becomes a
    {"__pending__": ...} marker (resolved when that row has been written).
    """
    sa = ctx.sa

    def matches(row, spec):
        return all(str(row.get(k)) == str(v) for k, v in spec["match"].items())

    for name, rows in targets.items():
        for row in rows:
            for column, value in list(row.items()):
                if not is_ref(value):
                    continue
                spec = value["__ref__"]
                found = None
                for other in declared.get(spec["table"], []):
                    candidate = other.get(spec["column"])
                    if matches(other, spec) and candidate is not None and not isinstance(
                            candidate, dict):
                        found = candidate
                        break
                if found is None:
                    t = ctx.table(spec["table"])
                    q = sa.select(t.c[spec["column"]]).where(*[
                        t.c[k] == ctx.convert(t, t.c[k], v) for k, v in spec["match"].items()])
                    res = (await conn.execute(q)).fetchall()
                    if len(res) == 1:
                        found = to_plain(res[0][0])
                if found is None:
                    if allow_pending and any(
                            matches(o, spec) for o in declared.get(spec["table"], [])):
                        row[column] = {"__pending__": describe_ref(spec)}
                        continue
                    fail("{}: cannot find {}: declare that row (with its {}) in the same task "
                         "or create it first".format(name, describe_ref(spec), spec["column"]))
                row[column] = found


async def read_rows(ctx, conn, tables):
    sa = ctx.sa
    out = {}
    for name, rows in tables.items():
        table = ctx.table(name)
        pk = [c.name for c in table.primary_key]
        infos = []
        for row in rows:
            unknown = sorted(set(row) - set(table.c.keys()))
            if unknown:
                fail("{}: no such column(s): {} (columns: {})".format(
                    name, ", ".join(unknown), ", ".join(table.c.keys())))
            key = ctx.match_key(table, row)
            if any(is_pending(v) for v in key.values()):
                found = []  # keyed by a row this run has yet to create
            else:
                cond = [table.c[k].is_not_distinct_from(ctx.convert(table, table.c[k], v))
                        for k, v in key.items()]
                q = sa.select(table).where(*cond)
                found = (await conn.execute(q)).mappings().fetchall()
            if len(found) > 1:
                fail("{}: {} rows match {}; give the primary key ({})".format(
                    name, len(found), key, ", ".join(pk)))
            current_row = found[0] if found else None
            info = {"key": {k: (v["__pending__"] if is_pending(v) else to_plain(v))
                            for k, v in key.items()},
                    "exists": bool(found),
                    "desired": {}, "current": {}, "passwords": {}, "secrets": {}}
            if current_row is not None:
                info["pk"] = {c: to_plain(current_row[c]) for c in pk}
            for column, value in row.items():
                col = table.c[column]
                if ctx.is_password(col):
                    if current_row is not None:
                        stored = current_row[column]
                        state = {"stored": stored}
                        if isinstance(stored, str) and stored.startswith("$2"):
                            try:
                                import bcrypt
                                state["match"] = bool(value is not None and bcrypt.checkpw(
                                    value.encode(), stored.encode()))
                            except Exception:
                                state["match"] = False
                        info["passwords"][column] = state
                    continue
                if ctx.is_secret(col):
                    if current_row is not None:
                        stored = current_row[column]
                        content = getattr(stored, "content", stored)
                        if stored is None:
                            info["secrets"][column] = {"state": "null", "match": value is None}
                        elif isinstance(content, str):
                            info["secrets"][column] = {"state": "plain", "match": content == value}
                        else:
                            info["secrets"][column] = {"state": "encrypted"}
                    continue
                if is_pending(value):
                    info["desired"][column] = "(to be created: {})".format(value["__pending__"])
                else:
                    info["desired"][column] = ctx.canon(col, ctx.convert(table, col, value))
                if current_row is not None:
                    info["current"][column] = ctx.canon(col, current_row[column])
            infos.append(info)
        out[name] = {"pk": pk, "rows": infos}
    return out


def ordered(ctx, names):
    order = {t.name: i for i, t in enumerate(ctx.metadata.sorted_tables)}
    return sorted(names, key=lambda n: order.get(n, len(order)))


CTX = []


def main(p):
    if not CTX:
        CTX.append(Ctx())
    ctx = CTX[0]
    url = db_url(p)
    PAYLOAD["url"] = url
    add_url_secret(url)
    from ai.backend.manager.models.base import populate_fixture
    tables = {name: copy.deepcopy(p["tables"][name]) for name in ordered(ctx, p["tables"])}
    for name in tables:
        ctx.table(name)

    async def go():
        engine = engine_for(url, p.get("timeout", 10))
        try:
            if p["op"] == "write":
                inserts = {n: copy.deepcopy(r) for n, r in p["insert"].items()}
                updates = {n: copy.deepcopy(r) for n, r in p["update"].items()}
                # Table by table in foreign-key order, so that references to rows created
                # earlier in this run resolve.
                for name in ordered(ctx, set(inserts) | set(updates)):
                    async with engine.connect() as conn:
                        await resolve_refs(ctx, conn, {name: inserts.get(name, [])}, tables)
                        await resolve_refs(ctx, conn, {name: updates.get(name, [])}, tables)
                    if inserts.get(name):
                        await populate_fixture(engine, {"__mode": "insert", name: inserts[name]})
                    groups = {}
                    for row in updates.get(name, []):
                        groups.setdefault(tuple(sorted(row)), []).append(row)
                    for rows in groups.values():
                        await populate_fixture(engine, {"__mode": "update", name: rows})
            async with engine.connect() as conn:
                await resolve_refs(ctx, conn, tables, tables, allow_pending=p["op"] == "read")
                return await read_rows(ctx, conn, tables)
        finally:
            await engine.dispose()

    return {"tables": asyncio.run(go()), "order": list(tables)}
