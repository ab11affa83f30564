"""playbooks/stop.yml and playbooks/start.yml take the cluster down and up in dependency order.

Stop: every unit of the catalogue stops (Docker keeps running), the dependent services before
what they depend on: app proxy, webserver, agents, storage proxies, manager, then Harbor and the
license server, the halfstack last. Start: the reverse. The order is read from systemd's own
timestamps (monotonic, shared by the nodes' kernel), not from the playbook's output.

Then the cluster must pass verify.yml (units active, no error in any service log since the
start, the manager's API), run the way AWX/Tower runs a job: ansible-runner, a private data
directory, extra variables only, nothing on a terminal (a prompt would hang the job, a path
that only exists on an operator's machine would fail it). The extra variable switches the
session test off, and the summary must say so. Runs last: it restarts everything.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_playbook

# Day-2 behaviour: run by `make test-lifecycle`, not by the Molecule scenario (test time).
pytestmark = pytest.mark.lifecycle

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


def test_verify_passes_after_the_start_under_ansible_runner(inventory, cluster, tmp_path):
    ansible_runner = pytest.importorskip("ansible_runner")
    private = tmp_path / "job"
    (private / "env").mkdir(parents=True)
    result = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(ROOT),
        playbook="playbooks/verify.yml",
        # A path (a relative one would be read as a host name).
        inventory=str(Path(inventory).resolve()),
        extravars={"verify_session": False},
        envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        quiet=True,
        timeout=900,
    )
    stdout = result.stdout.read()
    assert (result.status, result.rc) == ("successful", 0), stdout[-4000:]
    unit_checks = {event["event_data"]["host"] for event in result.events
                   if event["event"] == "runner_on_ok"
                   and event["event_data"].get("task")
                   == "Check that the units this node must run are active"}
    assert sorted(unit_checks) == sorted(cluster.hosts), unit_checks
    assert "Sessions:    not run" in stdout, stdout[-3000:]
    assert (private / "artifacts").is_dir(), "ansible-runner wrote no job artifacts"
