"""Backup and restore on the test bed (playbooks/backup.yml, playbooks/restore.yml).

Data is created through Backend.AI's own interfaces (a user, its keypair and a keypair resource
policy with the client CLI, an etcd key with `backend.ai mgr etcd`), the cluster is backed up,
its nodes are destroyed and created again, site.yml deploys a fresh cluster (where that data does
not exist), restore.yml puts the backup back, and the data is read back through the same
interfaces: the same user (same UUID, so not a new one), keypairs and policy, the same etcd
value; verify.yml passes and a further site.yml changes nothing.

It destroys the cluster's nodes, so it runs only when asked: `make test-lifecycle` sets
BAI_TEST_LIFECYCLE=1. In the Molecule scenario it is skipped.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from conftest import client_cli, run_playbook

pytestmark = [
    pytest.mark.lifecycle,
    pytest.mark.skipif(
        os.environ.get("BAI_TEST_LIFECYCLE") != "1",
        reason="destroys the nodes: run with make test-lifecycle (BAI_TEST_LIFECYCLE=1)",
    ),
]

EMAIL = "backup-probe@example.com"
POLICY = "backup-probe"
ETCD_KEY = "backup-probe/marker"
ETCD_VALUE = "kept-by-the-backup"
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _cli(cluster, *args: str, check: bool = True) -> str:
    """The client CLI on the client host, as the superadmin (the client role's .env)."""
    name = cluster.first("client")
    client_dir = cluster.get("client_dir", f"{cluster.get('bai_home')}/client", host=name)
    out = client_cli(cluster.node(name), cluster.get("bai_user"), client_dir, *args)
    if check:
        assert out.rc == 0, (args, out.stdout, out.stderr)
    return out.stdout


def _mgr_etcd(cluster, *args: str) -> str:
    """`backend.ai mgr etcd` on the manager host (it reads ~/.config/backend.ai/manager.toml)."""
    name = cluster.first("manager")
    venv = cluster.get("manager_venv", f"{cluster.get('bai_home')}/manager/.venv", host=name)
    command = "sudo -H -u %s %s/bin/backend.ai mgr etcd " + " ".join(["%s"] * len(args))
    out = cluster.node(name).run(command, cluster.get("bai_user"), venv, *args)
    assert out.rc == 0, (args, out.stdout, out.stderr)
    return out.stdout.strip()


def _state(cluster) -> dict:
    """What must survive: the user, every keypair, the policy and the etcd key."""
    user = json.loads(_cli(cluster, "admin", "user", "info", "-e", EMAIL))["items"]
    keypairs = json.loads(_cli(cluster, "admin", "keypair", "list"))
    policy = json.loads(_cli(cluster, "admin", "keypair-resource-policy", "info", POLICY))["items"]
    # Without the usage counters (last_used, concurrency_used, ...), which every call moves.
    kept = ("user_id", "access_key", "secret_key", "is_active", "is_admin", "created_at",
            "resource_policy")
    return {
        "user": user,
        "keypairs": sorted(({k: item.get(k) for k in kept} for item in keypairs.get("items", [])),
                           key=lambda k: str(k["access_key"])),
        "policy": policy,
        "etcd": _mgr_etcd(cluster, "get", ETCD_KEY),
    }


def _recap(out: str) -> dict[str, tuple[int, int, int]]:
    return {h: (int(c), int(u), int(f)) for h, c, u, f in RECAP.findall(out)}


@pytest.fixture(scope="module")
def backed_up(cluster, inventory, tmp_path_factory):
    """Create the data, record it, back the cluster up; the backup's directory and the record."""
    # The CLI's default host permissions name one (set-user-perm) the 26.9.6 manager refuses,
    # so the probe policy gets the storage hosts of the cluster's own policy with two
    # permissions; after creating it the 26.9.6 CLI fails printing its answer: _state() reads
    # the policy back instead.
    own = json.loads(_cli(cluster, "admin", "keypair-resource-policy", "info",
                          cluster.get("manager_policy_name", "default")))["items"][0]
    hosts = json.loads(own["allowed_vfolder_hosts"] or "{}")
    assert hosts, f"the cluster's keypair resource policy allows no storage host: {own}"
    perms = json.dumps({h: ["create-vfolder", "mount-in-session"] for h in hosts})
    _cli(cluster, "admin", "keypair-resource-policy", "add", POLICY,
         "--vfolder-host-perms", perms, check=False)
    _cli(cluster, "admin", "user", "add", "-u", "backup-probe", cluster.get("bai_domain_name"),
         EMAIL, "Probe-Passw0rd-42")
    _cli(cluster, "admin", "keypair", "add", EMAIL, POLICY)
    _mgr_etcd(cluster, "put", ETCD_KEY, ETCD_VALUE)
    before = _state(cluster)
    dest = tmp_path_factory.mktemp("backups")
    run_playbook(inventory, "playbooks/backup.yml", "-e", f"bai_backup_dir={dest}")
    (backup,) = [p for p in dest.iterdir() if p.is_dir()]
    return backup, before


def test_the_backup_holds_every_part(backed_up, cluster):
    backup, before = backed_up
    assert any(k["user_id"] == EMAIL and k["resource_policy"] == POLICY for k in before["keypairs"])
    assert [u["email"] for u in before["user"]] == [EMAIL]
    assert [p["name"] for p in before["policy"]] == [POLICY]
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["etcd_namespace"] == cluster.get("bai_etcd_namespace")
    assert sorted(manifest["nodes"]) == sorted(cluster.hosts)
    for db in manifest["databases"]:
        dump = backup / "postgres" / f"{db}.dump"
        assert dump.read_bytes()[:5] == b"PGDMP", f"{dump} is not a pg_dump archive"
    snapshot = (backup / "etcd" / "snapshot.db").stat()
    assert snapshot.st_size > 4096
    keys = json.loads((backup / "etcd" / "namespace.json").read_text())
    assert keys["backup-probe"]["marker"] == ETCD_VALUE
    assert "config" in keys and "volumes" in keys
    for path in [backup, *backup.rglob("*")]:
        assert path.stat().st_mode & 0o077 == 0, f"{path} is readable by others"


def test_restore_brings_the_data_back_onto_rebuilt_nodes(backed_up, cluster, inventory):
    backup, before = backed_up
    run_playbook(inventory, "tests/testbed/destroy.yml", timeout=1200)
    run_playbook(inventory, "tests/testbed/create.yml", timeout=1200)
    run_playbook(inventory, "site.yml", timeout=3600)
    gone = _cli(cluster, "admin", "user", "info", "-e", EMAIL, check=False)
    assert EMAIL not in gone, "the fresh cluster already has the user: the test proves nothing"

    run_playbook(inventory, "playbooks/restore.yml", "-e", f"bai_restore_from={backup}",
                 timeout=1800)
    after = _state(cluster)
    assert after["user"] == before["user"]
    assert after["keypairs"] == before["keypairs"]
    assert after["policy"] == before["policy"]
    assert after["etcd"] == ETCD_VALUE
    run_playbook(inventory, "playbooks/verify.yml", timeout=1800)


def test_a_converge_after_the_restore_changes_nothing(backed_up, inventory):
    out = run_playbook(inventory, "site.yml", timeout=3600)
    recap = _recap(out)
    assert recap and all(c == 0 and u == 0 and f == 0 for c, u, f in recap.values()), recap


def _alive_agents(cluster) -> list[str]:
    agents = json.loads(_cli(cluster, "admin", "agent", "list"))
    return sorted(a["id"] for a in agents.get("items", []) if a.get("status") == "ALIVE")


def test_reset_removes_an_agent_and_site_yml_brings_it_back(cluster, inventory):
    agent = cluster.members("agents")[-1]
    node = cluster.node(agent)
    agent_dir = cluster.get("agent_dir", f"{cluster.get('bai_home')}/agent", host=agent)
    alive = _alive_agents(cluster)

    refused = run_playbook(inventory, "playbooks/reset.yml", "--limit", agent, rc=2)
    assert f"bai_confirm_reset={agent}" in refused
    assert node.service("backendai-agent").is_running, "the refused reset changed something"

    run_playbook(inventory, "playbooks/reset.yml", "--limit", agent,
                 "-e", f"bai_confirm_reset={agent}")
    for unit in ("backendai-agent", "backendai-watcher"):
        assert not node.file(f"/etc/systemd/system/{unit}.service").exists, unit
        assert not node.service(unit).is_running, unit
    assert not node.file(agent_dir).exists
    assert node.service("docker").is_running, "reset must leave Docker alone"
    others = [a for a in cluster.members("agents") if a != agent]
    assert all(cluster.node(a).service("backendai-agent").is_running for a in others)

    run_playbook(inventory, "site.yml", "--limit", agent, timeout=3600)
    assert node.service("backendai-agent").is_running
    assert _alive_agents(cluster) == alive
