"""What the verify tests of a converged cluster share: the inventory and its values.

The tests run against any inventory (Molecule passes its own). By hand, against the demo
cluster: ``MOLECULE_INVENTORY_FILE=inventories/demo/hosts.yml pytest tests/molecule/multinode``
(every test picks its nodes from the inventory's groups; no ``--hosts`` needed).
Expected values are read from the inventory, over the collection's defaults, so a site that
overrides a port or a name is checked against its own choices.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import shlex
import subprocess
import sys
import urllib.error
import urllib.request

import jinja2
import pytest
import yaml
from testinfra.utils.ansible_runner import AnsibleRunner

ROOT = pathlib.Path(__file__).resolve().parents[3]
DEFAULT_INVENTORY = ROOT / "inventories" / "demo" / "hosts.yml"
# Groups that default to the manager when the inventory leaves them empty (roles/_common).
FALLBACK_GROUPS = {"registry": "manager", "license_server": "manager", "halfstack": "manager"}


def inventory_path(config: pytest.Config) -> str:
    return (
        getattr(config.option, "ansible_inventory", None)
        or os.environ.get("MOLECULE_INVENTORY_FILE")
        or str(DEFAULT_INVENTORY)
    )


def http_request(method: str, url: str, headers=None, body=None, timeout: float = 20):
    """(status, parsed JSON or text) of one HTTP request from the controller.

    HTTP errors are answers too: a test asserts on the status it expects.
    """
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - test-bed URL
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def client_cli(node, bai_user: str, client_dir: str, *args: str, answer: str = ""):
    """`backend.ai --output json ARGS` on a client host, as bai_user with the superadmin's keypair
    (the client role's .env); `answer` goes to its standard input (the CLI's confirmations)."""
    line = " ".join(shlex.quote(a) for a in ["--output", "json", *args])
    script = f"cd {shlex.quote(client_dir)} && . ./.env && .venv/bin/backend.ai {line}"
    return node.run("echo %s | sudo -u %s bash -c %s", answer, bai_user, script)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lifecycle: day-2 behaviour (restarts, stop/start, backup/restore, reset); run by "
        "`make test-lifecycle` on the demo, deselected in the Molecule scenario",
    )


def run_playbook(inventory: str, playbook: str, *extra: str, env: dict | None = None,
                 timeout: int = 1800, rc: int = 0) -> str:
    """Run a playbook of the collection against the inventory; its output, or a failed test.

    ``rc`` is the exit status the test expects (2: a task failed on a host).
    """
    bindir = pathlib.Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_NOCOLOR="1", PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
               **(env or {}))
    proc = subprocess.run([str(bindir / "ansible-playbook"), playbook, "-i", inventory, *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == rc, _failure_report(proc.stdout, proc.stderr)
    return proc.stdout


def _failure_report(stdout: str, stderr: str) -> str:
    """What a failed run says: every failed task's own lines (its message can be far from the
    end of a long run), then the tail of the output."""
    lines = stdout.splitlines()
    failed = [i for i, line in enumerate(lines)
              if line.startswith(("fatal:", "failed:")) or "FAILED!" in line]
    heads = ("TASK [", "RUNNING HANDLER [", "PLAY RECAP", "PLAY [")
    parts = []
    for i in failed[:10]:
        task = next((lines[j] for j in range(i, -1, -1) if lines[j].startswith(heads)), "")
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith(heads)), len(lines))
        parts.append("\n".join([task, *lines[i:min(end, i + 40)]]))
    return "\n---\n".join([*parts, stdout[-3000:] + stderr[-2000:]])


@functools.cache
def _runner(inventory: str) -> AnsibleRunner:
    return AnsibleRunner.get_runner(inventory)


@functools.cache
def role_defaults(role: str) -> dict:
    """A role's defaults/main.yml, as written (templates not rendered)."""
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return yaml.safe_load(path.read_text()) or {}


def common_defaults() -> dict:
    return role_defaults("_common")


class Cluster:
    """Values of the cluster as the inventory sets them, over the collection's defaults."""

    def __init__(self, inventory: str, name: str | None = None):
        self.runner = _runner(inventory)
        self.hosts = self.runner.get_hosts("all")
        self.vars = self.runner.get_variables(name or self.hosts[0])
        self._host_vars: dict[str, dict] = {}
        self.groups = self.vars.get("groups", {})

    def host_vars(self, name: str) -> dict:
        """The inventory variables of one host (its groups' and its own settings)."""
        if name not in self._host_vars:
            self._host_vars[name] = self.runner.get_variables(name)
        return self._host_vars[name]

    def get(self, key: str, default=None, host: str | None = None):
        """A variable as `host` sees it (default: the first host); `{{ var }}` is rendered.

        Pass the host for a setting a group may override (group_vars/<group>.yml).
        """
        hostvars = self.host_vars(host) if host else self.vars
        value = hostvars.get(key, common_defaults().get(key, default))
        if isinstance(value, str) and "{{" in value:
            merged = {**common_defaults(), **hostvars}
            for _ in range(5):
                value = jinja2.Template(value).render(**merged)
                if "{{" not in value:
                    break
        return value

    def members(self, group: str) -> list[str]:
        return self.groups.get(group) or self.groups.get(FALLBACK_GROUPS.get(group, ""), [])

    def first(self, group: str) -> str:
        members = self.members(group)
        if not members:
            pytest.skip(f"the inventory has no {group} group")
        return members[0]

    def address_of(self, name: str) -> str:
        return str(self.runner.get_variables(name)["bai_address"])

    def secret(self, key: str) -> str:
        value = self.vars.get(key)
        if not value:
            pytest.skip(f"{key} is not readable from the inventory (encrypted vault?)")
        return str(value)

    def require(self, host, group: str) -> None:
        """Skip a per-node test on nodes outside `group`."""
        if host.backend.host not in self.members(group):
            pytest.skip(f"{host.backend.host} is not in {group}")

    def node(self, name: str):
        """A testinfra host for another node of the inventory."""
        import testinfra

        return testinfra.get_host(f"ansible://{name}", ansible_inventory=self.runner.inventory_file)


@pytest.fixture(scope="module")
def inventory(request) -> str:
    return inventory_path(request.config)


@pytest.fixture(scope="module")
def cluster(inventory) -> Cluster:
    return Cluster(inventory)
