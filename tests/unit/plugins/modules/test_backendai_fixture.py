"""Unit tests for backendai_fixture: row translation, diff/plan logic, hashes, scrubbing."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.backendai.cluster.plugins.module_utils import (  # noqa: E402
    _backendai as utils,
)
from ansible_collections.backendai.cluster.plugins.modules import (  # noqa: E402
    backendai_fixture as mod,
)

# Written by backend.ai-manager 26.9.6 (`fixture populate`) for the password "AdminPw-1234".
REAL_HASH = (
    "pbkdf2_sha256$600000$"
    "70edeb7d744f8cf10da9763719cb3ac1e524eb304940576233712820557d0532$"
    "37fd4ef31167ba0dbdcde68e07102047259118298768abb41c735f936072a2c3"
)

# ---------------------------------------------------------------------------------------------
# Password hashes
# ---------------------------------------------------------------------------------------------


def test_verify_real_backendai_hash():
    assert utils.verify_password_hash("AdminPw-1234", REAL_HASH) is True
    assert utils.verify_password_hash("AdminPw-1235", REAL_HASH) is False


def test_parse_hash_format():
    algorithm, rounds, salt, digest = utils.parse_password_hash(REAL_HASH)
    assert (algorithm, rounds) == ("pbkdf2_sha256", 600000)
    assert len(bytes.fromhex(salt)) == 32 and len(bytes.fromhex(digest)) == 32
    assert utils.parse_password_hash("$2b$12$abcdefghijklmnopqrstuv")[0] == "bcrypt"
    assert utils.parse_password_hash("not-a-hash") is None
    assert utils.parse_password_hash("pbkdf2_sha256$many$aa$bb") is None


def test_make_and_verify_roundtrip():
    stored = utils.make_password_hash("s3cret", rounds=1000, salt=b"\x01" * 32)
    assert stored.startswith("pbkdf2_sha256$1000$" + "01" * 32 + "$")
    assert utils.verify_password_hash("s3cret", stored) is True
    assert utils.verify_password_hash("s3cret!", stored) is False


def test_verify_other_backendai_formats():
    salt = "ab" * 16
    pbkdf2_sha3 = hashlib.pbkdf2_hmac("sha3_256", b"pw", bytes.fromhex(salt), 10).hex()
    assert utils.verify_password_hash("pw", f"pbkdf2_sha3_256$10${salt}${pbkdf2_sha3}") is True
    # sha256 / sha3_256: the salted digest applied `rounds` times to "<salt><previous>".
    for name in ("sha256", "sha3_256"):
        value = "pw"
        for _ in range(3):
            value = hashlib.new(name, f"{salt}{value}".encode()).hexdigest()
        assert utils.verify_password_hash("pw", f"{name}$3${salt}${value}") is True
        assert utils.verify_password_hash("px", f"{name}$3${salt}${value}") is False


def test_verify_undecidable():
    assert utils.verify_password_hash("pw", "$2b$12$" + "a" * 53) is None  # bcrypt
    assert utils.verify_password_hash("pw", "md5$1$aa$bb") is None
    assert utils.verify_password_hash("pw", None) is None
    assert utils.verify_password_hash(None, REAL_HASH) is None
    assert utils.verify_password_hash("pw", "pbkdf2_sha256$10$zz$00") is False


# ---------------------------------------------------------------------------------------------
# Typed options -> fixture rows
# ---------------------------------------------------------------------------------------------


def params(**tables):
    base = {table: None for table in mod.TYPED_TABLES}
    base.update(tables)
    return base


def test_typed_users_fill_domain_projects_and_username():
    rows = mod.typed_rows(params(users=[{
        "uuid": "f38dea23-50fa-42a0-b5ae-338f5f4693f4", "email": "a@example.com",
        "password": "pw", "domain_name": "default", "projects": [
            "2de2b969-1d04-48a6-af16-0bc8adb3c831", "model-store",
        ], "username": None, "extra": {"totp_activated": False},
    }]))
    user = rows["users"][0]
    assert user["domain_id"] == mod.ref("domains", "id", name="default")
    assert user["totp_activated"] is False and "projects" not in user and "extra" not in user
    assert user[mod.INSERT_DEFAULTS] == {"username": "a@example.com"}
    assert rows["association_groups_users"] == [
        {"user_id": "f38dea23-50fa-42a0-b5ae-338f5f4693f4",
         "group_id": "2de2b969-1d04-48a6-af16-0bc8adb3c831"},
        {"user_id": "f38dea23-50fa-42a0-b5ae-338f5f4693f4",
         "group_id": mod.ref("groups", "id", name="model-store", domain_name="default")},
    ]


def test_typed_user_without_uuid_refers_by_email():
    rows = mod.typed_rows(params(users=[{
        "email": "b@example.com", "username": "b", "domain_name": "default",
        "projects": ["default"],
    }]))
    assert mod.INSERT_DEFAULTS not in rows["users"][0]
    assert rows["association_groups_users"][0]["user_id"] == mod.ref(
        "users", "uuid", email="b@example.com"
    )


def test_typed_user_project_by_name_needs_domain():
    with pytest.raises(ValueError, match="domain_name"):
        mod.typed_rows(params(users=[{"email": "c@example.com", "projects": ["default"]}]))


def test_typed_keypairs_and_sgroups():
    rows = mod.typed_rows(params(
        keypairs=[{"access_key": "AK", "secret_key": "SK", "user_email": "a@example.com",
                   "is_default": True, "user": None}],
        sgroups_for_domains=[{"scaling_group": "default", "domain": "default",
                              "resource_group_id": None, "domain_id": None}],
    ))
    assert rows["keypairs"] == [{
        "access_key": "AK", "secret_key": "SK", "is_default": True,
        "user": mod.ref("users", "uuid", email="a@example.com"),
    }]
    assert rows["sgroups_for_domains"] == [{
        "resource_group_id": mod.ref("scaling_groups", "id", name="default"),
        "domain_id": mod.ref("domains", "id", name="default"),
    }]


def test_merge_and_split():
    typed = {"domains": [{"name": "d"}], "users": [{"email": "e", mod.INSERT_DEFAULTS: {"x": 1}}]}
    merged = mod.merge_tables(typed, {"domains": [{"name": "d2"}], "keypairs": [{"a": 1}]})
    assert [r["name"] for r in merged["domains"]] == ["d", "d2"]
    rows, defaults = mod.split_insert_defaults(merged)
    assert rows["users"] == [{"email": "e"}] and defaults["users"] == [{"x": 1}]
    assert defaults["domains"] == [{}, {}]
    with pytest.raises(ValueError):
        mod.merge_tables({}, {"__mode": "update"})
    with pytest.raises(ValueError):
        mod.merge_tables({}, {"domains": {"name": "x"}})


# ---------------------------------------------------------------------------------------------
# Plan logic
# ---------------------------------------------------------------------------------------------


def info(exists=True, desired=None, current=None, passwords=None, secrets=None, key=None):
    return {
        "key": key or {"name": "k"},
        "exists": exists,
        "pk": {"name": "k"},
        "desired": desired or {},
        "current": current or {},
        "passwords": passwords or {},
        "secrets": secrets or {},
    }


def test_plan_insert_and_noop():
    row = {"name": "k", "description": "x"}
    assert mod.plan_row("domains", info(exists=False), row, "on_create") == (
        "insert", ["description", "name"], [])
    same = info(desired={"description": "x"}, current={"description": "x"})
    assert mod.plan_row("domains", same, row, "on_create") == ("none", [], [])


def test_plan_update_only_changed_columns():
    state = info(
        desired={"description": "new", "total_resource_slots": {"cpu": "1"}, "is_active": True},
        current={"description": "old", "total_resource_slots": {"cpu": "1"}, "is_active": True},
    )
    assert mod.plan_row("domains", state, {}, "on_create") == ("update", ["description"], [])


def test_plan_json_comparison_ignores_key_order():
    state = info(desired={"opts": {"a": 1, "b": [1, 2]}}, current={"opts": {"b": [1, 2], "a": 1}})
    assert mod.plan_row("scaling_groups", state, {}, "always")[0] == "none"


def test_plan_password_policy():
    row = {"email": "a", "password": "AdminPw-1234"}
    matching = info(passwords={"password": {"stored": REAL_HASH}})
    other = info(passwords={"password": {"stored": utils.make_password_hash("x", rounds=10)}})
    assert mod.plan_row("users", other, row, "on_create")[0] == "none"
    assert mod.plan_row("users", other, row, "always") == ("update", ["password"], [])
    assert mod.plan_row("users", matching, row, "always")[0] == "none"
    # bcrypt is verified by the helper in the virtualenv, which sends "match".
    bcrypt_ok = info(passwords={"password": {"stored": "$2b$12$x", "match": True}})
    assert mod.plan_row("users", bcrypt_ok, row, "always")[0] == "none"
    unknown = info(passwords={"password": {"stored": None}})
    assert mod.plan_row("users", unknown, row, "always") == ("update", ["password"], [])


def test_plan_secret_key_policy():
    row = {"access_key": "AK", "secret_key": "SK"}
    differ = info(secrets={"secret_key": {"state": "plain", "match": False}})
    same = info(secrets={"secret_key": {"state": "plain", "match": True}})
    encrypted = info(secrets={"secret_key": {"state": "encrypted"}}, key={"access_key": "AK"})
    assert mod.plan_row("keypairs", differ, row, "on_create")[0] == "none"
    assert mod.plan_row("keypairs", differ, row, "always") == ("update", ["secret_key"], [])
    assert mod.plan_row("keypairs", same, row, "always")[0] == "none"
    action, _, warnings = mod.plan_row("keypairs", encrypted, row, "always")
    assert action == "none" and "keypairs[access_key=AK]" in warnings[0]


def test_plan_registry_password_follows_policy_but_token_does_not():
    reg = info(desired={"password": "new"}, current={"password": "old"})
    assert mod.plan_row("container_registries", reg, {}, "on_create")[0] == "none"
    assert mod.plan_row("container_registries", reg, {}, "always")[1] == ["password"]
    token = info(desired={"wsproxy_api_token": "new"}, current={"wsproxy_api_token": "old"})
    assert mod.plan_row("scaling_groups", token, {}, "on_create")[1] == ["wsproxy_api_token"]


def test_build_plan_rows_counts_and_masking():
    tables = {
        "users": [
            {"uuid": "u1", "email": "a@example.com", "password": "Hunter2-secret",
             "full_name": "New"},
            {"email": "b@example.com", "password": "Other-secret-9"},
        ],
        "scaling_groups": [{"name": "default", "wsproxy_api_token": "Token-secret-1"}],
    }
    answer = {"tables": {
        "users": {"rows": [
            {"key": {"uuid": "u1"}, "exists": True, "pk": {"uuid": "u1"},
             "desired": {"uuid": "u1", "email": "a@example.com", "full_name": "New"},
             "current": {"uuid": "u1", "email": "a@example.com", "full_name": "Old"},
             "passwords": {"password": {"stored": utils.make_password_hash("x", rounds=10)}},
             "secrets": {}},
            {"key": {"email": "b@example.com"}, "exists": False, "desired": {}, "current": {},
             "passwords": {}, "secrets": {}},
        ]},
        "scaling_groups": {"rows": [
            {"key": {"name": "default"}, "exists": True, "pk": {"name": "default"},
             "desired": {"name": "default", "wsproxy_api_token": "Token-secret-1"},
             "current": {"name": "default", "wsproxy_api_token": "Old-token-secret"},
             "passwords": {}, "secrets": {}},
        ]},
    }}
    defaults = {"users": [{}, {"username": "b@example.com"}], "scaling_groups": [{}]}
    plan, report, diff = mod.build_plan(tables, answer, "always", defaults)
    assert plan["update"]["users"] == [
        {"uuid": "u1", "full_name": "New", "password": "Hunter2-secret"}
    ]
    assert plan["insert"]["users"] == [
        {"username": "b@example.com", "email": "b@example.com", "password": "Other-secret-9"}
    ]
    assert plan["update"]["scaling_groups"] == [
        {"name": "default", "wsproxy_api_token": "Token-secret-1"}
    ]
    assert report["tables"]["users"] == {"inserted": 1, "updated": 1, "unchanged": 0}
    assert report["changed_keys"] == [
        "users[uuid=u1]", "users[email=b@example.com]", "scaling_groups[name=default]",
    ]
    text = json.dumps([report, diff])
    for secret in ("Hunter2-secret", "Other-secret-9", "Token-secret-1", "Old-token-secret"):
        assert secret not in text
    assert diff["before"]["users"]["users[uuid=u1]"] == {"full_name": "Old", "password": "********"}
    assert diff["after"]["users"]["users[uuid=u1]"]["password"].startswith("********")
    assert diff["before"]["users"]["users[email=b@example.com]"] is None

    # on_create: the password of the existing user is left alone.
    plan, report, _ = mod.build_plan(tables, answer, "on_create", defaults)
    assert plan["update"]["users"] == [{"uuid": "u1", "full_name": "New"}]


# ---------------------------------------------------------------------------------------------
# Scrubbing and error lines
# ---------------------------------------------------------------------------------------------


def test_scrubber():
    scrub = utils.Scrubber(["S3cret-pw!x", "abc", None])
    text = "url postgresql+asyncpg://bai:S3cret-pw!x@127.0.0.1/backend failed: S3cret-pw!x abc"
    out = scrub.text(text)
    assert "S3cret" not in out and out.endswith("abc")
    assert "postgresql+asyncpg://bai:********@127.0.0.1/backend" in out
    assert utils.Scrubber().text("http://u:p%40ss@h/x") == "http://u:********@h/x"
    assert scrub.data({"a": ["S3cret-pw!x"], "b": 1}) == {"a": ["********"], "b": 1}
    encoded = utils.Scrubber(["p%40ss-word"])
    assert encoded.text("p@ss-word") == "********"


def test_url_password_and_redact():
    assert utils.url_password("postgresql+asyncpg://bai:S3cret-pw!x@h:5432/db") == "S3cret-pw!x"
    assert utils.url_password("postgresql://bai@h/db") is None
    assert utils.redact_url("postgresql://bai:pw@h/db") == "postgresql://bai:********@h/db"


def test_last_error_line():
    err = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "    connect()\n"
        "asyncpg.exceptions.InvalidPasswordError: password authentication failed for user \"bai\"\n"
    )
    assert utils.last_error_line(err).startswith("asyncpg.exceptions.InvalidPasswordError:")
    assert utils.last_error_line("INFO starting\nAborted!\n") == "Aborted!"
    assert utils.last_error_line("") == "no error message"


def test_read_ini_option(tmp_path):
    ini = tmp_path / "alembic.ini"
    ini.write_text(
        "[alembic]\nscript_location = ai.backend.manager.models:alembic\n"
        "sqlalchemy.url = postgresql+asyncpg://bai:p%%40ss@127.0.0.1/backend\n"
        "here_test = %(here)s/x\n"
    )
    assert utils.read_ini_option(str(ini), "alembic", "sqlalchemy.url").endswith(
        "bai:p%40ss@127.0.0.1/backend"
    )
    assert utils.read_ini_option(str(ini), "alembic", "here_test") == f"{tmp_path}/x"
    assert utils.read_ini_option(str(ini), "alembic", "missing") is None


def test_toml_password(tmp_path):
    toml = tmp_path / "manager.toml"
    toml.write_text('[etcd]\npassword = ""\n[db]\nuser = "bai"\npassword = "Db-Pw!x7q"\n')
    assert mod._toml_db_password(str(toml)) == "Db-Pw!x7q"


def test_graph_changes_lines():
    assert mod.graph_changes(None) == []
    assert mod.graph_changes({"personal_projects": [], "rosters": []}) == []
    lines = mod.graph_changes({
        "personal_projects": ["a@example.com"],
        "rosters": [{"user": "a@example.com", "project": "default"}],
    })
    assert lines == [
        "personal project of user a@example.com",
        "user a@example.com on the roster of project default",
    ]
