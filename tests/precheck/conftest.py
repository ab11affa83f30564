"""Shared helpers for the precheck and secrets tests: run ansible-playbook on a throw-away
inventory whose hosts all use the local connection (no nodes are needed)."""

from __future__ import annotations

import hashlib
import os
import re
import string
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CATALOG = yaml.safe_load((REPO / "roles/precheck/vars/main.yml").read_text())["_precheck_secrets"]
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", re.M)

_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def _chars(seed: str, n: int, alphabet: str = _B62) -> str:
    """A deterministic, random-looking string (the tests must not depend on luck)."""
    out = ""
    counter = 0
    while len(out) < n:
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        out += "".join(alphabet[b % len(alphabet)] for b in digest)
        counter += 1
    return out[:n]


def good_secret(entry: dict) -> str:
    """A value precheck accepts for this catalog entry."""
    name, kind = entry["name"], entry["kind"]
    if kind == "access_key":
        return "AKIA" + _chars(name, 16, string.digits + string.ascii_uppercase)
    if kind == "secret_key":
        return _chars(name, 38) + "/+"
    if kind == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    if kind == "secret":
        return _chars(name, 64)
    value = "Aa1" + _chars(name, 29)
    return value[:-2] + "_." if entry.get("special") else value


GOOD_SECRETS = {entry["name"]: good_secret(entry) for entry in CATALOG}


def ansible_env() -> dict:
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    return env


def run_playbook(playbook: str, inventory: Path, *args: str, env: dict | None = None):
    """Run a playbook of the collection; return (returncode, combined output)."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(REPO / playbook), "-i", str(inventory), *args]
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env=env or ansible_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def recap(output: str) -> dict[str, tuple[int, int]]:
    """host -> (changed, failed) from the PLAY RECAP."""
    return {m[0]: (int(m[1]), int(m[2])) for m in RECAP.findall(output)}


@pytest.fixture
def env():
    return ansible_env()
