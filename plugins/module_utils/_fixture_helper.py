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
                        row[column] = {"__pending__": describe_ref(spec), "match": spec["match"]}
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


# The access graph (Backend.AI 26.9 and later). Creating a user through the manager writes,
# besides the row, a personal project and the user's place on each project's roster; rows a
# fixture inserts get neither. The manager ships the code that fills these in for rows written
# outside its creation path (two data migrations of 26.9.0); it is loaded from the installed
# package and run after the rows are written. Only the roster edge of a general project has no
# such code upstream (the association table stopped being read for it), so it is written here
# as the manager's own roster write does: the project's node holds the user's node.
GRAPH_REVISIONS = {
    "personal": "c7a4f1e9b023",  # backfill(conn): one personal project per user
    "graph": "dafe06a6c763",  # put_every_entity_in_the_graph(conn): nodes, edges, roles
}


def has_graph(ctx):
    return "virtual_entities" in ctx.metadata.tables and "creator_id" in ctx.table("groups").c


def load_revision(key):
    import glob
    import importlib.util
    import os

    import ai.backend.manager.models as models_pkg
    rev = GRAPH_REVISIONS[key]
    pattern = os.path.join(models_pkg.__path__[0], "alembic", "versions", rev + "_*.py")
    found = glob.glob(pattern)
    if len(found) != 1:
        fail("the installed backend.ai-manager has no migration {} ({}), which this module "
             "runs to give fixture users what the manager's own user creation writes; "
             "use a manager version this collection supports".format(rev, key))
    spec = importlib.util.spec_from_file_location("bai_graph_" + key, found[0])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


async def graph_gaps(ctx, conn, tables):
    """What the declared users lack of the graph rows the manager's creation path writes:
    a personal project per user, a roster edge per declared project membership."""
    gaps = {"personal_projects": [], "rosters": []}
    if not has_graph(ctx):
        return gaps
    sa = ctx.sa
    users = ctx.table("users")
    groups = ctx.table("groups")
    for row in tables.get("users", []):
        email = row.get("email")
        if email is None:
            continue
        uid = (await conn.execute(sa.select(users.c.uuid).where(users.c.email == email))).scalar()
        if uid is not None:
            have = (await conn.execute(sa.select(groups.c.id).where(
                groups.c.type == ctx.convert(groups, groups.c.type, "personal"),
                groups.c.creator_id == uid))).first()
            if have is not None:
                continue
        gaps["personal_projects"].append(email)
    # Labels: the declared rows first (in check mode they may not exist yet), then the DB.
    emails = {str(r["uuid"]): r["email"] for r in tables.get("users", [])
              if r.get("uuid") is not None and r.get("email") and not is_pending(r["uuid"])}
    names = {str(r["id"]): r["name"] for r in tables.get("groups", [])
             if r.get("id") is not None and r.get("name") and not is_pending(r["id"])}
    for row in tables.get("association_groups_users", []):
        uid, gid = row.get("user_id"), row.get("group_id")
        if is_pending(uid) or is_pending(gid) or uid is None or gid is None:
            edge = None
        else:
            edge = (await conn.execute(sa.text(ROSTER_EDGE_EXISTS), {
                "project": str(gid), "user": str(uid)})).first()
        if edge is not None:
            continue
        if not is_pending(uid) and uid is not None and str(uid) not in emails:
            emails[str(uid)] = (await conn.execute(
                sa.select(users.c.email).where(users.c.uuid == uid))).scalar()
        if not is_pending(gid) and gid is not None and str(gid) not in names:
            names[str(gid)] = (await conn.execute(
                sa.select(groups.c.name).where(groups.c.id == gid))).scalar()
        gaps["rosters"].append({
            "user": pending_label(uid, "email") if is_pending(uid)
            else emails.get(str(uid)) or str(uid),
            "project": pending_label(gid, "name") if is_pending(gid)
            else names.get(str(gid)) or str(gid),
        })
    return gaps


def pending_label(value, column):
    """A row this run has yet to create, named by the column it is declared with."""
    return str((value.get("match") or {}).get(column) or value["__pending__"])


ROSTER_EDGE_EXISTS = """
    SELECT 1 FROM entity_memberships m
    JOIN virtual_entities p ON p.id = m.virtual_entity_id
         AND p.entity_type = 'project' AND p.entity_id = CAST(:project AS uuid)
    JOIN virtual_entities u ON u.id = m.member_entity_id
         AND u.entity_type = 'user' AND u.entity_id = CAST(:user AS uuid)
"""

ADD_ROSTER_EDGE = """
    INSERT INTO entity_memberships (virtual_entity_id, member_entity_id, capped)
    SELECT p.id, u.id, TRUE FROM virtual_entities p, virtual_entities u
    WHERE p.entity_type = 'project' AND p.entity_id = CAST(:project AS uuid)
      AND u.entity_type = 'user' AND u.entity_id = CAST(:user AS uuid)
    ON CONFLICT (virtual_entity_id, member_entity_id) DO NOTHING
"""


def complete_graph(ctx, sync_conn, tables):
    """Personal projects, roster edges, then the manager's whole-graph pass (nodes, the
    edges of the scopes each row was created in, roster caps, preset roles and grants),
    which leaves rows already in the graph as they are."""
    sa = ctx.sa
    load_revision("personal").backfill(sync_conn)
    graph = load_revision("graph")
    # The nodes first: a project or user this run inserted has one already (the fixture
    # loader writes it), one written by other means may not.
    graph._add_nodes(sync_conn, tuple(
        s for s in graph.NODE_SOURCES if s[1] in ("groups", "users")))
    for row in tables.get("association_groups_users", []):
        sync_conn.execute(sa.text(ADD_ROSTER_EDGE), {
            "project": str(row["group_id"]), "user": str(row["user_id"])})
    graph.put_every_entity_in_the_graph(sync_conn)


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
                if p.get("graph") and has_graph(ctx):
                    async with engine.begin() as conn:
                        await resolve_refs(ctx, conn, tables, tables)
                        await conn.run_sync(lambda c: complete_graph(ctx, c, tables))
            async with engine.connect() as conn:
                await resolve_refs(ctx, conn, tables, tables, allow_pending=p["op"] == "read")
                return await read_rows(ctx, conn, tables), await graph_gaps(ctx, conn, tables)
        finally:
            await engine.dispose()

    rows, gaps = asyncio.run(go())
    return {"tables": rows, "graph": gaps, "order": list(tables)}
