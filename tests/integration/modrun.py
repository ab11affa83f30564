"""Shared helpers for integration tests: run one of the collection's modules on this machine.

``run_module`` executes the module file directly with this Python, the way Ansible's
AnsiballZ wrapper does in the end: the arguments go in as ``ANSIBLE_MODULE_ARGS`` (with the
``_ansible_check_mode`` and ``_ansible_diff`` flags the controller would set) and the module's
JSON answer is parsed. That costs a fraction of a second instead of several seconds for the
``ansible`` CLI. ``via_cli=True`` runs the real ``ansible`` ad-hoc command instead, so that the
controller side (argument templating, ``--check``/``--diff`` handling, no_log censoring) stays
covered by at least one test of every module.
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
COLLECTIONS = REPO / ".collections"
MODULES = REPO / "plugins" / "modules"
PREFIX = "backendai.cluster."


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def module_path(module):
    """The file of a module given as ``backendai.cluster.<name>`` or ``<name>``."""
    name = module[len(PREFIX):] if module.startswith(PREFIX) else module
    path = MODULES / f"{name}.py"
    if "." in name or not path.is_file():
        raise ValueError(f"{module} is not a module of this collection")
    return path


def first_json_object(text):
    """The first JSON object that starts a line of ``text`` (warnings may come before it)."""
    for match in re.finditer(r"^\{", text, re.M):
        try:
            return json.JSONDecoder().raw_decode(text[match.start():])[0]
        except ValueError:
            continue
    return None


def _run_direct(module, args, check, diff, extra_env):
    with tempfile.TemporaryDirectory(prefix="modrun-") as tmp:
        params = dict(args)
        params.update({
            "_ansible_check_mode": bool(check),
            "_ansible_diff": bool(diff),
            "_ansible_module_name": module if module.startswith(PREFIX) else PREFIX + module,
            "_ansible_remote_tmp": tmp,
            "_ansible_tmpdir": tmp,
            "_ansible_keep_remote_files": False,
            "_ansible_no_log": False,
            "_ansible_verbosity": 0,
        })
        args_file = pathlib.Path(tmp) / "args.json"
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        pythonpath = [str(COLLECTIONS)]
        if os.environ.get("PYTHONPATH"):
            pythonpath.append(os.environ["PYTHONPATH"])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath),
                   PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **(extra_env or {}))
        proc = subprocess.run([sys.executable, str(module_path(module)), str(args_file)],
                              cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    result = first_json_object(proc.stdout)
    if isinstance(result, dict):
        # What the controller would drop or add before a playbook sees the result.
        result.setdefault("changed", False)
        if proc.returncode != 0:
            result.setdefault("failed", True)
    else:
        result = None
    return proc.returncode, result, out


def _run_cli(module, args, check, diff, extra_env):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_NOCOLOR="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               **(extra_env or {}))
    name = module if "." in module else PREFIX + module
    cmd = [str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,",
           "-e", "ansible_python_interpreter=" + sys.executable,
           "-m", name, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    try:
        result = first_json_object(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (TypeError, KeyError, IndexError):
        result = None
    return proc.returncode, result, out


def run_module(module, args, check=False, diff=False, extra_env=None, via_cli=False):
    """Run one module on localhost; return (rc, result dict or None, raw output).

    ``rc`` is 0 on success and non-zero on failure either way (the CLI says 2, a module 1).
    BAI_MODRUN_VIA_CLI=1 in the environment sends every call through the CLI.
    """
    runner = _run_cli if via_cli or os.environ.get("BAI_MODRUN_VIA_CLI") else _run_direct
    return runner(module, args, check, diff, extra_env)


def require_binary(name, package):
    path = shutil.which(name)
    if not path:
        pytest.fail(f"{name} is not installed: run tools/install-test-deps.sh (Debian package "
                    f"{package})")
    return path


def start_etcd(tmp_path_factory, name):
    """Start a real etcd (Debian's etcd-server) on free ports; return (proc, url, data dir)."""
    binary = require_binary("etcd", "etcd-server")
    data = tmp_path_factory.mktemp(name)
    port, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [binary, "--name", name, "--data-dir", str(data), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"{name}=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/version", timeout=1)
            return proc, url, data
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("etcd did not start")
