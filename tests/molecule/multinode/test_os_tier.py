"""Checks of the OS tier (roles os_prep, docker_nvidia, static_python) on a converged cluster.

Run against the demo test bed (any inventory works; expected values come from it):

    pytest --hosts='ansible://all' --ansible-inventory=inventories/demo/hosts.yml \
        tests/molecule/multinode/test_os_tier.py

Tests that take the ``host`` fixture run once per node. The ``test_across_nodes_*`` tests run
once and compare all nodes with each other. Expected values are read from the inventory (host
and group vars), falling back to the collection's defaults, so a site that overrides e.g.
bai_uid or the port ranges is checked against its own choices.
"""

from __future__ import annotations

import json
import os
import re
import shlex

import pytest
from conftest import Cluster, _runner

# The guide's values (section 4.3), used unless the inventory overrides them.
GUIDE_PORT_RANGE_AGENTS = "40000 65000"
GUIDE_PORT_RANGE_OTHERS = "20000 65000"
GUIDE_SOMAXCONN = "1024"
LIMITS = {"nofile": 512000, "nproc": 65536, "msgqueue": 8192000}
STORAGE_GROUPS = ("storage_proxy", "agents")
HOSTS_BEGIN = "# -- BEGIN Backend.AI BLOCK --"
HOSTS_END = "# -- END Backend.AI BLOCK --"


# --- expected values ---


class Expect(Cluster):
    """The values a node should have, from the inventory over the collection defaults."""

    def __init__(self, inventory: str, name: str):
        super().__init__(inventory, name)
        self.name = name

    @property
    def user(self) -> str:
        return self.get("bai_user")

    @property
    def group(self) -> str:
        return self.get("bai_group")

    @property
    def uid(self) -> int:
        return int(self.get("bai_uid"))

    @property
    def gid(self) -> int:
        return int(self.get("bai_gid"))

    @property
    def home(self) -> str:
        return self.get("bai_home")

    @property
    def hosts_domain(self) -> str:
        return self.get("bai_hosts_domain")

    @property
    def volume_dir(self) -> str:
        return f"{self.get('bai_vfroot_base_path')}/{self.get('bai_default_volume_name')}"

    @property
    def is_agent(self) -> bool:
        return self.name in self.groups.get("agents", [])

    @property
    def is_storage(self) -> bool:
        groups = self.vars.get("os_prep_storage_groups", STORAGE_GROUPS)
        return any(self.name in self.groups.get(g, []) for g in groups)

    @property
    def port_range(self) -> str:
        if "os_prep_local_port_range" in self.vars:
            value = self.vars["os_prep_local_port_range"]
        elif self.is_agent:
            value = self.vars.get("os_prep_local_port_range_agents", GUIDE_PORT_RANGE_AGENTS)
        else:
            value = self.vars.get("os_prep_local_port_range_others", GUIDE_PORT_RANGE_OTHERS)
        return " ".join(str(value).split())

    @property
    def somaxconn(self) -> str:
        merged = {
            **self.vars.get("os_prep_sysctl", {}),
            **self.vars.get("os_prep_sysctl_extra", {}),
        }
        return str(merged.get("net.core.somaxconn", GUIDE_SOMAXCONN))

    @property
    def registry_fqdn(self) -> str:
        registry = self.groups.get("registry") or self.groups.get("manager")
        port = self.get("bai_harbor_port")
        return f"{self.address_of(registry[0])}:{port}"

    @property
    def python_bin(self) -> str:
        version = self.vars.get("static_python_version", self.get("bai_python_version"))
        base = self.vars.get("static_python_base_dir", f"{self.home}/.static-python")
        return f"{base}/versions/{version}/bin/python3"


@pytest.fixture()
def expect(host, inventory) -> Expect:
    return Expect(inventory, host.backend.host)


def _as_user(user: str, command: str) -> str:
    """A command run by `user` in a login session (PAM limits apply, groups are loaded)."""
    return f"runuser -l {shlex.quote(user)} -c {shlex.quote(command)}"


def _limits_file_entries(content: str) -> dict[tuple[str, str, str], int]:
    entries = {}
    for line in content.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 4, f"malformed limits line: {line!r}"
        domain, kind, item, value = fields
        entries[(domain, kind, item)] = int(value)
    return entries


# --- os_prep: account ---


def test_service_account_has_the_fixed_ids(host, expect):
    user = host.user(expect.user)
    assert user.exists, f"{expect.user} is missing"
    assert user.uid == expect.uid
    assert user.gid == expect.gid
    assert user.group == expect.group
    assert user.home == expect.home
    assert user.shell == "/bin/bash"
    assert host.group(expect.group).gid == expect.gid
    assert host.file(expect.home).user == expect.user


def test_across_nodes_the_service_account_ids_are_identical(inventory):
    runner = _runner(inventory)
    ids = {}
    for name in runner.get_hosts("all"):
        node = runner.get_host(name)
        user = Expect(inventory, name).user
        result = node.run(f"id -u {user} && id -g {user}")
        assert result.rc == 0, f"{name}: {result.stderr}"
        ids[name] = tuple(int(v) for v in result.stdout.split())
    assert len(set(ids.values())) == 1, f"uid/gid differ between nodes: {ids}"
    expect = Expect(inventory, next(iter(ids)))
    assert set(ids.values()) == {(expect.uid, expect.gid)}


# --- os_prep: limits and kernel parameters ---


def test_limits_file_sets_soft_and_hard_limits_for_root_and_the_account(host, expect):
    f = host.file("/etc/security/limits.d/99-backend-ai.conf")
    assert f.is_file
    assert f.user == "root" and f.mode == 0o644
    entries = _limits_file_entries(f.content_string)
    for domain in ("root", expect.user):
        for item, value in LIMITS.items():
            for kind in ("soft", "hard"):
                assert entries.get((domain, kind, item)) == value, (domain, kind, item)


def test_limits_apply_to_a_login_session_of_the_account(host, expect):
    # nproc can always be lowered; nofile only where the node's own hard limit allows it
    # (containers without CAP_SYS_RESOURCE cannot raise it).
    result = host.run(_as_user(expect.user, "ulimit -Su; ulimit -Hu"))
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == [str(LIMITS["nproc"])] * 2


def test_limits_raise_open_files_where_the_node_allows_it(host, expect):
    hard = host.run("awk '/^Max open files/ {print $5}' /proc/1/limits").stdout.strip()
    if hard != "unlimited" and int(hard) < LIMITS["nofile"]:
        pytest.skip(
            f"the node's own hard nofile limit is {hard} (container without CAP_SYS_RESOURCE)"
        )
    result = host.run(_as_user(expect.user, "ulimit -Sn"))
    assert result.stdout.strip() == str(LIMITS["nofile"])


def test_local_port_range_matches_the_node_kind(host, expect):
    live = " ".join(host.file("/proc/sys/net/ipv4/ip_local_port_range").content_string.split())
    assert live == expect.port_range, f"{'agent' if expect.is_agent else 'non-agent'} node"


def test_somaxconn_is_set_live(host, expect):
    assert host.file("/proc/sys/net/core/somaxconn").content_string.strip() == expect.somaxconn


def test_sysctl_file_records_the_settings(host, expect):
    f = host.file("/etc/sysctl.d/99-backend-ai.conf")
    assert f.is_file and f.user == "root" and f.mode == 0o644
    settings = {}
    for line in f.content_string.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            settings[key.strip()] = " ".join(value.split())
    assert settings.get("net.ipv4.ip_local_port_range") == expect.port_range
    assert settings.get("net.core.somaxconn") == expect.somaxconn


# --- os_prep: autoenv, /etc/hosts, shared storage ---


def test_autoenv_script_is_installed_and_sourced(host, expect):
    script = host.file(f"{expect.home}/scripts/autoenv.sh")
    assert script.is_file and script.user == expect.user and script.mode == 0o755
    assert "alias cd='_cd'" in script.content_string
    bashrc = host.file(f"{expect.home}/.bashrc").content_string
    sourced = [
        line
        for line in bashrc.splitlines()
        if re.match(r'^\s*(\.|source)\s+"?(\$\{HOME\}|\$HOME|~)/scripts/autoenv\.sh"?\s*$', line)
    ]
    assert len(sourced) == 1, f"autoenv sourced {len(sourced)} times in .bashrc"
    # An interactive login shell of the account really gets the cd wrapper.
    result = host.run(
        _as_user(expect.user, "bash -ic 'type _cd >/dev/null && alias cd' 2>/dev/null")
    )
    assert "_cd" in result.stdout


def test_hosts_file_has_one_backend_ai_block(host):
    content = host.file("/etc/hosts").content_string
    assert content.count(HOSTS_BEGIN) == 1
    assert content.count(HOSTS_END) == 1
    assert content.index(HOSTS_BEGIN) < content.index(HOSTS_END)


def test_every_node_resolves_by_name_and_fqdn(host, expect):
    for other in expect.hosts:
        address = expect.address_of(other)
        for name in (other, f"{other}.{expect.hosts_domain}"):
            result = host.run(f"getent hosts {shlex.quote(name)}")
            assert result.rc == 0, f"{name} does not resolve on {expect.name}"
            assert result.stdout.split()[0] == address, f"{name} -> {result.stdout.strip()}"


def test_volume_directory_belongs_to_the_account_on_storage_nodes(host, expect):
    if not expect.is_storage:
        pytest.skip(f"{expect.name} is not a storage-proxy or agent node")
    d = host.file(expect.volume_dir)
    assert d.is_directory
    assert d.user == expect.user and d.group == expect.group
    assert d.uid == expect.uid and d.gid == expect.gid


def test_across_nodes_the_shared_volume_keeps_ownership(inventory):
    runner = _runner(inventory)
    storage = [h for h in runner.get_hosts("all") if Expect(inventory, h).is_storage]
    if len(storage) < 2:
        pytest.skip("fewer than two storage-proxy/agent nodes")
    writer, readers = storage[0], storage[1:]
    expect = Expect(inventory, writer)
    probe = f"{expect.volume_dir}/.os-tier-test-{os.getpid()}"
    node = runner.get_host(writer)
    created = node.run(_as_user(expect.user, f"echo probe > {shlex.quote(probe)}"))
    assert created.rc == 0, created.stderr
    try:
        for reader in readers:
            f = runner.get_host(reader).file(probe)
            assert f.exists, f"{probe} written on {writer} is not visible on {reader}"
            assert (f.uid, f.gid) == (expect.uid, expect.gid), reader
    finally:
        node.run(f"rm -f {shlex.quote(probe)}")


# --- docker_nvidia ---


def test_docker_is_running_and_enabled(host):
    docker = host.service("docker")
    assert docker.is_running
    assert docker.is_enabled


def test_docker_uses_the_registry_as_insecure(host, expect):
    result = host.run("docker info --format json")
    assert result.rc == 0, result.stderr
    info = json.loads(result.stdout)
    index = info["RegistryConfig"]["IndexConfigs"]
    assert expect.registry_fqdn in index, f"{expect.registry_fqdn} not in {sorted(index)}"
    assert index[expect.registry_fqdn]["Secure"] is False
    assert info["CgroupDriver"] == expect.vars.get("docker_nvidia_cgroup_driver", "cgroupfs")
    # The running daemon really has live restore (containers survive a dockerd restart).
    assert info["LiveRestoreEnabled"] is expect.vars.get("docker_nvidia_live_restore", True)


def test_daemon_json_keeps_the_guide_settings(host, expect):
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert expect.registry_fqdn in daemon["insecure-registries"]
    assert daemon["icc"] is False
    assert any(o.startswith("native.cgroupdriver=") for o in daemon["exec-opts"])


def test_docker_compose_v2_works(host):
    result = host.run("docker compose version")
    assert result.rc == 0, result.stderr
    assert re.search(r"version v?2\.", result.stdout), result.stdout


def test_service_account_uses_docker_without_sudo(host, expect):
    assert "docker" in host.user(expect.user).groups
    result = host.run(_as_user(expect.user, "docker version --format '{{.Server.Version}}'"))
    assert result.rc == 0, result.stderr
    assert result.stdout.strip()


def test_gpu_nodes_have_the_nvidia_runtime(host, expect):
    if expect.name not in expect.groups.get("gpu_agents", []):
        pytest.skip(f"{expect.name} is not in gpu_agents")
    info = json.loads(host.run("docker info --format json").stdout)
    assert expect.vars.get("docker_nvidia_runtime_name", "nvidia") in info["Runtimes"]


# --- static_python ---


def test_pinned_python_is_3_13(host, expect):
    result = host.run(f"{shlex.quote(expect.python_bin)} --version")
    assert result.rc == 0, result.stderr
    match = re.match(r"Python (\d+)\.(\d+)\.(\d+)", result.stdout.strip())
    assert match, result.stdout
    assert (int(match[1]), int(match[2])) == (3, 13), "Backend.AI 26.9 needs >=3.13,<3.14"


def test_pinned_python_is_not_writable_by_the_account_outside_its_home(host, expect):
    # A distribution interpreter linked into the layout must stay root's: a writable one would
    # let the service account change what root runs.
    real = host.run(f"readlink -f {shlex.quote(expect.python_bin)}").stdout.strip()
    if real.startswith(expect.home + "/"):
        pytest.skip("the interpreter is an archive install inside the account's home")
    f = host.file(real)
    assert f.user == "root" and f.group == "root", f"{real} is owned by {f.user}:{f.group}"
    assert not f.mode & 0o022


def test_account_creates_a_venv_with_pip(host, expect):
    script = (
        "set -e; d=$(mktemp -d); trap 'rm -rf \"$d\"' EXIT; "
        f'{shlex.quote(expect.python_bin)} -m venv "$d/v"; '
        '"$d/v/bin/pip" --version; "$d/v/bin/python" -c \'import sys; print(sys.prefix)\''
    )
    result = host.run(_as_user(expect.user, script))
    assert result.rc == 0, result.stderr
    assert re.search(r"^pip \S+ from .*\(python 3\.13\)$", result.stdout, re.M), result.stdout
    assert "/v" in result.stdout.splitlines()[-1]
