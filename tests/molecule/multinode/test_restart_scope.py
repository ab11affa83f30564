"""Changing one service's configuration restarts that service and nothing else.

Runs playbooks/core.yml with a storage-proxy override (a different log level), compares the main
PID of every Backend.AI unit on the manager, the storage proxies and one agent before and after,
then runs it again without the override to put the cluster back (which restarts the storage proxy
once more). Runs last in the verify step: the file name sorts after the other checks.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]
UNITS = ("backendai-manager", "backendai-storage-proxy", "backendai-agent", "backendai-watcher")


def _core(cluster, inventory, *extra):
    bindir = pathlib.Path(sys.executable).parent
    limit = ",".join(_nodes(cluster))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(bindir / "ansible-playbook"), "playbooks/core.yml", "-i", inventory,
         "--limit", limit, *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc.stdout


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


def test_a_storage_proxy_override_restarts_only_the_storage_proxy(cluster, inventory):
    if not cluster.members("storage_proxy"):
        pytest.skip("no storage proxy in the inventory")
    before = _main_pids(cluster)
    assert any(unit == "backendai-storage-proxy" for _, unit in before), before
    override = json.dumps({"storage_proxy_config_overrides": {"logging": {"level": "DEBUG"}}})
    try:
        _core(cluster, inventory, "-e", override)
        after = _main_pids(cluster)
    finally:
        _core(cluster, inventory)
    restarted = sorted(key for key in before if after.get(key) != before[key])
    expected = sorted(key for key in before if key[1] == "backendai-storage-proxy")
    assert restarted == expected
