"""The service catalogue is the one description of units and ports, and its consumers read it.

* precheck's per-host port table and port ranges are exactly the catalogue's, host by host,
  including a per-group setting (the app proxy workers in group_vars/appproxy);
* verify.yml's unit check reads the catalogue and names no unit itself;
* every port variable of roles/_common is in the catalogue, and every unit a role creates is.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from conftest import GOOD_SECRETS, REPO, ansible_env, run_playbook

HOSTS = {"mgr1": "10.0.0.10", "web1": "10.0.0.11", "sp1": "10.0.0.12", "app1": "10.0.0.13",
         "ag1": "10.0.0.31", "ag2": "10.0.0.32"}
GROUPS = {"manager": ["mgr1"], "webserver": ["web1"], "storage_proxy": ["sp1"],
          "appproxy": ["app1"], "agents": ["ag1", "ag2"], "client": ["mgr1"]}
WORKERS = [{"type": "interactive", "api_port": 11201, "proxy_port_range": [11205, 11300]},
           {"type": "tcp", "api_port": 11202, "proxy_port_range": [11301, 11400]}]


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> dict:
    directory = tmp_path_factory.mktemp("catalogue")
    children = {g: {"hosts": {h: {} for h in members}} for g, members in GROUPS.items()}
    children["appproxy"]["vars"] = {"bai_appproxy_workers": WORKERS}
    children["agents"]["vars"] = {"bai_agent_container_port_range": [32000, 32100]}
    inventory = {"all": {
        "vars": {"ansible_connection": "local",
                 "ansible_python_interpreter": "{{ ansible_playbook_python }}", **GOOD_SECRETS},
        "hosts": {h: {"bai_address": a} for h, a in HOSTS.items()},
        "children": children}}
    path = directory / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    env = ansible_env()
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.timer")
    rc, out = run_playbook("tests/precheck/catalogue_consumers.yml", path, env=env)
    assert rc == 0, out
    report, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    (task,) = [t for p in report["plays"] for t in p["tasks"] if t["task"]["name"] == "Show both"]
    return {host: result["msg"] for host, result in task["hosts"].items()}


def _catalogue_ports(services):
    return sorted((p["var"], int(p["port"])) for s in services for p in s["ports"] if "port" in p)


def _catalogue_ranges(services):
    return sorted((p["var"], [int(x) for x in p["range"]]) for s in services for p in s["ports"]
                  if "range" in p)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_precheck_checks_exactly_the_catalogue_ports_of_each_host(records, host):
    precheck, services = records[host]["precheck"], records[host]["catalogue"]
    ports = sorted((p["var"], int(p["port"])) for p in precheck["ports"])
    assert ports == _catalogue_ports(services)
    assert sorted((r["var"], [int(x) for x in r["range"]]) for r in precheck["ranges"]) == \
        _catalogue_ranges(services)


def test_group_settings_reach_the_catalogue(records):
    app = records["app1"]["catalogue"]
    assert [s["unit"] for s in app if "worker" in s["unit"]] == [
        "backendai-appproxy-worker-interactive", "backendai-appproxy-worker-tcp"]
    assert ("bai_appproxy_workers[1].api_port (tcp)", 11202) in _catalogue_ports(app)
    assert ("bai_agent_container_port_range", [32000, 32100]) in \
        _catalogue_ranges(records["ag1"]["catalogue"])
    # The groups' services only on their hosts; docker everywhere.
    assert [s["unit"] for s in records["web1"]["catalogue"]] == ["docker", "backendai-webserver"]
    assert {s["unit"] for s in records["mgr1"]["catalogue"]} >= {
        "bai-postgres", "bai-etcd", "bai-redis", "backendai-harbor", "backendai-licensed",
        "backendai-manager"}


def test_announced_addresses_are_the_hosts_cluster_addresses(records):
    for host, record in records.items():
        for service in record["catalogue"]:
            for port in service["ports"]:
                assert port["announce"] in ("", HOSTS[host]), (host, service["unit"], port)


def test_verify_reads_the_unit_list_from_the_catalogue():
    text = (REPO / "playbooks/verify.yml").read_text()
    plays = yaml.safe_load(text)
    (task,) = [t for t in plays[0]["tasks"] if "active" in t["name"]]
    assert "bai_host_services" in json.dumps(task)
    assert not re.search(r"\b(backendai|bai)-[a-z-]+\.service", text), \
        "verify.yml names a unit itself instead of reading the catalogue"


def _catalogue_source() -> dict:
    return yaml.safe_load((REPO / "roles/_common/defaults/main.yml").read_text())


def test_every_port_variable_is_in_the_catalogue():
    defaults = _catalogue_source()
    text = yaml.safe_dump(defaults["bai_services_core"]) + defaults["bai_services_appproxy_workers"]
    ports = [k for k in defaults if re.fullmatch(r"bai_[a-z_]+_port(_range)?", k)]
    assert ports
    missing = [k for k in ports if k not in text]
    assert not missing, f"port variables with no catalogue record: {missing}"


def test_roles_name_units_only_through_the_catalogue():
    """No role types a unit name; every bai_units.<id> a role uses is a catalogue record."""
    ids = {s["id"].replace("-", "_") for s in _catalogue_source()["bai_services_core"]}
    used, typed = set(), []
    for path in [*(REPO / "roles").rglob("*.yml"), *(REPO / "roles").rglob("*.j2"),
                 *(REPO / "playbooks").glob("*.yml")]:
        if path.parts[-3:-1] == ("_common", "defaults"):
            continue
        text = path.read_text()
        used.update(re.findall(r"bai_units\.([a-z_]+)", text))
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        typed += [f"{path.relative_to(REPO)}: {m}" for m in
                  re.findall(r"(?:_unit|_after|_wants|name|path|target-service):[^\n]*"
                             r"\b(?:backendai|bai)-[a-z-]+\.service", code)]
    assert used, "no role reads bai_units"
    assert used <= ids, used - ids
    assert not typed, typed
