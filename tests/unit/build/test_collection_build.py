"""The built collection carries no vault, cache or controller-local file.

Copies the files git tracks into a temporary tree, plants what a working checkout typically
holds next to them (a filled-in vault, pytest/ruff caches, compiled files, a retry file, the
controller's venv and artifacts), builds the collection with ``ansible-galaxy collection build``
and reads the archive's file list.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
GALAXY = Path(sys.executable).with_name("ansible-galaxy")

PLANTED = [
    "inventories/prod/group_vars/all/vault.yml",
    "inventories/demo/group_vars/all/vault.yml",
    ".pytest_cache/v/cache/lastfailed",
    "tests/unit/.pytest_cache/README.md",
    ".ruff_cache/0.1/123",
    "plugins/filter/__pycache__/toml.cpython-311.pyc",
    "site.retry",
    ".venv/bin/python",
    ".cache/facts/mgr1",
    "artifacts/wheels/x.whl",
]


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


@pytest.fixture(scope="module")
def built_members(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if not GALAXY.exists():
        pytest.skip("ansible-galaxy is not installed next to this interpreter")
    tree = tmp_path_factory.mktemp("src") / "cluster"
    for rel in _tracked_files():
        src = ROOT / rel
        if src.is_file():
            dest = tree / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest, follow_symlinks=False)
    for rel in PLANTED:
        dest = tree / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("planted by the build test: bai_postgres_password: secret\n")
    out_dir = tmp_path_factory.mktemp("out")
    subprocess.run(
        [str(GALAXY), "collection", "build", "--output-path", str(out_dir), str(tree)],
        check=True,
        capture_output=True,
    )
    (archive,) = out_dir.glob("backendai-cluster-*.tar.gz")
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_the_collection_builds_with_its_roles_and_modules(built_members: list[str]) -> None:
    for rel in (
        "MANIFEST.json",
        "roles/manager/tasks/main.yml",
        "plugins/modules/backendai_etcd.py",
        "plugins/filter/toml.py",
        "inventories/prod/group_vars/all/vault.yml.example",
    ):
        assert rel in built_members, rel


@pytest.mark.parametrize("planted", PLANTED)
def test_no_planted_file_is_in_the_archive(built_members: list[str], planted: str) -> None:
    assert planted not in built_members


def test_no_cache_or_controller_directory_is_in_the_archive(built_members: list[str]) -> None:
    forbidden = {".pytest_cache", ".ruff_cache", "__pycache__", ".venv", ".cache", "artifacts"}
    leaked = [m for m in built_members if forbidden.intersection(m.split("/"))]
    assert not leaked
