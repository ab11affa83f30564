"""LAYOUT TEST of static_python's archive mode, with a STAND-IN archive.

No python-build-standalone archive can be downloaded in the test environment, so this test builds
a tarball of the same shape: `python/bin/python3` is a two-line script that runs the node's own
`/usr/bin/python3.13`, plus a `python3.13` link and a file under `python/lib/`. It then runs
static_python_archive.yml next to this file (the role with static_python_source=archive) on the
last agent of the inventory under test and checks:

- the files land in <bai_home>/.static-python-layout-test/versions/<X.Y>, all owned by bai;
- the marker records the archive; a second run and a --check run change nothing;
- a newer archive replaces the old one completely (rsync --delete semantics);
- a wrong sha256 fails before anything is touched.

It does not prove that a real python-build-standalone archive works (no such archive here).
Needs a node where os_prep has run (the bai account exists); runs in the Molecule verify step.
"""

from __future__ import annotations

import hashlib
import io
import os
import pathlib
import re
import subprocess
import sys
import tarfile

import pytest
from conftest import ROOT

PLAYBOOK = pathlib.Path(__file__).with_name("static_python_archive.yml")
USER = "bai"
BASE = "/home/bai/.static-python-layout-test"
SERIES = "3.13"
TRIPLE = "x86_64-unknown-linux-gnu"


def _stand_in_archive(
    directory: pathlib.Path, version: str, build: str, lib_file: str
) -> pathlib.Path:
    """A tarball shaped like a python-build-standalone install_only archive."""
    path = directory / f"cpython-{version}+{build}-{TRIPLE}-install_only.tar.gz"

    def add(
        tar: tarfile.TarFile,
        name: str,
        data: bytes = b"",
        mode: int = 0o644,
        kind=tarfile.REGTYPE,
        link="",
    ):
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.linkname = kind, mode, link
        info.uid = info.gid = 4242  # as in a build machine's archive: must not survive the install
        info.size = len(data) if kind == tarfile.REGTYPE else 0
        tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

    with tarfile.open(path, "w:gz") as tar:
        for d in ("python", "python/bin", "python/lib", f"python/lib/python{SERIES}"):
            add(tar, d, mode=0o755, kind=tarfile.DIRTYPE)
        add(tar, "python/bin/python3", b'#!/bin/sh\nexec /usr/bin/python3.13 "$@"\n', mode=0o755)
        add(tar, f"python/bin/python{SERIES}", kind=tarfile.SYMTYPE, link="python3")
        add(tar, f"python/lib/python{SERIES}/{lib_file}", f"{build}\n".encode())
    return path


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _playbook(target, *extra: str, check: bool = False) -> tuple[subprocess.CompletedProcess, dict]:
    inventory, host = target
    bindir = pathlib.Path(sys.executable).parent
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [
        str(bindir / "ansible-playbook"),
        str(PLAYBOOK),
        "-i",
        inventory,
        "-l",
        host,
        "-e",
        f"layout_test_host={host}",
    ]
    for e in extra:
        cmd += ["-e", e]
    if check:
        cmd += ["--check", "--diff"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    m = re.search(
        rf"^{re.escape(host)}\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
        proc.stdout,
        re.M,
    )
    recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m.groups()))) if m else {}
    return proc, recap


def _vars(archive: pathlib.Path, version: str, build: str, sha: str) -> list[str]:
    return [
        f"static_python_archive_dir={archive.parent}",
        f"static_python_archive_version={version}",
        f"static_python_archive_build={build}",
        f"static_python_archive_triple={TRIPLE}",
        f"static_python_archive_sha256={sha}",
    ]


@pytest.fixture(scope="module")
def target(cluster, inventory):
    """(inventory, host): the last agent, where the layout test installs beside the real Python."""
    name = cluster.members("agents")[-1] if cluster.members("agents") else cluster.hosts[-1]
    return inventory, name


@pytest.fixture(scope="module")
def node(cluster, target):
    _, name = target
    node = cluster.node(name)
    if not node.user(USER).exists:
        pytest.skip(f"{USER} does not exist on {name}: converge the OS tier first")
    version = node.run("/usr/bin/python3.13 --version").stdout.split()[-1]
    with node.sudo():
        node.run(f"rm -rf {BASE}")
    yield node, version
    with node.sudo():
        node.run(f"rm -rf {BASE}")


def test_archive_mode_layout_ownership_idempotence_upgrade_and_checksum(node, target, tmp_path):
    host, version = node
    install = f"{BASE}/versions/{SERIES}"

    # 1. First install.
    first = _stand_in_archive(tmp_path, version, "20990101", "first.txt")
    proc, recap = _playbook(target, *_vars(first, version, "20990101", _sha256(first)))
    assert proc.returncode == 0 and recap.get("failed") == 0, proc.stdout[-3000:]
    assert recap["changed"] > 0

    assert host.file(f"{install}/bin/python3").mode == 0o755
    assert host.file(f"{install}/bin/python{SERIES}").linked_to == f"{install}/bin/python3"
    assert host.file(f"{install}/lib/python{SERIES}/first.txt").exists
    assert not host.file(f"{install}/python").exists, "the archive's top directory must be stripped"
    not_owned = host.run(f"find {BASE} \\( ! -user {USER} -o ! -group {USER} \\) -print")
    assert not_owned.stdout.strip() == "", f"not owned by {USER}: {not_owned.stdout}"
    marker = host.file(f"{install}/.backendai-static-python").content_string
    assert first.name in marker and _sha256(first) in marker
    assert host.run(f"{install}/bin/python3 --version").stdout.strip() == f"Python {version}"
    leftovers = host.run("ls -d /tmp/bai-static-python.* 2>/dev/null").stdout.strip()
    assert leftovers == "", f"temporary extraction directories left behind: {leftovers}"

    # 2. Same archive again: nothing changes, in check mode either.
    proc, recap = _playbook(target, *_vars(first, version, "20990101", _sha256(first)))
    assert proc.returncode == 0 and recap.get("changed") == 0, proc.stdout[-3000:]
    proc, recap = _playbook(target, *_vars(first, version, "20990101", _sha256(first)), check=True)
    assert proc.returncode == 0 and recap.get("changed") == 0, proc.stdout[-3000:]

    # 3. A newer archive replaces the old one completely.
    second = _stand_in_archive(tmp_path, version, "20990202", "second.txt")
    proc, recap = _playbook(target, *_vars(second, version, "20990202", _sha256(second)))
    assert proc.returncode == 0 and recap.get("changed", 0) > 0, proc.stdout[-3000:]
    assert host.file(f"{install}/lib/python{SERIES}/second.txt").exists
    assert not host.file(f"{install}/lib/python{SERIES}/first.txt").exists
    assert second.name in host.file(f"{install}/.backendai-static-python").content_string

    # 4. A wrong checksum fails before the installation is touched.
    third = _stand_in_archive(tmp_path, version, "20990303", "third.txt")
    proc, recap = _playbook(target, *_vars(third, version, "20990303", "0" * 64))
    assert proc.returncode != 0 and recap.get("failed") == 1
    assert "sha256" in proc.stdout
    assert host.file(f"{install}/lib/python{SERIES}/second.txt").exists
    assert second.name in host.file(f"{install}/.backendai-static-python").content_string
