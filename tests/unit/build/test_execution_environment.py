"""The AWX/Tower execution environment gets the collection and what running it needs, no more.

Builds the collection, writes the build context with ``ansible-builder create`` from the
repository's ``execution-environment.yml`` and reads it: the pinned ansible-core and
ansible-runner, this collection's archive, and the collections it uses at the versions the test
suite runs (those bundled in the pinned ``ansible`` package). Then installs the built archive and
runs ansible-builder's own introspection, the step that decides inside the image build which
Python and system packages the collections add: only the SSH client of ``bindep.txt``; without
``meta/execution-environment.yml`` it would take the controller's ``requirements.txt`` instead,
and no tool of ``requirements-dev.txt`` is ever in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DEV_TOOLS = ("molecule", "pytest", "ansible-lint", "yamllint", "ruff", "ansible-builder")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line.strip())
        if match:
            pins[match.group(1).split("[")[0].lower()] = match.group(2)
    return pins


def _run(*argv: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def galaxy() -> dict:
    return yaml.safe_load((ROOT / "galaxy.yml").read_text())


@pytest.fixture(scope="module")
def ee_file() -> dict:
    return yaml.safe_load((ROOT / "execution-environment.yml").read_text())


@pytest.fixture(scope="module")
def archive(tmp_path_factory, galaxy) -> Path:
    if not (BIN / "ansible-builder").exists():
        pytest.skip("ansible-builder is not installed next to this interpreter")
    out = tmp_path_factory.mktemp("build")
    _run(BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ROOT)
    return out / f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"


@pytest.fixture(scope="module")
def context(tmp_path_factory, archive, ee_file) -> Path:
    work = tmp_path_factory.mktemp("ee")
    shutil.copy2(ROOT / "execution-environment.yml", work)
    for item in ee_file.get("additional_build_files", []):
        dest = work / item["src"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(archive, dest)
    _run(BIN / "ansible-builder", "create", "-f", work / "execution-environment.yml",
         "-c", work / "context")
    return work / "context"


@pytest.fixture(scope="module")
def installed(tmp_path_factory, archive) -> Path:
    path = tmp_path_factory.mktemp("collections")
    _run(BIN / "ansible-galaxy", "collection", "install", "--offline", "--no-deps", "--force",
         "-p", path, archive)
    return path


def _introspect(path: Path) -> dict:
    out = _run(BIN / "ansible-builder", "introspect", path)
    return yaml.safe_load(out[out.index("---"):])


def test_the_ee_file_names_the_archive_galaxy_yml_builds(ee_file, galaxy, archive):
    srcs = [item["src"] for item in ee_file["additional_build_files"]]
    assert srcs == [f"build/{archive.name}"], srcs
    names = [c["name"] for c in ee_file["dependencies"]["galaxy"]["collections"]]
    assert f"collections/{archive.name}" in names, names


def test_the_context_installs_the_pinned_ansible_core_and_runner(context):
    containerfile = next(p for p in (context / "Containerfile", context / "Dockerfile")
                         if p.exists()).read_text()
    runtime = _pins(ROOT / "requirements.txt")
    dev = _pins(ROOT / "requirements-dev.txt")
    refs = re.search(r'ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile).group(1).split()
    assert sorted(refs) == sorted([f"ansible-core=={runtime['ansible-core']}",
                                   f"ansible-runner=={dev['ansible-runner']}"]), refs


def test_the_context_carries_the_collection_and_the_tested_dependency_versions(context, archive):
    assert (context / "_build" / "collections" / archive.name).is_file()
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    pinned = {c["name"]: c.get("version", "") for c in wanted if c.get("type") != "file"}
    galaxy_deps = yaml.safe_load((ROOT / "galaxy.yml").read_text())["dependencies"]
    assert set(galaxy_deps) <= set(pinned), (sorted(galaxy_deps), sorted(pinned))
    # The versions the test suite runs: those bundled in the pinned ansible package.
    bundle = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
    for name, version in pinned.items():
        manifest = bundle / name.replace(".", "/") / "MANIFEST.json"
        tested = json.loads(manifest.read_text())["collection_info"]["version"]
        assert version == f"=={tested}", (name, version, tested)


def test_introspection_adds_no_development_tool(installed):
    data = _introspect(installed)
    assert data["python"] == [], data["python"]
    system = [line.split()[0] for line in data["system"]]
    assert sorted(system) == ["openssh-client", "openssh-clients"], data["system"]


def test_without_the_meta_file_the_controller_pins_would_come_in(installed, tmp_path):
    copy = tmp_path / "collections"
    shutil.copytree(installed, copy)
    (copy / "ansible_collections/backendai/cluster/meta/execution-environment.yml").unlink()
    python = " ".join(_introspect(copy)["python"])
    # requirements.txt is then the collection's Python requirement (ansible-builder drops the
    # ansible and ansible-core lines itself); it still names no test tool.
    assert "jinja2==" in python, python
    assert not any(tool in python for tool in DEV_TOOLS), python


def test_the_runtime_requirements_name_no_development_tool():
    runtime = _pins(ROOT / "requirements.txt")
    assert not set(runtime) & set(DEV_TOOLS), sorted(runtime)
    dev = (ROOT / "requirements-dev.txt").read_text()
    assert "-r requirements.txt" in dev.splitlines()
