"""The cluster matches its service catalogue (roles/_common: bai_services).

The catalogue is read through Ansible (playbooks/catalogue.yml), host by host, so per-group and
per-host settings count. Then, on the converged cluster:

* every port of every service listens on its node at the catalogue's bind address;
* every port is reached over the network from a node of each group that must reach it
  (the connections of the guide's section 3.2, as the catalogue lists them);
* the manager and the storage proxies announce their cluster address and real ports in the
  service-discovery records in Redis, not the package's placeholders.
"""

from __future__ import annotations

import json
import shlex

import pytest
from conftest import run_playbook

# How `ss` shows a socket bound to every address.
ANY_ADDRESS = {"0.0.0.0", "*", "::"}  # noqa: S104 - names, not a bind


@pytest.fixture(scope="module")
def catalogue(inventory) -> dict[str, list[dict]]:
    out = run_playbook(inventory, "playbooks/catalogue.yml",
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})
    report, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    task = report["plays"][0]["tasks"][-1]
    return {host: result["bai_host_services"] for host, result in task["hosts"].items()}


def _listeners(node) -> set[tuple[str, int]]:
    with node.sudo():
        out = node.check_output("ss -ltnH")
    found = set()
    for line in out.splitlines():
        local = line.split()[3]
        addr, _, port = local.rpartition(":")
        found.add((addr.strip("[]").split("%")[0], int(port)))
    return found


def _ports(services):
    return [(s["unit"], p) for s in services for p in s["ports"] if "port" in p]


def test_every_catalogue_port_listens_at_its_bind_address(cluster, catalogue):
    missing = []
    for host, services in catalogue.items():
        listening = _listeners(cluster.node(host))
        for unit, port in _ports(services):
            wanted = {port["bind"]} | (ANY_ADDRESS if port["bind"] in ANY_ADDRESS else set())
            if not any((addr, int(port["port"])) in listening for addr in wanted):
                missing.append(f"{host} {unit} {port['name']} {port['bind']}:{port['port']}")
    assert not missing, missing


def test_every_port_is_reached_from_the_groups_that_need_it(cluster, catalogue):
    probe = ("import socket,sys\n"
             "bad=[]\n"
             "for a,p in {targets}:\n"
             "    try: socket.create_connection((a,p),timeout=5).close()\n"
             "    except OSError as e: bad.append(f'{{a}}:{{p}} {{e}}')\n"
             "print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n")
    by_source: dict[str, list[tuple[str, int]]] = {}
    for host, services in catalogue.items():
        address = cluster.address_of(host)
        for _, port in _ports(services):
            for group in port["from"]:
                members = cluster.members(group)
                if members:
                    by_source.setdefault(members[0], []).append((address, int(port["port"])))
    assert by_source, "the catalogue lists no connection between nodes"
    failures = []
    for source, targets in sorted(by_source.items()):
        code = probe.format(targets=sorted(set(targets)))
        result = cluster.node(source).run(f"python3 -c {shlex.quote(code)}")
        if result.rc != 0:
            failures.append(f"from {source}: {result.stdout.strip()} {result.stderr.strip()}")
    assert not failures, failures


def _discovery_records(cluster) -> list[dict]:
    halfstack = cluster.node(cluster.first("halfstack"))
    password = cluster.secret("bai_redis_password")
    # From inside the Redis container, to the published port on the cluster address.
    address = cluster.address_of(cluster.first("halfstack"))
    cli = (f"docker exec -e REDISCLI_AUTH={shlex.quote(password)} bai-redis redis-cli "
           f"-h {address} -p {int(cluster.get('bai_redis_port'))} --no-auth-warning")
    with halfstack.sudo():
        keys = halfstack.check_output(f"{cli} --scan --pattern 'service_discovery.*'").split()
        records = []
        for key in keys:
            fields = halfstack.check_output(f"{cli} --json hgetall {shlex.quote(key)}")
            records.append({k: json.loads(v) for k, v in json.loads(fields).items()})
    return records


def test_service_discovery_records_announce_the_cluster_addresses(cluster):
    records = _discovery_records(cluster)
    by_group: dict[str, list[dict]] = {}
    for record in records:
        by_group.setdefault(record["service_group"], []).append(record["endpoint"])
    manager = cluster.address_of(cluster.first("manager"))
    assert {"address": f"{manager}:{int(cluster.get('bai_manager_api_port'))}",
            "prometheus_address": f"{manager}:{int(cluster.get('bai_manager_internal_port'))}"} \
        .items() <= by_group.get("manager", [{}])[0].items(), by_group
    proxies = sorted(e["address"] for e in by_group.get("storage-proxy", []))
    assert proxies == sorted(
        f"{cluster.address_of(h)}:{int(cluster.get('bai_storage_proxy_manager_port'))}"
        for h in cluster.members("storage_proxy")), by_group
    internal = sorted(e["prometheus_address"] for e in by_group.get("storage-proxy", []))
    assert internal == sorted(
        f"{cluster.address_of(h)}:{int(cluster.get('bai_storage_proxy_internal_port'))}"
        for h in cluster.members("storage_proxy")), by_group


def test_no_service_announces_a_placeholder_address(cluster):
    """Agents, app proxy coordinator and workers too: only the nodes' cluster addresses."""
    addresses = {cluster.address_of(h) for h in cluster.hosts}
    records = _discovery_records(cluster)
    groups = {r["service_group"] for r in records}
    assert {"manager", "storage-proxy", "agent"} <= groups, groups
    for record in records:
        endpoint = record["endpoint"]
        for field in ("address", "prometheus_address"):
            host = endpoint[field].rsplit(":", 1)[0] if ":" in endpoint[field] else endpoint[field]
            assert host in addresses, (record["service_group"], field, endpoint)
