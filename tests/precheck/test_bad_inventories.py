"""A table of bad inventories that precheck must refuse, each with a message naming the variable,
and good ones it must accept (so the table cannot pass by everything failing).

Every case is a small inventory written to a temporary directory; all hosts use the local
connection, and precheck connects to none of them anyway. The runs happen in parallel once per
session; each test then checks its own run.
"""

from __future__ import annotations

import copy
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import GOOD_SECRETS, REPO, recap, run_playbook

MULTINODE = {
    "hosts": {
        "mgr1": "10.20.30.10",
        "web1": "10.20.30.11",
        "sp1": "10.20.30.12",
        "app1": "10.20.30.13",
        "ag1": "10.20.30.31",
        "ag2": "10.20.30.32",
    },
    "groups": {
        "manager": ["mgr1"],
        "halfstack": ["mgr1"],
        "registry": ["mgr1"],
        "license_server": ["mgr1"],
        "webserver": ["web1"],
        "storage_proxy": ["sp1"],
        "appproxy": ["app1"],
        "agents": ["ag1", "ag2"],
        "gpu_agents": [],
        "client": ["mgr1"],
    },
}
ALLINONE = {
    "hosts": {"aio1": "10.20.30.10"},
    "groups": {g: ([] if g == "gpu_agents" else ["aio1"]) for g in MULTINODE["groups"]},
}
WORKERS = [
    {"type": "interactive", "api_port": 10201, "proxy_port_range": [10205, 10500]},
    {"type": "inference", "api_port": 10202, "proxy_port_range": [10501, 10800]},
    {"type": "tcp", "api_port": 10203, "proxy_port_range": [10801, 11000]},
]


def workers(**changes) -> list[dict]:
    """The guide's workers with some fields replaced, e.g. workers(interactive={...})."""
    out = copy.deepcopy(WORKERS)
    for w in out:
        w.update(changes.get(w["type"], {}))
    return out


@dataclass
class Case:
    id: str
    # Substrings the output must contain (the variable, the host, the problem). A case with
    # passes=True must succeed instead.
    expect: list[str]
    passes: bool = False
    layout: dict = field(default_factory=lambda: MULTINODE)
    all_vars: dict = field(default_factory=dict)
    drop_vars: list[str] = field(default_factory=list)
    host_vars: dict = field(default_factory=dict)
    group_vars: dict = field(default_factory=dict)
    groups: dict = field(default_factory=dict)
    gpu_top_level: bool = False
    extra_vars: dict = field(default_factory=dict)


def vault_example() -> dict:
    return yaml.safe_load((REPO / "inventories/prod/group_vars/all/vault.yml.example").read_text())


CASES = [
    # --- good: must pass ------------------------------------------------------------------
    Case("good-multinode", ["Precheck passed for 6 host(s)"], passes=True),
    Case("good-allinone", ["Precheck passed for 1 host(s)"], passes=True, layout=ALLINONE),
    Case(
        "good-optional-secret-unset-when-group-empty",
        ["Precheck passed"],
        passes=True,
        drop_vars=["bai_zabbix_db_password"],
    ),
    Case(
        "good-etcd-auth-off-without-its-passwords",
        ["Precheck passed"],
        passes=True,
        drop_vars=["bai_etcd_password", "bai_etcd_backendai_password"],
        all_vars={"bai_etcd_auth_enabled": False},
    ),
    Case(
        "warn-container-range-in-local-port-range",
        ["WARNING on ag1", "bai_agent_container_port_range [45000, 46000]", "ip_local_port_range"],
        passes=True,
        all_vars={"bai_agent_container_port_range": [45000, 46000]},
    ),
    # --- secrets --------------------------------------------------------------------------
    Case(
        "placeholder-password",
        ["bai_postgres_password (guide: POSTGRES_PASSWORD) still holds a placeholder"],
        all_vars={"bai_postgres_password": "<your-strong-postgres-password>"},
    ),
    Case(
        "change-me-secret",
        ["bai_appproxy_api_secret (guide: APPPROXY_API_SECRET) still holds a placeholder"],
        all_vars={"bai_appproxy_api_secret": "change-me-appproxy-api-token"},
    ),
    Case(
        "vault-example-copied-as-is",
        [
            "bai_redis_password (guide: REDIS_PASSWORD) still holds a placeholder",
            "bai_user_uuid (guide: USER_USER_UUID) still holds a placeholder",
        ],
        all_vars=vault_example(),
    ),
    Case(
        "weak-default-develove",
        ["bai_redis_password (guide: REDIS_PASSWORD) is a well-known default or weak value"],
        all_vars={"bai_redis_password": "develove"},
    ),
    Case(
        "weak-default-harbor",
        ["bai_harbor_admin_password (guide: HARBOR_ADMIN_PASSWORD) is a well-known default"],
        all_vars={"bai_harbor_admin_password": "Harbor12345"},
    ),
    Case(
        "missing-secret",
        [
            "bai_superadmin_secret_key (guide: SUPERADMIN_SECRET_KEY) is not set",
            "playbooks/secrets.yml",
        ],
        drop_vars=["bai_superadmin_secret_key"],
    ),
    Case(
        "missing-secret-of-optional-component-in-use",
        [
            "bai_zabbix_db_password (guide: ZABBIX_DB_PASSWORD) is not set (needed because group "
            "zabbix_server has hosts)"
        ],
        drop_vars=["bai_zabbix_db_password"],
        groups={"zabbix_server": ["mgr1"]},
    ),
    Case(
        "short-password",
        [
            "bai_superadmin_password (guide: SUPERADMIN_PASSWORD) is 8 characters long; "
            "use at least 12"
        ],
        all_vars={"bai_superadmin_password": "Xy7#kPq2"},
    ),
    Case(
        "quote-in-password",
        ["bai_user_password", "contains a quote, backslash, $, backtick or whitespace"],
        all_vars={"bai_user_password": 'Abcdef"123456xyz'},
    ),
    Case(
        "url-character-in-db-password",
        ["bai_appproxy_db_password", "break the database URL"],
        all_vars={"bai_appproxy_db_password": "Abcdef@123456xyz"},
    ),
    Case(
        "harbor-password-without-digit",
        [
            "bai_harbor_bai_password",
            "must contain an uppercase letter, a lowercase letter and a digit",
        ],
        all_vars={"bai_harbor_bai_password": "OnlyLettersHereNoDigits"},
    ),
    Case(
        "bad-access-key",
        ["bai_superadmin_access_key (guide: SUPERADMIN_ACCESS_KEY) is not a Backend.AI access key"],
        all_vars={"bai_superadmin_access_key": "AKIA1234"},
    ),
    Case(
        "example-access-key",
        ["bai_user_access_key (guide: USER_ACCESS_KEY) is an example key"],
        all_vars={"bai_user_access_key": "AKIAADMINEXAMPLE0001"},
    ),
    Case(
        "bad-secret-key",
        ["bai_user_secret_key (guide: USER_SECRET_KEY) is not a Backend.AI secret key"],
        all_vars={"bai_user_secret_key": "tooshort"},
    ),
    Case(
        "bad-uuid",
        ["bai_default_project_uuid (guide: DEFAULT_PROJECT_UUID) is not a UUID"],
        all_vars={"bai_default_project_uuid": "default-project"},
    ),
    Case(
        "same-access-key-twice",
        ["bai_superadmin_access_key = bai_user_access_key"],
        all_vars={"bai_user_access_key": GOOD_SECRETS["bai_superadmin_access_key"]},
    ),
    Case(
        "weak-etcd-password",
        ["bai_etcd_password", "well-known default"],
        all_vars={"bai_etcd_password": "password"},
    ),
    Case(
        "etcd-auth-without-its-password",
        ["bai_etcd_backendai_password",
         "is not set (needed because bai_etcd_auth_enabled is true)"],
        all_vars={"bai_etcd_auth_enabled": True},
        drop_vars=["bai_etcd_backendai_password"],
    ),
    Case(
        "etcd-root-and-service-share-a-password",
        ["bai_etcd_password = bai_etcd_backendai_password"],
        all_vars={"bai_etcd_backendai_password": GOOD_SECRETS["bai_etcd_password"]},
    ),
    # --- names, ids and choices ----------------------------------------------------------
    Case(
        "etcd-namespace-with-slash",
        ['bai_etcd_namespace "prod/a" is not a name', "one segment of every etcd key"],
        all_vars={"bai_etcd_namespace": "prod/a"},
    ),
    Case(
        "etcd-services-user-is-root",
        ['bai_etcd_user "root" is reserved', "limited to their namespace"],
        all_vars={"bai_etcd_user": "root"},
    ),
    Case(
        "superadmin-email-without-domain",
        ['bai_superadmin_email "admin@localhost" is not an e-mail address'],
        all_vars={"bai_superadmin_email": "admin@localhost"},
    ),
    Case(
        "database-name-with-dash",
        ['bai_db_name "backend-ai" is not a PostgreSQL name'],
        all_vars={"bai_db_name": "backend-ai"},
    ),
    Case(
        "harbor-project-upper-case",
        ['bai_harbor_project_compute "Compute" is not a Harbor project name'],
        all_vars={"bai_harbor_project_compute": "Compute"},
    ),
    Case(
        "registry-scheme-unknown",
        ['bai_registry_scheme "ftp" is not one of http, https'],
        all_vars={"bai_registry_scheme": "ftp"},
    ),
    Case(
        "uid-of-the-system",
        ["bai_uid 0 is not a regular account id"],
        all_vars={"bai_uid": 0},
    ),
    Case(
        "gid-nogroup",
        ["bai_gid 65534 is not a regular group id"],
        all_vars={"bai_gid": 65534},
    ),
    # --- service account ------------------------------------------------------------------
    Case(
        "uid-differs-between-nodes",
        ["bai_uid differs between nodes", "1200 on ag2", "1100 on mgr1"],
        host_vars={"ag2": {"bai_uid": 1200}},
    ),
    Case(
        "gid-differs-by-group",
        ["bai_gid differs between nodes", "1300 on ag1, ag2"],
        group_vars={"agents": {"bai_gid": 1300}},
    ),
    # --- groups and addresses -------------------------------------------------------------
    Case("empty-agents-group", ["Inventory group 'agents' is empty"], groups={"agents": []}),
    Case(
        "two-managers",
        ["Inventory group 'manager' has 2 hosts (mgr1, web1)"],
        groups={"manager": ["mgr1", "web1"]},
    ),
    Case(
        "two-halfstack-hosts",
        ["Inventory group 'halfstack' has 2 hosts"],
        groups={"halfstack": ["mgr1", "sp1"]},
    ),
    Case(
        "gpu-agent-outside-agents",
        ["Hosts ag2 are in 'gpu_agents' but not in 'agents'"],
        groups={"agents": ["ag1"], "gpu_agents": ["ag2"]},
        gpu_top_level=True,
    ),
    Case(
        "duplicate-address",
        ["bai_address 10.20.30.11 on web1, sp1"],
        host_vars={"sp1": {"bai_address": "10.20.30.11"}},
    ),
    Case(
        "address-with-prefix-length",
        ['bai_address of web1 is "10.20.30.11/24"'],
        host_vars={"web1": {"bai_address": "10.20.30.11/24"}},
    ),
    # --- versions ---------------------------------------------------------------------------
    Case(
        "bad-bai-version",
        ["bai_version must be a Backend.AI release"],
        all_vars={"bai_version": "latest"},
    ),
    Case(
        "python-too-old-for-release",
        ["Backend.AI 26.9.6 needs Python >=3.13,<3.14", 'bai_python_version is "3.11"'],
        all_vars={"bai_python_version": "3.11"},
    ),
    # --- ports and ranges -----------------------------------------------------------------
    Case(
        "inverted-appproxy-range",
        [
            "bai_appproxy_workers[0].proxy_port_range (interactive) on app1 is [10500, 10205]",
            "the range is inverted",
        ],
        extra_vars={
            "bai_appproxy_workers": workers(interactive={"proxy_port_range": [10500, 10205]})
        },
    ),
    Case(
        "overlapping-appproxy-ranges",
        [
            "On app1 these port ranges overlap",
            "bai_appproxy_workers[0].proxy_port_range (interactive) [10205, 10600] and "
            "bai_appproxy_workers[1].proxy_port_range (inference) [10501, 10800]",
        ],
        extra_vars={
            "bai_appproxy_workers": workers(interactive={"proxy_port_range": [10205, 10600]})
        },
    ),
    Case(
        "duplicate-worker-type",
        ["lists a worker type twice"],
        extra_vars={"bai_appproxy_workers": workers(tcp={"type": "inference"})},
    ),
    Case(
        "inverted-agent-container-range",
        ["bai_agent_container_port_range on ag1 is [31000, 30000]", "inverted"],
        all_vars={"bai_agent_container_port_range": [31000, 30000]},
    ),
    Case(
        "duplicate-port-allinone",
        [
            "On aio1 the same port is used twice",
            "port 8081 is both bai_manager_api_port and bai_webserver_port",
        ],
        layout=ALLINONE,
        all_vars={"bai_webserver_port": 8081},
    ),
    Case(
        "worker-api-port-equals-coordinator-port",
        [
            "port 10200 is both bai_appproxy_coordinator_port and "
            "bai_appproxy_workers[2].api_port (tcp)"
        ],
        extra_vars={"bai_appproxy_workers": workers(tcp={"api_port": 10200})},
    ),
    Case(
        "agent-range-overlaps-worker-range-allinone",
        ["On aio1 these port ranges overlap", "bai_agent_container_port_range [10900, 12000]"],
        layout=ALLINONE,
        all_vars={"bai_agent_container_port_range": [10900, 12000]},
    ),
    Case(
        "service-port-inside-container-range",
        ["bai_agent_rpc_port (30500) lies inside bai_agent_container_port_range [30000, 31000]"],
        all_vars={"bai_agent_rpc_port": 30500},
    ),
    Case(
        "port-out-of-range",
        ['On web1: bai_webserver_port = "70000" is not a port number'],
        all_vars={"bai_webserver_port": 70000},
    ),
]


def build_inventory(case: Case) -> dict:
    hosts = case.layout["hosts"]
    groups = {**case.layout["groups"], **case.groups}
    all_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        **GOOD_SECRETS,
        **case.all_vars,
    }
    for name in case.drop_vars:
        all_vars.pop(name, None)
    children = {}
    for group, members in groups.items():
        if group == "gpu_agents" and not case.gpu_top_level:
            continue
        children[group] = {"hosts": {h: {} for h in members}}
        if group in case.group_vars:
            children[group]["vars"] = case.group_vars[group]
    if not case.gpu_top_level:
        children.setdefault("agents", {"hosts": {}})["children"] = {
            "gpu_agents": {"hosts": {h: {} for h in groups.get("gpu_agents", [])}}
        }
    host_entries = {
        h: {"bai_address": address, **case.host_vars.get(h, {})} for h, address in hosts.items()
    }
    return {"all": {"vars": all_vars, "hosts": host_entries, "children": children}}


def run_case(case: Case, directory: Path) -> tuple[int, str]:
    inventory = directory / "hosts.yml"
    inventory.write_text(yaml.safe_dump(build_inventory(case), sort_keys=False))
    args = []
    if case.extra_vars:
        extra = directory / "extra.json"
        extra.write_text(json.dumps(case.extra_vars))
        args = ["-e", f"@{extra}"]
    return run_playbook("playbooks/precheck.yml", inventory, *args)


@pytest.fixture(scope="session")
def outcomes(tmp_path_factory):
    """Run every case once, in parallel; case id -> (returncode, output)."""
    base = tmp_path_factory.mktemp("precheck")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {}
        for case in CASES:
            directory = base / case.id
            directory.mkdir()
            futures[case.id] = pool.submit(run_case, case, directory)
        return {case_id: future.result() for case_id, future in futures.items()}


def test_case_ids_are_unique():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_precheck(case: Case, outcomes):
    returncode, output = outcomes[case.id]
    hosts = recap(output)
    assert hosts, f"no PLAY RECAP in the output:\n{output}"
    # Precheck never changes anything, whether it passes or refuses.
    assert all(changed == 0 for changed, _ in hosts.values()), output
    if case.passes:
        assert returncode == 0, output
        assert "Precheck refused" not in output
    else:
        assert returncode != 0, output
        # Refused by precheck's own summary, not by an error somewhere else.
        assert "Precheck refused this inventory" in output, output
    for text in case.expect:
        assert text in output, f"expected {text!r} in:\n{output}"
    # A secret's value never appears in the output.
    for name, value in GOOD_SECRETS.items():
        assert value not in output, f"the value of {name} leaked into the output"


def test_summary_collects_every_check():
    """Every registered check result is listed in _precheck_results, which the summary reads."""
    registered = set()
    for tasks_file in (REPO / "roles/precheck/tasks").glob("*.yml"):
        for task in yaml.safe_load(tasks_file.read_text()) or []:
            if "register" in task:
                registered.add(task["register"])
    listed = yaml.safe_load((REPO / "roles/precheck/vars/main.yml").read_text())[
        "_precheck_results"
    ]
    assert registered == set(listed)
