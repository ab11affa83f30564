#!/usr/bin/env python3
"""Benchmark: the install guide's etcd keys through backendai_etcd versus the manager CLI.

Prints figures; asserts nothing beyond both ways leaving exactly the same keys in etcd.

    .venv/bin/python benchmarks/etcd_put.py

Writes the guide's full key set (Redis address and password, the Harbor registry entry,
auto-pull, the volume types, default host and storage proxy) into a real etcd:

* once with ``backendai_etcd`` - one module call holding the whole document, timed both as an
  ad-hoc ``ansible`` task and as the bare module run (what a playbook task costs beyond
  Ansible's per-task overhead);
* once with ``backend.ai mgr etcd put`` - one process per key, as the guide does;
* once with ``put`` for ``config/`` and ``put-json volumes`` for the volumes, the guide's
  shorter variant.

etcd runs on this machine (Debian's ``etcd-server``). The manager CLI needs Python 3.13, so it
runs in a container from the test-bed node image with backend.ai-manager installed offline
from the wheelhouse (``make images artifacts``); the container shares the host network to
reach etcd on 127.0.0.1 and is removed at the end. Its set-up time is not measured; the
image and virtualenv volume that the DB module integration tests cache are reused when present.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
IMAGE = os.environ.get("BAI_NODE_IMAGE", "backendai-testbed/node:trixie")
ARTIFACTS = Path(os.environ.get("BAI_ARTIFACTS_DIR", ROOT / "artifacts"))
WHEELS = ARTIFACTS / "wheels"
VERSION = "26.9.6"
APT_CACHE = ROOT / ".cache" / "modtest" / "apt"
CONTAINER = f"bai-bench-etcd-{os.getpid()}"
MODULE = "backendai.cluster.backendai_etcd"
VENV = "/opt/bai/manager"

# The guide's values (storage proxy "bai-m1", Harbor at the registry FQDN of section 2).
REGISTRY = "10.20.30.10:7080"
REGISTRY_KEY = "10.20.30.10%3A7080"  # the FQDN as one quoted key piece (`mgr etcd quote`)
DOCUMENT = {
    "config": {
        "redis": {"addr": "10.20.30.10:8110", "password": "develove"},
        "docker": {
            "image": {"auto_pull": "tag"},
            "registry": {REGISTRY: {"": f"http://{REGISTRY}", "type": "harbor2",
                                    "project": "stable,community", "username": "bai",
                                    "password": "secure-password", "ssl_verify": "false"}},
        },
    },
    "volumes": {
        "_types": {"group": "", "user": ""},
        "default_host": "bai-m1:local",
        "exposed_volume_info": "percentage",
        "proxies": {"bai-m1": {"client_api": "http://10.20.30.10:6021",
                               "manager_api": "http://bai-m1:6022",
                               "secret": "secure-token-to-authenticate-manager-request",
                               "ssl_verify": "false"}},
    },
}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def leaves(prefix, node):
    """(key, value) pairs of the document as the CLI's put commands take them."""
    if not isinstance(node, dict):
        return [(prefix, node)]
    out = []
    for key, value in node.items():
        piece = REGISTRY_KEY if key == REGISTRY else key
        out += leaves(f"{prefix}/{piece}" if piece else prefix, value)
    return out


class Etcd:
    def __init__(self, workdir):
        binary = shutil.which("etcd")
        if not binary:
            sys.exit("etcd is not installed: run tools/install-test-deps.sh (etcd-server)")
        port, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.proc = subprocess.Popen(
            [binary, "--name", "bench", "--data-dir", str(workdir / "etcd"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                urllib.request.urlopen(self.url + "/version", timeout=1).close()  # noqa: S310
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        sys.exit("etcd did not start")

    def call(self, path, body):
        req = urllib.request.Request(  # noqa: S310 (our own etcd on 127.0.0.1)
            self.url + path, data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())

    def namespace(self, ns):
        prefix = f"/sorna/{ns}/"
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        res = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return {base64.b64decode(kv["key"]).decode()[len(prefix):]:
                base64.b64decode(kv.get("value", "")).decode() for kv in res.get("kvs", [])}

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def docker(*args, check=True, timeout=900, input=None):
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          input=input)
    if check and proc.returncode != 0:
        sys.exit(f"docker {' '.join(args[:2])} failed: {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return proc


def in_container(script, timeout=900):
    return docker("exec", "-i", CONTAINER, "bash", "-c", script, timeout=timeout)


def prepared_by_db_tests():
    """The node image and virtualenv volume the DB module tests cache, if they exist (the
    manager is already installed there), else None."""
    images = docker("image", "ls", "--filter", "label=backendai-modtest-cache=1",
                    "--format", "{{.Repository}}:{{.Tag}}", check=False).stdout.split()
    for image in images:
        volume = "bai-modtest-venvs-" + image.rsplit(":", 1)[1]
        if docker("volume", "inspect", volume, check=False).returncode == 0:
            return image, volume
    return None


def start_manager_cli(etcd_port):
    if shutil.which("docker") is None:
        sys.exit("Docker is needed to run the manager CLI (Python 3.13)")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        sys.exit(f"node image {IMAGE} is missing: run `make images`")
    if not list(WHEELS.glob(f"backend_ai_manager-{VERSION}-*.whl")):
        sys.exit(f"the wheelhouse {WHEELS} lacks backend.ai-manager {VERSION}: "
                 "run `make artifacts`")
    cached = prepared_by_db_tests()
    if cached:
        image, volume = cached
        docker("run", "-d", "--name", CONTAINER, "--network", "host", "--label",
               "backendai-bench=1", "-v", f"{volume}:/opt/bai", image, "sleep", "infinity")
    else:
        APT_CACHE.mkdir(parents=True, exist_ok=True)
        docker("run", "-d", "--name", CONTAINER, "--network", "host", "--label",
               "backendai-bench=1", "-v", "/opt/bai", "-v", f"{WHEELS}:/opt/wheels:ro",
               "-v", f"{APT_CACHE}:/var/cache/apt/archives", IMAGE, "sleep", "infinity")
        in_container(f"""
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
python3 -m venv {VENV}
{VENV}/bin/pip install -q --disable-pip-version-check --no-index --find-links /opt/wheels \
  backend.ai-manager=={VERSION}
""")
    in_container("mkdir -p /bench")
    for ns in ("cli", "clijson"):
        docker("exec", "-i", CONTAINER, "bash", "-c", f"mkdir -p /bench/{ns} && "
               f"cat > /bench/{ns}/manager.toml",
               input=f'[etcd]\nnamespace = "{ns}"\n'
                     f'addr = {{ host = "127.0.0.1", port = {etcd_port} }}\n')
    docker("exec", "-i", CONTAINER, "bash", "-c", "cat > /bench/clijson/volumes.json",
           input=json.dumps(DOCUMENT["volumes"]))
    # Warm up: the first start compiles the bytecode; a real install has done that already.
    in_container(f"cd /bench/cli && {VENV}/bin/backend.ai mgr etcd get config/none || true")


def timed_in_container(workdir, commands):
    """Run the commands one after the other in the container; return the seconds they took
    there (without the cost of `docker exec` itself)."""
    lines = "\n".join(" ".join(json.dumps(arg) for arg in cmd) + " >/dev/null 2>&1"
                      for cmd in commands)
    out = in_container(f"cd {workdir}\nexport PATH={VENV}/bin:$PATH\n"
                       f"s=$(date +%s.%N)\n{lines}\ne=$(date +%s.%N)\necho $s $e").stdout.split()
    return float(out[-1]) - float(out[-2])


def run_module(args, via_cli):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               PYTHONPATH=str(ROOT / ".collections"))
    if via_cli:
        cmd = [str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,",
               "-e", f"ansible_python_interpreter={BIN / 'python'}", "-m", MODULE,
               "-a", json.dumps(args)]
    else:
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args})
        cmd = [str(BIN / "python"), str(ROOT / "plugins/modules/backendai_etcd.py"), payload]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"backendai_etcd failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main():
    with tempfile.TemporaryDirectory(prefix="bai-bench-etcd-") as tmp:
        etcd = Etcd(Path(tmp))
        try:
            print(f"setting up the manager CLI in container {CONTAINER} (not timed) ...",
                  file=sys.stderr)
            start_manager_cli(etcd.port)
            keys = leaves("", DOCUMENT)
            puts = [["backend.ai", "mgr", "etcd", "put", key.lstrip("/"), value]
                    for key, value in keys]
            config_puts = [cmd for cmd in puts if cmd[4].startswith("config/")]
            rows = []

            args = {"endpoints": [etcd.url], "namespace": "modcli", "key": "",
                    "document": DOCUMENT}
            rows.append(("backendai_etcd, ansible ad hoc (1 task)", 1,
                         run_module(args, via_cli=True)))
            rows.append(("backendai_etcd, module process only", 1,
                         run_module(dict(args, namespace="mod"), via_cli=False)))
            rows.append(("backendai_etcd, re-run, nothing to change", 1,
                         run_module(dict(args, namespace="mod"), via_cli=False)))
            rows.append(("mgr etcd put, one process per key", len(puts),
                         timed_in_container("/bench/cli", puts)))
            rows.append(("mgr etcd put config/* + put-json volumes", len(config_puts) + 1,
                         timed_in_container("/bench/clijson", [
                             *config_puts,
                             ["backend.ai", "mgr", "etcd", "put-json", "volumes",
                              "volumes.json"]])))

            stored = {ns: etcd.namespace(ns) for ns in ("modcli", "mod", "cli", "clijson")}
            reference = stored["cli"]
            if len(reference) != len(keys) or any(v != reference for v in stored.values()):
                sys.exit("the runs left different keys in etcd:\n"
                         + json.dumps(stored, indent=1, sort_keys=True))
        finally:
            docker("rm", "-fv", CONTAINER, check=False)
            etcd.stop()

    module_s = rows[0][2]
    print(f"etcd keys written: {len(keys)} (the guide's Redis, Harbor registry and storage "
          f"proxy set), all four runs left identical keys")
    print(f"{'method':<44} {'processes':>9} {'seconds':>8} {'vs module':>10}")
    for name, processes, seconds in rows:
        print(f"{name:<44} {processes:>9} {seconds:>8.2f} {seconds / module_s:>9.1f}x")
    cli_s = rows[3][2]
    print(f"ratio, guide's per-key CLI / one module task: {cli_s / module_s:.1f}")


if __name__ == "__main__":
    main()
