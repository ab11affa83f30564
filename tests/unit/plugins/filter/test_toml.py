"""Unit tests for the to_toml / from_toml filters (plugins/filter/toml.py)."""

from __future__ import annotations

import datetime
import importlib.util
import math
from pathlib import Path

import pytest
import tomllib
from ansible.errors import AnsibleFilterError

ANY = "0.0.0.0"  # noqa: S104 (the value a bind address takes)
_PLUGIN = Path(__file__).resolve().parents[4] / "plugins" / "filter" / "toml.py"
_spec = importlib.util.spec_from_file_location("backendai_toml_filter", _PLUGIN)
toml_filter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toml_filter)
to_toml = toml_filter.to_toml
from_toml = toml_filter.from_toml


def roundtrip(data, **kwargs):
    text = to_toml(data, **kwargs)
    assert tomllib.loads(text) == data, text
    return text


# --- The shapes the manager role renders ---------------------------------------------------------

MANAGER = {
    "etcd": {
        "namespace": "local",
        "addr": {"host": "10.20.30.10", "port": 8120},
        "user": "",
        "password": "",
    },
    "db": {
        "type": "postgresql",
        "addrs": [{"host": "10.20.30.10", "port": 8100}],
        "name": "backend",
        "user": "postgres",
        "password": 'p"a\\ss',
        "pool-recycle": 50.0,
        "pool-pre-ping": True,
    },
    "manager": {
        "num-proc": 4,
        "service-addr": {"host": ANY, "port": 8081},
        "internal-addr": {"host": ANY, "port": 18080},
        "rpc-auth-manager-keypair": "/home/bai/manager/fixtures/manager.key_secret",
        "pid-file": "/home/bai/manager/manager.pid",
        "ipc-base-path": "/home/bai/manager/tmp/backend.ai/ipc",
        "heartbeat-timeout": 40.0,
        "hide-agents": True,
        "agent-selection-resource-priority": ["cuda", "cpu", "mem"],
        "distributed-lock": "pg_advisory",
    },
    "logging": {
        "level": "INFO",
        "drivers": ["console", "file"],
        "console": {"colored": False, "format": "simple"},
        "file": {
            "path": "/home/bai/manager/logs",
            "filename": "manager.log",
            "backup-count": 10,
            "rotation-size": "10M",
        },
        "pkg-ns": {
            "": "WARNING",
            "aiotools": "INFO",
            "aiohttp": "INFO",
            "ai.backend": "INFO",
            "alembic": "INFO",
            "sqlalchemy": "WARNING",
        },
    },
    "debug": {"enabled": False, "asyncio": False},
}

MANAGER_TOML = """\
[etcd]
namespace = "local"
addr = { host = "10.20.30.10", port = 8120 }
user = ""
password = ""

[db]
type = "postgresql"
name = "backend"
user = "postgres"
password = "p\\"a\\\\ss"
pool-recycle = 50.0
pool-pre-ping = true

[[db.addrs]]
host = "10.20.30.10"
port = 8100

[manager]
num-proc = 4
service-addr = { host = "0.0.0.0", port = 8081 }
internal-addr = { host = "0.0.0.0", port = 18080 }
rpc-auth-manager-keypair = "/home/bai/manager/fixtures/manager.key_secret"
pid-file = "/home/bai/manager/manager.pid"
ipc-base-path = "/home/bai/manager/tmp/backend.ai/ipc"
heartbeat-timeout = 40.0
hide-agents = true
agent-selection-resource-priority = ["cuda", "cpu", "mem"]
distributed-lock = "pg_advisory"

[logging]
level = "INFO"
drivers = ["console", "file"]
console = { colored = false, format = "simple" }

[logging.file]
path = "/home/bai/manager/logs"
filename = "manager.log"
backup-count = 10
rotation-size = "10M"

[logging.pkg-ns]
"" = "WARNING"
aiotools = "INFO"
aiohttp = "INFO"
"ai.backend" = "INFO"
alembic = "INFO"
sqlalchemy = "WARNING"

[debug]
enabled = false
asyncio = false
"""


def test_manager_shape_exact():
    assert to_toml(MANAGER) == MANAGER_TOML
    assert tomllib.loads(MANAGER_TOML) == MANAGER


STORAGE_PROXY = {
    "etcd": {"namespace": "local", "addr": {"host": "10.20.30.10", "port": 8120}},
    "storage-proxy": {"node-id": "sp1", "num-proc": 2, "user": 1100, "group": 1100},
    "api": {
        "client": {"service-addr": {"host": ANY, "port": 6021}, "ssl-enabled": False},
        "manager": {
            "service-addr": {"host": ANY, "port": 6022},
            "internal-addr": {"host": ANY, "port": 16023},
            "ssl-enabled": False,
            "secret": "s3cr3t",
        },
    },
    "volume": {
        "nas": {"backend": "vfs", "path": "/vfroot/nas"},
        "fast": {"backend": "xfs", "path": "/vfroot/fast", "options": {"quota": True}},
    },
}

STORAGE_PROXY_TOML = """\
[etcd]
namespace = "local"
addr = { host = "10.20.30.10", port = 8120 }

[storage-proxy]
node-id = "sp1"
num-proc = 2
user = 1100
group = 1100

[api.client]
service-addr = { host = "0.0.0.0", port = 6021 }
ssl-enabled = false

[api.manager]
service-addr = { host = "0.0.0.0", port = 6022 }
internal-addr = { host = "0.0.0.0", port = 16023 }
ssl-enabled = false
secret = "s3cr3t"

[volume]
nas = { backend = "vfs", path = "/vfroot/nas" }

[volume.fast]
backend = "xfs"
path = "/vfroot/fast"
options = { quota = true }
"""


def test_storage_proxy_shape_exact():
    assert to_toml(STORAGE_PROXY) == STORAGE_PROXY_TOML
    assert tomllib.loads(STORAGE_PROXY_TOML) == STORAGE_PROXY


def test_inline_max_keys_zero_writes_tables():
    text = roundtrip({"etcd": {"addr": {"host": "h", "port": 1}, "x": 1}}, inline_max_keys=0)
    assert text == '[etcd]\nx = 1\n\n[etcd.addr]\nhost = "h"\nport = 1\n'


# --- Strings and keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        'double "quotes"',
        "back\\slash",
        "new\nline and\ttab and \r and \b and \f",
        "control \x00 \x01 \x1f \x7f",
        "unicode: 한국어 ümlaut \u2028",
        "'single' quotes",
        "trailing backslash \\",
        "# not a comment",
        "= [not] {toml}",
    ],
)
def test_string_escaping_roundtrips(value):
    roundtrip({"k": value})
    roundtrip({"t": {"k": value, "a": 1, "b": 2}})


def test_control_characters_use_unicode_escapes():
    assert to_toml({"k": "a\x00b\x7f"}) == 'k = "a\\u0000b\\u007F"\n'


@pytest.mark.parametrize(
    "key", ["", "a.b", "a b", "ключ", "x=y", '"q"', "under_score", "dash-ed", "123"]
)
def test_keys_are_quoted_when_needed(key):
    roundtrip({key: 1})
    roundtrip({key: {key: {"a": 1, "b": 2, "c": 3}}})
    roundtrip({key: [{key: 1}]})


def test_bare_keys_stay_bare():
    assert to_toml({"a-b_C9": 1}) == "a-b_C9 = 1\n"
    assert to_toml({"a.b": 1}) == '"a.b" = 1\n'


# --- Scalars -------------------------------------------------------------------------------------


def test_scalars():
    data = {
        "t": True,
        "f": False,
        "i": 0,
        "neg": -42,
        "big": 2**62,
        "fl": 0.1,
        "whole": 5.0,
        "exp": 1e20,
        "tiny": 1e-7,
        "s": "x",
    }
    text = roundtrip(data)
    assert "t = true\n" in text and "i = 0\n" in text and "whole = 5.0\n" in text


def test_bool_is_not_written_as_int():
    assert to_toml({"b": True}) == "b = true\n"


def test_special_floats():
    parsed = tomllib.loads(to_toml({"a": math.inf, "b": -math.inf, "c": math.nan}))
    assert parsed["a"] == math.inf and parsed["b"] == -math.inf and math.isnan(parsed["c"])


def test_dates_and_times():
    data = {
        "dt": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "local": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "d": datetime.date(2026, 1, 2),
        "t": datetime.time(3, 4, 5),
    }
    roundtrip(data)


# --- Arrays, tables, arrays of tables ------------------------------------------------------------


def test_arrays():
    roundtrip(
        {
            "empty": [],
            "ints": [1, 2, 3],
            "mixed": [1, "a", True, 1.5],
            "nested": [[1, 2], ["a"], []],
            "dicts_and_scalars": [{"a": 1}, 2],
            "tuple": [1, 2],
        }
    )


def test_tuple_is_an_array():
    assert tomllib.loads(to_toml({"t": (1, 2)})) == {"t": [1, 2]}


def test_array_of_tables_exact():
    data = {
        "name": "x",
        "servers": [
            {"host": "a", "port": 1, "tags": ["x"]},
            {},
            {"host": "b", "meta": {"rack": 1, "row": 2, "pos": 3}, "sub": [{"k": 1}, {"k": 2}]},
        ],
    }
    text = roundtrip(data)
    assert text == (
        'name = "x"\n'
        "\n[[servers]]\n"
        'host = "a"\nport = 1\ntags = ["x"]\n'
        "\n[[servers]]\n"
        "\n[[servers]]\n"
        'host = "b"\n'
        "\n[servers.meta]\nrack = 1\nrow = 2\npos = 3\n"
        "\n[[servers.sub]]\nk = 1\n"
        "\n[[servers.sub]]\nk = 2\n"
    )


def test_deeply_nested_tables_and_implicit_super_tables():
    data = {"a": {"b": {"c": {"d": {"x": 1, "y": 2, "z": 3}}}}}
    assert roundtrip(data) == "[a.b.c.d]\nx = 1\ny = 2\nz = 3\n"


def test_empty_tables():
    assert roundtrip({"top": {}}) == "[top]\n"
    assert roundtrip({"top": {"x": 1, "sub": {}}}) == "[top]\nx = 1\nsub = {}\n"


def test_scalars_always_precede_sub_tables():
    data = {"t": {"sub": {"a": 1, "b": 2, "c": 3}, "late": "scalar"}, "after": 1}
    text = roundtrip(data)
    assert text.index("after = 1") < text.index("[t]")
    assert text.index('late = "scalar"') < text.index("[t.sub]")


def test_order_follows_input():
    data = {"z": {"b": 1, "a": 2}, "a": {"y": 1, "x": 2}}
    assert to_toml(data) == "[z]\nb = 1\na = 2\n\n[a]\ny = 1\nx = 2\n"


def test_none_omits_the_key():
    data = {"a": 1, "b": None, "t": {"x": None, "y": 2}, "gone": None}
    assert to_toml(data) == "a = 1\n\n[t]\ny = 2\n"


def test_root_scalars_come_first_and_output_ends_with_newline():
    assert to_toml({}) == ""
    assert to_toml({"k": "v"}) == 'k = "v"\n'


def test_mapping_subclasses_are_accepted():
    class Tagged(dict):
        pass

    class TaggedStr(str):
        pass

    assert to_toml(Tagged(a=TaggedStr("x"))) == 'a = "x"\n'


# --- Errors --------------------------------------------------------------------------------------


def test_non_mapping_input_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects a dict"):
        to_toml(["a"])


def test_non_string_key_is_refused():
    with pytest.raises(AnsibleFilterError, match="not a string"):
        to_toml({"t": {1: "x"}})


def test_none_in_array_is_refused():
    with pytest.raises(AnsibleFilterError, match="no null"):
        to_toml({"a": [1, None]})


def test_unsupported_type_is_refused_with_its_path():
    with pytest.raises(AnsibleFilterError, match=r"t\.s .*set"):
        to_toml({"t": {"s": {1, 2}}})


# --- from_toml -----------------------------------------------------------------------------------


def test_from_toml():
    assert from_toml(MANAGER_TOML) == MANAGER


def test_from_toml_reports_errors():
    with pytest.raises(AnsibleFilterError, match="from_toml"):
        from_toml("a = = 1")


def test_filter_module_exports_both():
    filters = toml_filter.FilterModule().filters()
    assert set(filters) == {"to_toml", "from_toml"}
