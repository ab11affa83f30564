"""A run that fails after writing a new configuration still restarts the service next time.

The file in which the shared mechanism records what it wrote for the storage proxy's
configuration is replaced by a directory, so that the converge with a storage-proxy override
fails right after it wrote the new storage-proxy.toml, before any restart: the service keeps
running the old configuration while the file says otherwise. With the directory back, a run with
the same override has no file left to change, and must still restart the service because the
files on disk differ from what the running process started with. Then the cluster is put back
without the override.
"""

from __future__ import annotations

import json
import pathlib

import pytest
from conftest import run_playbook

# Day-2 behaviour: run by `make test-lifecycle`, not by the Molecule scenario (test time).
pytestmark = pytest.mark.lifecycle

UNIT = "backendai-storage-proxy"
# What the configure step of the storage proxy recorded (roles/_common/tasks/python_service.yml).
STATE = "/var/lib/backendai/state/storage-proxy.configure.sha1"
OVERRIDE = json.dumps({"storage_proxy_config_overrides": {"logging": {"level": "DEBUG"}}})


def _state(node, config: str) -> dict:
    with node.sudo():
        return {
            "pid": node.check_output(f"systemctl show -p MainPID --value {UNIT}.service"),
            "debug": 'level = "DEBUG"' in node.file(config).content_string,
            # 0: the running process recorded the very files that are on disk now
            "stamp": node.run(f"sha1sum --check --status /run/{UNIT}/inputs.sha1").rc,
        }


def test_a_failed_run_leaves_a_restart_that_the_next_run_does(cluster, inventory):
    if not cluster.members("storage_proxy"):
        pytest.skip("no storage proxy in the inventory")
    hosts = cluster.members("storage_proxy")
    name = hosts[0]
    node = cluster.node(name)
    config = str(pathlib.PurePosixPath(cluster.get("bai_service_base_dir"), "storage-proxy",
                                       "storage-proxy.toml"))
    limit = ("--limit", ",".join(hosts))
    before = _state(node, config)
    assert before["stamp"] == 0 and not before["debug"], before
    try:
        with node.sudo():
            node.check_output(f"mv {STATE} {STATE}.saved && mkdir {STATE}")
        try:
            out = run_playbook(inventory, "playbooks/core.yml", *limit, "-e", OVERRIDE, rc=2)
        finally:
            with node.sudo():
                node.check_output(f"rmdir {STATE} && mv {STATE}.saved {STATE}")
        assert "Write the state file of storage-proxy" in out, out[-3000:]
        interrupted = _state(node, config)
        # The new file is on disk, the old process still runs, and the two disagree.
        assert interrupted == {"pid": before["pid"], "debug": True, "stamp": 1}, interrupted

        out = run_playbook(inventory, "playbooks/core.yml", *limit, "-e", OVERRIDE)
        after = _state(node, config)
        assert after["pid"] != before["pid"], "the service was not restarted by the next run"
        assert after == {"pid": after["pid"], "debug": True, "stamp": 0}, after
    finally:
        run_playbook(inventory, "playbooks/core.yml", *limit)
    restored = _state(node, config)
    assert restored["stamp"] == 0 and not restored["debug"], restored
