"""playbooks/stop.yml and playbooks/start.yml take the cluster down and up in dependency order.

Stop: every unit of the catalogue stops (Docker keeps running), the dependent services before
what they depend on: app proxy, webserver, agents, storage proxies, manager, then Harbor and the
license server, the halfstack last. Start: the reverse, and the cluster then passes verify.yml
(units active, no error in any service log since its start, the manager's API). The order is
read from systemd's own timestamps (monotonic, shared by the nodes' kernel), not from the
playbook's output. Runs last: it restarts everything.
"""

from __future__ import annotations

import json

import pytest
from conftest import run_playbook

# Dependency tiers in start order: each service depends only on services of earlier tiers.
TIERS = [
    {"postgres", "etcd", "redis"},
    {"harbor", "licensed"},
    {"manager"},
    {"storage-proxy"},
    {"watcher", "agent"},
    {"webserver"},
    {"appproxy-coordinator"},
]


def tier(service_id: str) -> int:
    if service_id.startswith("appproxy-worker-"):
        return len(TIERS)
    return next(i for i, ids in enumerate(TIERS) if service_id in ids)


@pytest.fixture(scope="module")
def units(inventory) -> list[tuple[str, str, str]]:
    """(host, service id, unit) of every catalogue service but Docker."""
    out = run_playbook(inventory, "playbooks/catalogue.yml",
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})
    report, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    task = report["plays"][0]["tasks"][-1]
    return [(host, s["id"], s["unit"]) for host, result in task["hosts"].items()
            for s in result["bai_host_services"] if s["id"] != "docker"]


def _show(cluster, host: str, unit: str, prop: str) -> str:
    node = cluster.node(host)
    with node.sudo():
        return node.check_output(f"systemctl show -p {prop} --value {unit}.service").strip()


def _tiers_in_time_order(cluster, units, prop: str) -> list[tuple[int, str]]:
    stamped = sorted((int(_show(cluster, h, u, prop)), tier(i), f"{h} {u}") for h, i, u in units)
    return [(t, name) for _, t, name in stamped]


def test_stop_then_start_in_dependency_order(cluster, inventory, units):
    assert {i for _, i, _ in units} >= {"postgres", "manager", "agent"}, units
    try:
        run_playbook(inventory, "playbooks/stop.yml")
        states = {f"{h} {u}": _show(cluster, h, u, "ActiveState") for h, _, u in units}
        assert set(states.values()) == {"inactive"}, states
        for host in cluster.hosts:
            assert _show(cluster, host, "docker", "ActiveState") == "active", host
        stopped = _tiers_in_time_order(cluster, units, "InactiveEnterTimestampMonotonic")
        order = [t for t, _ in stopped]
        assert order == sorted(order, reverse=True), stopped
    finally:
        run_playbook(inventory, "playbooks/start.yml")
    states = {f"{h} {u}": _show(cluster, h, u, "ActiveState") for h, _, u in units}
    assert set(states.values()) == {"active"}, states
    started = _tiers_in_time_order(cluster, units, "ActiveEnterTimestampMonotonic")
    order = [t for t, _ in started]
    assert order == sorted(order), started
    # The cluster works again, and nothing logged an error while it came up in this order.
    run_playbook(inventory, "playbooks/verify.yml", "-e", "verify_session=false")
