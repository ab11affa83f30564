"""Changing one service's configuration restarts that service and nothing else.

First in check mode with --diff: playbooks/core.yml with a storage-proxy override (a different log
level) must predict the new configuration and the restart, in the storage-proxy play only, show
no secret, and change nothing.
Then for real: the main PID of every Backend.AI unit on the manager, the storage proxies and one
agent is compared before and after; then it runs again without the override, on the storage
proxies only, to put the cluster back (which restarts the storage proxy once more).
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from conftest import ROOT, run_playbook

# Day-2 behaviour: run by `make test-lifecycle`, not by the Molecule scenario (test time).
pytestmark = pytest.mark.lifecycle

UNITS = ("backendai-manager", "backendai-storage-proxy", "backendai-agent", "backendai-watcher")


OVERRIDE = json.dumps({"storage_proxy_config_overrides": {"logging": {"level": "DEBUG"}}})
# Every generated secret but the UUIDs (identifiers the API shows to users, not secrets).
CATALOG = yaml.safe_load((ROOT / "roles/precheck/vars/main.yml").read_text())["_precheck_secrets"]
SECRETS = [s["name"] for s in CATALOG if s["kind"] != "uuid"]


def _core(cluster, inventory, *extra, env=None):
    return run_playbook(inventory, "playbooks/core.yml", "--limit", ",".join(_nodes(cluster)),
                        *extra, env=env)


def _nodes(cluster):
    """The manager, the storage proxies and one agent: the hosts the override run touches."""
    return list(dict.fromkeys(cluster.members("manager") + cluster.members("storage_proxy")
                              + cluster.members("agents")[:1]))


def _main_pids(cluster):
    pids = {}
    for name in _nodes(cluster):
        node = cluster.node(name)
        for unit in UNITS:
            out = node.run(f"systemctl show -p MainPID --value {unit}.service").stdout.strip()
            if out and out != "0":
                pids[(name, unit)] = out
    return pids


def _config_checksums(cluster):
    sums = {}
    path = pathlib.PurePosixPath(cluster.get("bai_service_base_dir"), "storage-proxy",
                                 "storage-proxy.toml")
    for name in cluster.members("storage_proxy"):
        node = cluster.node(name)
        with node.sudo():
            sums[name] = node.file(str(path)).sha256sum
    return sums


def test_check_mode_predicts_only_the_storage_proxy_change_and_changes_nothing(
        cluster, inventory):
    if not cluster.members("storage_proxy"):
        pytest.skip("no storage proxy in the inventory")
    pids, sums = _main_pids(cluster), _config_checksums(cluster)
    out = _core(cluster, inventory, "--check", "--diff", "-e", OVERRIDE,
                env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                     # profile_tasks would print between the JSON; timer prints after it
                     "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})
    for name in SECRETS:
        value = cluster.vars.get(name)
        if value and len(str(value)) >= 8:
            assert str(value) not in out, f"the value of {name} is in the check-mode output"
    report, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    changed = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("changed"):
                    changed.append((play["play"]["name"], task["task"]["name"], host))
    assert changed, "check mode did not predict the configuration change"
    assert any("restart" in task.lower() for _, task, _ in changed), (
        f"check mode did not predict the restart: {changed}")
    outside = [c for c in changed if "storage prox" not in c[0].lower()]
    assert not outside, outside
    assert {c[2] for c in changed} <= set(cluster.members("storage_proxy")), changed
    assert _main_pids(cluster) == pids, "check mode restarted a service"
    assert _config_checksums(cluster) == sums, "check mode wrote the configuration"


def test_a_storage_proxy_override_restarts_only_the_storage_proxy(cluster, inventory):
    if not cluster.members("storage_proxy"):
        pytest.skip("no storage proxy in the inventory")
    before = _main_pids(cluster)
    assert any(unit == "backendai-storage-proxy" for _, unit in before), before
    try:
        _core(cluster, inventory, "-e", OVERRIDE)
        after = _main_pids(cluster)
    finally:
        # Only the storage proxies' files changed: putting them back needs only those hosts.
        run_playbook(inventory, "playbooks/core.yml", "--limit",
                     ",".join(cluster.members("storage_proxy")))
    restarted = sorted(key for key in before if after.get(key) != before[key])
    expected = sorted(key for key in before if key[1] == "backendai-storage-proxy")
    assert restarted == expected
