"""Integration tests of backendai_alembic, backendai_fixture and backendai_rpc_keypair.

One Debian trixie node container (``bai-modtest``, systemd as PID 1) gets PostgreSQL from
Debian and the real Backend.AI 26.9.6 manager and app-proxy coordinator installed offline from
the wheelhouse. Steps marked ``cli`` run through ``ansible-playbook`` against it, over the
community.docker connection, exactly as a playbook would use the modules (at least one step of
every module, with check and diff mode); the other steps execute the module file directly with
the node's Python, which is several times faster (``direct_task``).

Needs Docker, the node image (``make images``) and the wheelhouse (``make artifacts``).

The prepared node is cached: the first run builds an image ``backendai-testbed/modtest:<key>``
(PostgreSQL installed, roles and empty databases created) and a volume
``bai-modtest-venvs-<key>`` (the two virtualenvs), keyed on the node image, this file's build
script and the wheelhouse; later runs start from them in seconds. Every test run still starts a
fresh container from the pristine image and removes it at the end. ``BAI_MODTEST_REBUILD=1``
rebuilds the cache, ``BAI_KEEP_MODTEST=1`` keeps the container for inspection.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".collections"))

import ansible  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils._backendai import (  # noqa: E402
    make_password_hash,
    verify_password_hash,
)
from modrun import first_json_object  # noqa: E402

IMAGE = os.environ.get("BAI_NODE_IMAGE", "backendai-testbed/node:trixie")
ARTIFACTS = Path(os.environ.get("BAI_ARTIFACTS_DIR", ROOT / "artifacts"))
WHEELS = ARTIFACTS / "wheels"
VERSION = "26.9.6"
NODE = "bai-modtest"
APT_CACHE = ROOT / ".cache" / "modtest" / "apt"
ANSIBLE_PKG = Path(ansible.__file__).parent
MODLIB = "/opt/modrun"
COLLECTION_PLUGINS = "ansible_collections/backendai/cluster/plugins"

MGR_VENV = "/opt/bai/manager"
APC_VENV = "/opt/bai/appproxy-coordinator"
ETC = "/etc/backend.ai"
DB_USER = "bai"
DB_PASSWORD = "Db-Pw!x7q-integration"
ADMIN_PASSWORD = "AdminPw-1234-integration"
USER_PASSWORD = "UserPw-5678-integration"
ADMIN_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
USER_SECRET_KEY = "userSecretKeyExample0000000000000000000X"
API_TOKEN = "appproxy-api-token-integration"
SECRETS = [DB_PASSWORD, ADMIN_PASSWORD, USER_PASSWORD, ADMIN_SECRET_KEY, USER_SECRET_KEY,
           API_TOKEN]

ENV = dict(
    os.environ,
    PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_NOCOLOR="1",
)

LOGGING_INI = """
[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
"""


def alembic_ini(location, database, password=DB_PASSWORD, port=5432):
    return (
        "[alembic]\n"
        f"script_location = {location}\n"
        f"sqlalchemy.url = postgresql+asyncpg://{DB_USER}:{password}@127.0.0.1:{port}/{database}\n"
        + LOGGING_INI
    )


def manager_toml(password=DB_PASSWORD, port=5432):
    return (
        '[etcd]\nnamespace = "local"\naddr = { host = "127.0.0.1", port = 2379 }\n\n'
        '[db]\ntype = "postgresql"\n'
        f'addrs = [ {{ host = "127.0.0.1", port = {port} }} ]\n'
        f'name = "backend"\nuser = "{DB_USER}"\npassword = "{password}"\n'
    )


BUILD = f"""
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# python3-cryptography: backendai_rpc_keypair needs it on the node (os_prep installs it there).
apt-get install -y -qq --no-install-recommends \\
  postgresql python3-venv python3-cryptography >/dev/null
if [ ! -f /opt/bai/.complete ]; then
  rm -rf {MGR_VENV} {APC_VENV}
  python3 -m venv {MGR_VENV}
  python3 -m venv {APC_VENV}
  pipi() {{ "$1/bin/pip" install -q --disable-pip-version-check --no-compile --no-index \
            --find-links /opt/wheels "$2"; }}
  pipi {MGR_VENV} backend.ai-manager=={VERSION} & mgr=$!
  pipi {APC_VENV} backend.ai-appproxy-coordinator=={VERSION} & apc=$!
  wait $mgr
  wait $apc
  touch /opt/bai/.complete
fi
until pg_isready -q; do sleep 0.5; done
su postgres -c "psql -q -c \\"CREATE ROLE {DB_USER} LOGIN PASSWORD '{DB_PASSWORD}'\\" \
  -c 'CREATE DATABASE backend OWNER {DB_USER}' -c 'CREATE DATABASE appproxy OWNER {DB_USER}'"
mkdir -p {ETC}/keys
systemctl stop postgresql
"""


def docker(*args, check=True, timeout=600, input=None):
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, input=input
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args[:3])} failed (rc={proc.returncode}):\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


def sh(script, check=True, timeout=600):
    return docker("exec", "-i", NODE, "bash", "-c", script, check=check, timeout=timeout)


def put_file(path, content):
    docker("exec", "-i", NODE, "bash", "-c", f"cat > {path}", input=content)


# ---------------------------------------------------------------------------------------------
# The node
# ---------------------------------------------------------------------------------------------


NODE_OPTIONS = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run", "--tmpfs", "/tmp",
)
CACHE_LABEL = "backendai-modtest-cache"


def wait_for_systemd(name):
    for _ in range(60):
        state = docker("exec", name, "systemctl", "is-system-running", "--wait", check=False,
                       timeout=120)
        if state.stdout.strip() in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError(f"systemd in {name} did not come up: {state.stdout}{state.stderr}")


def cache_key():
    """What the prepared node depends on: the node image, the build script, the wheelhouse."""
    digest = hashlib.sha256(BUILD.encode())
    digest.update(docker("image", "inspect", "-f", "{{.Id}}", IMAGE).stdout.encode())
    for wheel in sorted(WHEELS.iterdir()):
        digest.update(f"{wheel.name} {wheel.stat().st_size}\n".encode())
    return digest.hexdigest()[:12]


def prepared_node():
    """Image (PostgreSQL with the roles and databases) and volume (the two virtualenvs) of a
    ready node, built once for the current node image and wheelhouse and then reused.

    The virtualenvs live in a named volume: on the overlay storage driver they import far
    slower. BAI_MODTEST_REBUILD=1 rebuilds both. Caches of other keys are removed.
    """
    key = cache_key()
    image, volume = f"backendai-testbed/modtest:{key}", f"bai-modtest-venvs-{key}"
    have_image = docker("image", "inspect", image, check=False).returncode == 0
    have_volume = docker("volume", "inspect", volume, check=False).returncode == 0
    if os.environ.get("BAI_MODTEST_REBUILD") or not (have_image and have_volume):
        for old in docker("image", "ls", "-q", "--filter", f"label={CACHE_LABEL}").stdout.split():
            docker("rmi", "-f", old, check=False)
        for old in docker("volume", "ls", "-q", "--filter", f"label={CACHE_LABEL}").stdout.split():
            docker("volume", "rm", "-f", old, check=False)
        docker("volume", "create", "--label", f"{CACHE_LABEL}=1", volume)
        builder = f"{NODE}-build"
        docker("rm", "-fv", builder, check=False)
        try:
            docker("run", "-d", "--name", builder, *NODE_OPTIONS,
                   "-v", f"{volume}:/opt/bai", "-v", f"{WHEELS}:/opt/wheels:ro",
                   "-v", f"{APT_CACHE}:/var/cache/apt/archives", IMAGE, "/sbin/init")
            wait_for_systemd(builder)
            docker("exec", "-i", builder, "bash", "-c", BUILD, timeout=1200)
            docker("commit", "-c", f"LABEL {CACHE_LABEL}=1", builder, image)
        except BaseException:
            docker("volume", "rm", "-f", volume, check=False)
            raise
        finally:
            docker("rm", "-fv", builder, check=False)
    return image, volume


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    if shutil.which("docker") is None:
        pytest.fail("Docker is required for the module integration tests")
    if docker("image", "inspect", IMAGE, check=False).returncode != 0:
        pytest.fail(f"node image {IMAGE} is missing: run `make images artifacts` first")
    if not list(WHEELS.glob(f"backend_ai_manager-{VERSION}-*.whl")) or not list(
        WHEELS.glob(f"backend_ai_appproxy_coordinator-{VERSION}-*.whl")
    ):
        pytest.fail(f"wheelhouse {WHEELS} lacks the {VERSION} wheels: run `make images artifacts`")
    APT_CACHE.mkdir(parents=True, exist_ok=True)
    docker("rm", "-fv", NODE, check=False)
    started = time.monotonic()
    image, volume = prepared_node()
    try:
        docker("run", "-d", "--name", NODE, "--hostname", NODE, *NODE_OPTIONS,
               "-v", f"{volume}:/opt/bai",
               # For running the modules directly: ansible's module_utils and the collection.
               "-v", f"{ANSIBLE_PKG}:{MODLIB}/ansible:ro",
               "-v", f"{ROOT / 'plugins'}:{MODLIB}/{COLLECTION_PLUGINS}:ro",
               "--label", "backendai-modtest=1", image, "/sbin/init")
        wait_for_systemd(NODE)
        sh("until pg_isready -q; do sleep 0.5; done", timeout=120)
        put_file(f"{ETC}/alembic.ini", alembic_ini("ai.backend.manager.models:alembic", "backend"))
        put_file(
            f"{ETC}/alembic-appproxy.ini",
            alembic_ini("ai.backend.appproxy.coordinator.models:alembic", "appproxy"),
        )
        put_file(
            f"{ETC}/alembic-badpw.ini",
            alembic_ini("ai.backend.manager.models:alembic", "backend", password="Wrong-Pw-42"),
        )
        put_file(
            f"{ETC}/alembic-down.ini",
            alembic_ini("ai.backend.manager.models:alembic", "backend", port=5499),
        )
        put_file(f"{ETC}/manager.toml", manager_toml())
        put_file(f"{ETC}/manager-badpw.toml", manager_toml(password="Wrong-Pw-42"))
        put_file(f"{ETC}/manager-down.toml", manager_toml(port=5499))
        print(f"node ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
        yield tmp_path_factory.mktemp("plays")
    finally:
        if not os.environ.get("BAI_KEEP_MODTEST"):
            docker("rm", "-fv", NODE, check=False)


def ansible_play(workdir, name, tasks, diff):
    """Run the tasks with ansible-playbook over the docker connection, exactly as a playbook
    would use the modules; return the registered result of each task."""
    registered = []
    plays_tasks = []
    for index, task in enumerate(tasks):
        task = dict(task)
        task.setdefault("ignore_errors", True)
        task["register"] = f"r{index}"
        registered.append(f"r{index}")
        plays_tasks.append(task)
    out = workdir / f"{name}.json"
    plays_tasks.append({
        "name": "Save the results",
        "delegate_to": "localhost",
        "diff": False,
        "ansible.builtin.copy": {
            "content": "{{ [" + ", ".join(registered) + "] | to_json }}",
            "dest": str(out),
            "mode": "0600",
        },
    })
    playbook = workdir / f"{name}.yml"
    playbook.write_text(json.dumps([{"hosts": NODE, "gather_facts": False, "tasks": plays_tasks}]))
    inventory = workdir / "inventory"
    inventory.write_text(
        f"{NODE} ansible_connection=community.docker.docker "
        "ansible_python_interpreter=/usr/bin/python3\n"
    )
    proc = subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(playbook), *(["--diff"] if diff else [])],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600,
    )
    (workdir / f"{name}.log").write_text(proc.stdout + proc.stderr)
    assert out.exists(), f"ansible-playbook failed (rc={proc.returncode}):\n{proc.stdout[-5000:]}"
    return json.loads(out.read_text()), proc.stdout + proc.stderr


TEMPLATE = re.compile(r"\{\{ *r(\d+)\.(\w+) *\}\}")


def resolve(value, results):
    """Fill in ``{{ rN.key }}`` (a result of an earlier task) the way a playbook would."""
    if isinstance(value, str):
        return TEMPLATE.sub(lambda m: str(results[int(m.group(1))][m.group(2)]), value)
    if isinstance(value, dict):
        return {k: resolve(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, results) for v in value]
    return value


def direct_task(task, diff):
    """Run one task without Ansible: a module file executed by the node's Python (arguments
    as ANSIBLE_MODULE_ARGS, as AnsiballZ hands them over), or the command behind a builtin.

    Returns (result, raw output)."""
    task = {k: v for k, v in task.items() if k not in ("name", "ignore_errors")}
    check = bool(task.pop("check_mode", False))
    ((action, args),) = task.items()
    if action.startswith("backendai.cluster."):
        params = dict(args, _ansible_check_mode=check, _ansible_diff=diff,
                      _ansible_module_name=action, _ansible_remote_tmp="/tmp/modrun")
        module = f"{MODLIB}/{COLLECTION_PLUGINS}/modules/{action.rsplit('.', 1)[1]}.py"
        proc = docker("exec", "-i", "-e", f"PYTHONPATH={MODLIB}", NODE, "python3", module,
                      input=json.dumps({"ANSIBLE_MODULE_ARGS": params}), check=False)
        result = first_json_object(proc.stdout)
        if not isinstance(result, dict):
            result = {"failed": True, "msg": "MODULE FAILURE", "rc": proc.returncode,
                      "module_stdout": proc.stdout, "module_stderr": proc.stderr}
        if proc.returncode != 0:
            result.setdefault("failed", True)
        result.setdefault("changed", False)
        return result, proc.stdout + proc.stderr
    if action == "ansible.builtin.command":
        workdir = ["-w", args["chdir"]] if args.get("chdir") else []
        proc = docker("exec", *workdir, NODE, *args["argv"], check=False)
    elif action == "ansible.builtin.shell":
        proc = docker("exec", NODE, "bash", "-c", args, check=False)
    elif action == "ansible.builtin.file" and args.get("state") == "absent":
        proc = docker("exec", NODE, "rm", "-rf", "--", args["path"], check=False)
    else:
        raise ValueError(f"no direct runner for {action}")
    stdout = proc.stdout.rstrip("\r\n")
    result = {"changed": True, "rc": proc.returncode, "stdout": stdout,
              "stdout_lines": stdout.splitlines(), "stderr": proc.stderr.rstrip("\r\n")}
    if proc.returncode != 0:
        result["failed"] = True
    return result, ""


def play(workdir, name, steps, diff=False):
    """Run the steps in order and return their results by name.

    Steps marked ``cli`` go through ansible-playbook (consecutive ones in one play), the
    others run directly (``direct_task``): several times faster, and the CLI path stays
    covered for every module.
    """
    results, texts, module_results = [], [], []
    index = 0
    while index < len(steps.tasks):
        via_cli = steps.cli[index]
        end = index
        while end < len(steps.tasks) and steps.cli[end] == via_cli:
            end += 1
        tasks = [resolve(task, results) for task in steps.tasks[index:end]]
        if via_cli:
            got, text = ansible_play(workdir, f"{name}-{index}", tasks, diff)
            texts.append(text)
        else:
            got = []
            with (workdir / f"{name}-direct.log").open("a") as log:
                for task in tasks:
                    started = time.monotonic()
                    result, text = direct_task(task, diff)
                    log.write(f"{time.monotonic() - started:6.2f}s {next(iter(task))}\n")
                    got.append(result)
                    texts.append(text)
        results.extend(got)
        module_results.extend(
            result for task, result in zip(tasks, got)
            if any(key.startswith("backendai.cluster.") for key in task))
        index = end
    # Our own psql queries may print secrets; the modules and the play output must not.
    text = json.dumps(module_results) + "".join(texts)
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into the output of {name}"
    return steps.bind(results)


def changed(results):
    return [r.get("changed") for r in results]


def check_apply_twice(module, args):
    """The community idempotence pattern: check, apply, check, apply."""
    return [
        {module: args, "check_mode": True},
        {module: args},
        {module: args, "check_mode": True},
        {module: args},
    ]


def psql_task(sql, database="backend"):
    return {"ansible.builtin.command": {
        "argv": ["runuser", "-u", "postgres", "--", "psql", "-d", database, "-Atc", sql]}}


def assert_clean_failure(result, *expected):
    assert result.get("failed") is True, result
    msg = result["msg"]
    for text in expected:
        assert text in msg, msg
    assert "Traceback" not in msg and "MODULE FAILURE" not in msg, msg
    assert "module_stderr" not in result, result


class Steps:
    """Named tasks of one play, so that the tests can pick their results by name.

    ``cli=True`` runs a step's tasks through ansible-playbook instead of directly."""

    def __init__(self):
        self.tasks = []
        self.cli = []
        self.names = {}

    def add(self, name, *tasks, cli=False):
        self.names[name] = slice(len(self.tasks), len(self.tasks) + len(tasks))
        self.tasks.extend(tasks)
        self.cli.extend([cli] * len(tasks))

    def bind(self, results):
        return {name: results[index] for name, index in self.names.items()}


# ---------------------------------------------------------------------------------------------
# backendai_rpc_keypair
# ---------------------------------------------------------------------------------------------

KEYPAIR = "backendai.cluster.backendai_rpc_keypair"
PYZMQ_CHECK = (
    "import json, sys, zmq, zmq.auth\n"
    "pub, sec = zmq.auth.load_certificate(sys.argv[1] + '.key_secret')\n"
    "pub2, none = zmq.auth.load_certificate(sys.argv[1] + '.key')\n"
    "print(json.dumps([pub.decode(), pub2.decode(), none, zmq.curve_public(sec).decode()]))\n"
)


def test_rpc_keypair(node):
    args = {"path": f"{ETC}/keys", "name": "manager"}
    steps = Steps()
    steps.add("pattern", *check_apply_twice(KEYPAIR, args), cli=True)
    steps.add("agent", {KEYPAIR: {"path": f"{ETC}/keys", "name": "agent", "secret_mode": "0640",
                                  "group": "postgres"}})
    steps.add("pyzmq", {"ansible.builtin.command": {
        "argv": [f"{MGR_VENV}/bin/python", "-c", PYZMQ_CHECK, f"{ETC}/keys/manager"]}})
    steps.add("modes", {"ansible.builtin.shell": f"stat -c '%n %a %G' {ETC}/keys/*"})
    steps.add("half", {"ansible.builtin.file": {"path": f"{ETC}/keys/manager.key",
                                                "state": "absent"}},
              {KEYPAIR: args}, {KEYPAIR: dict(args, force=True)})
    steps.add("pyzmq_forced", {"ansible.builtin.command": {
        "argv": [f"{MGR_VENV}/bin/python", "-c", PYZMQ_CHECK, f"{ETC}/keys/manager"]}})
    r = play(node, "rpc", steps)

    assert changed(r["pattern"]) == [True, True, False, False]
    assert all(not x.get("failed") for x in r["pattern"] + r["agent"]), r
    public = r["pattern"][1]["public_key"]
    assert r["pattern"][3]["public_key"] == public and len(public) == 40
    # pyzmq (from the wheelhouse) loads both files, and the keys belong together.
    assert json.loads(r["pyzmq"][0]["stdout"]) == [public, public, None, public]
    modes = r["modes"][0]["stdout_lines"]
    assert f"{ETC}/keys/manager.key 644 root" in modes
    assert f"{ETC}/keys/manager.key_secret 600 root" in modes
    assert f"{ETC}/keys/agent.key_secret 640 postgres" in modes
    # A half pair is refused; force replaces it.
    assert_clean_failure(r["half"][1], "manager.key does not")
    forced = r["half"][2]
    assert forced["changed"] is True and forced["public_key"] != public
    assert json.loads(r["pyzmq_forced"][0]["stdout"]) == [forced["public_key"]] * 2 + [
        None, forced["public_key"]]
    secret = sh(f"grep secret-key {ETC}/keys/manager.key_secret").stdout.split('"')[1]
    assert len(secret) == 40 and secret not in json.dumps(r)


# ---------------------------------------------------------------------------------------------
# backendai_alembic
# ---------------------------------------------------------------------------------------------

ALEMBIC = "backendai.cluster.backendai_alembic"
MANAGER_SCHEMA = {"venv": MGR_VENV, "config": f"{ETC}/alembic.ini", "service": "manager"}
APPPROXY_SCHEMA = {"venv": APC_VENV, "config": f"{ETC}/alembic-appproxy.ini",
                   "service": "appproxy_coordinator"}
COUNT_TABLES = "select count(*) from information_schema.tables where table_schema = 'public'"


@pytest.fixture(scope="session")
def alembic(node):
    steps = Steps()
    steps.add("fresh_check", {ALEMBIC: MANAGER_SCHEMA, "check_mode": True},
              {ALEMBIC: dict(MANAGER_SCHEMA, state="current")}, psql_task(COUNT_TABLES))
    steps.add("fresh", {ALEMBIC: MANAGER_SCHEMA}, {ALEMBIC: MANAGER_SCHEMA, "check_mode": True},
              {ALEMBIC: MANAGER_SCHEMA}, psql_task(COUNT_TABLES),
              psql_task("select version_num from alembic_version"), cli=True)
    # One revision behind: a real downgrade of the head migration.
    steps.add("downgrade", {"ansible.builtin.command": {
        "argv": [f"{MGR_VENV}/bin/alembic", "-c", "alembic.ini", "downgrade", "-1"],
        "chdir": ETC}}, psql_task("select version_num from alembic_version"))
    steps.add("upgrade", {ALEMBIC: MANAGER_SCHEMA, "check_mode": True}, {ALEMBIC: MANAGER_SCHEMA})
    steps.add("upgraded", psql_task("select version_num from alembic_version"))
    steps.add("unknown", psql_task("update alembic_version set version_num = 'ffffeeee0000'"),
              {ALEMBIC: MANAGER_SCHEMA, "check_mode": True},
              psql_task("update alembic_version set version_num = '{{ r3.head }}'"))
    steps.add("failures",
              {ALEMBIC: dict(MANAGER_SCHEMA, config=f"{ETC}/alembic-badpw.ini")},
              {ALEMBIC: dict(MANAGER_SCHEMA, config=f"{ETC}/alembic-down.ini")},
              {ALEMBIC: dict(MANAGER_SCHEMA, config=f"{ETC}/alembic-appproxy.ini")},
              {ALEMBIC: dict(MANAGER_SCHEMA, venv="/opt/nowhere")})
    steps.add("appproxy", {ALEMBIC: APPPROXY_SCHEMA, "check_mode": True},
              {ALEMBIC: APPPROXY_SCHEMA}, {ALEMBIC: APPPROXY_SCHEMA},
              psql_task(COUNT_TABLES, "appproxy"))
    return play(node, "alembic", steps)


def test_alembic_fresh_database_gets_oneshot(alembic):
    check, current, count = alembic["fresh_check"]
    assert check["changed"] is True and check["action"] == "oneshot"
    assert check["revision_before"] is None and check["pending"] == []
    assert current["changed"] is False and current["action"] == "oneshot"
    assert count["stdout"] == "0", "check mode and state=current must not write"

    apply, check2, again, count, version = alembic["fresh"]
    head = apply["head"]
    assert changed([check, apply, check2, again]) == [True, True, False, False]
    assert apply["action"] == "oneshot" and apply["revision_after"] == head
    assert again["action"] == "none" and again["revision_before"] == head
    assert int(count["stdout"]) > 100
    assert version["stdout"] == head


def test_alembic_upgrades_a_database_behind(alembic):
    head = alembic["fresh"][0]["head"]
    behind = alembic["downgrade"][1]["stdout"]
    assert behind and behind != head
    results = alembic["upgrade"]
    assert changed(results) == [True, True]
    assert results[0]["action"] == "upgrade" and results[0]["pending"] == [head]
    assert results[0]["revision_before"] == behind and results[0]["revision_after"] == behind
    assert results[1]["revision_after"] == head
    assert alembic["upgraded"][0]["stdout"] == head


def test_alembic_refuses_unknown_revision(alembic):
    head = alembic["fresh"][0]["head"]
    _, check, restore = alembic["unknown"]
    assert_clean_failure(check, "ffffeeee0000", head, "newer Backend.AI package")
    assert restore["rc"] == 0


def test_alembic_failures(alembic):
    badpw, down, wrong_service, no_venv = alembic["failures"]
    assert_clean_failure(badpw, "cannot connect", "password authentication failed")
    assert "Wrong-Pw-42" not in json.dumps(badpw)
    assert_clean_failure(down, "cannot connect", "127.0.0.1:5499")
    assert_clean_failure(wrong_service, "script_location", "another service")
    assert_clean_failure(no_venv, "/opt/nowhere/bin/python")


def test_alembic_appproxy_coordinator(alembic):
    *results, count = alembic["appproxy"]
    assert changed(results) == [True, True, False]
    assert results[1]["action"] == "oneshot"
    assert results[2]["revision_before"] == results[1]["head"]
    assert int(count["stdout"]) > 0


# ---------------------------------------------------------------------------------------------
# backendai_fixture
# ---------------------------------------------------------------------------------------------

FIXTURE = "backendai.cluster.backendai_fixture"
VFHOSTS = {"local:volume1": ["create-vfolder", "modify-vfolder", "delete-vfolder",
                             "mount-in-session", "upload-file", "download-file",
                             "invite-others", "set-user-specific-permission"]}
DOMAIN_ID = "8e32dd28-d319-4e3c-8851-6a3a6f4c6d22"
ADMIN_UUID = "f38dea23-50fa-42a0-b5ae-338f5f4693f4"
ADMIN_HASH_SQL = f"select password from users where uuid = '{ADMIN_UUID}'"  # noqa: S608
ADMIN_KEY_SQL = "select secret_key from keypairs where access_key = 'AKIAADMINEXAMPLE0001'"
CHANGED_HASH = make_password_hash("Changed-By-Admin-1", rounds=600000)
# Each user's personal project, and every user-on-project edge of the access graph.
PERSONAL_SQL = (
    "select string_agg(u.email || '=' || g.name, ',' order by u.email) from groups g "
    "join users u on u.uuid = g.creator_id where g.type = 'personal'"
)
ROSTER_SQL = (
    "select string_agg(u.email || '>' || g.name, ',' order by u.email, g.name) "
    "from entity_memberships m "
    "join virtual_entities p on p.id = m.virtual_entity_id and p.entity_type = 'project' "
    "join groups g on g.id = p.entity_id "
    "join virtual_entities v on v.id = m.member_entity_id and v.entity_type = 'user' "
    "join users u on u.uuid = v.entity_id"
)
DROP_ROSTER_EDGE_SQL = (
    "delete from entity_memberships m using virtual_entities p, virtual_entities v "
    "where m.virtual_entity_id = p.id and p.entity_type = 'project' "
    "and p.entity_id = '2de2b969-1d04-48a6-af16-0bc8adb3c831' "
    "and m.member_entity_id = v.id and v.entity_type = 'user' "
    "and v.entity_id = (select uuid from users where email = 'user@example.com')"
)


def bootstrap(**overrides):
    """The guide's initial data, as the typed options of the module."""
    args = {
        "venv": MGR_VENV,
        "config": f"{ETC}/manager.toml",
        "domains": [{"name": "default", "id": DOMAIN_ID, "description": "default domain",
                     "is_active": True, "total_resource_slots": {},
                     "allowed_vfolder_hosts": VFHOSTS,
                     "allowed_docker_registries": ["cr.backend.ai"]}],
        "user_resource_policies": [{"name": "default", "max_vfolder_count": 0,
                                    "max_quota_scope_size": -1,
                                    "max_session_count_per_model_session": 10}],
        "project_resource_policies": [{"name": "default", "max_vfolder_count": 0,
                                       "max_quota_scope_size": -1, "max_network_count": 3}],
        "keypair_resource_policies": [{"name": "default", "default_for_unspecified": "UNLIMITED",
                                       "total_resource_slots": {}, "max_session_lifetime": 0,
                                       "max_concurrent_sessions": 5,
                                       "max_containers_per_session": 1, "idle_timeout": 3600,
                                       "allowed_vfolder_hosts": VFHOSTS}],
        "groups": [
            {"id": "2de2b969-1d04-48a6-af16-0bc8adb3c831", "name": "default",
             "domain_name": "default", "description": "default project",
             "resource_policy": "default", "type": "general", "allowed_vfolder_hosts": VFHOSTS},
            {"id": "8f0c6b9e-3c51-4d7c-a2a8-2f3f5d1d9b10", "name": "model-store",
             "domain_name": "default", "resource_policy": "default", "type": "model-store"},
        ],
        "scaling_groups": [{"name": "default", "id": "4d1e9b32-90c7-5b32-8f0e-6f470b8ed24a",
                            "is_active": True, "is_default": True, "driver": "static",
                            "driver_opts": {}, "scheduler": "fifo",
                            "wsproxy_addr": "http://127.0.0.1:10200",
                            "wsproxy_api_token": API_TOKEN}],
        "sgroups_for_domains": [{"scaling_group": "default", "domain": "default"}],
        "resource_slot_types": [
            {"slot_name": "cpu", "slot_type": "count", "display_name": "CPU", "rank": 100},
            {"slot_name": "mem", "slot_type": "bytes", "display_name": "RAM", "rank": 200},
        ],
        "resource_presets": [
            {"name": "cpu01-small", "resource_slots": {"cpu": "1", "mem": "1073741824"}},
            {"name": "cpu02-medium", "resource_slots": {"cpu": 4, "mem": "8589934592"},
             "shared_memory": 1073741824},
        ],
        "users": [
            {"uuid": ADMIN_UUID, "username": "admin", "email": "admin@example.com",
             "password": ADMIN_PASSWORD, "need_password_change": False, "full_name": "Admin",
             "status": "active", "domain_name": "default", "role": "superadmin",
             "resource_policy": "default", "projects": ["default"]},
            {"email": "user@example.com", "password": USER_PASSWORD, "status": "active",
             "domain_name": "default", "role": "user", "resource_policy": "default",
             "projects": ["default", "model-store"]},
        ],
        "keypairs": [
            {"access_key": "AKIAADMINEXAMPLE0001", "secret_key": ADMIN_SECRET_KEY,
             "user_email": "admin@example.com", "is_active": True, "is_admin": True,
             "is_default": True, "resource_policy": "default", "rate_limit": 30000},
            {"access_key": "AKIAUSEREXAMPLE00001", "secret_key": USER_SECRET_KEY,
             "user_email": "user@example.com", "is_active": True, "is_admin": False,
             "is_default": True, "resource_policy": "default", "rate_limit": 30000},
        ],
    }
    args.update(overrides)
    return args


@pytest.fixture(scope="session")
def fixture(node, alembic):
    assert alembic["fresh"][-1]["stdout"], "the manager schema is needed first"
    renamed = bootstrap()
    renamed["domains"][0]["description"] = "renamed domain"
    renamed["scaling_groups"][0]["wsproxy_addr"] = "http://127.0.0.1:10299"
    registry = {
        "venv": MGR_VENV, "config": f"{ETC}/alembic.ini",
        "tables": {"container_registries": [{
            "id": "6b5c2f0a-7c53-4e0e-9a4e-0b3f8f0c2d11", "registry_name": "cr.example.com",
            "url": "https://cr.example.com", "type": "harbor2", "project": "backendai",
        }]},
    }
    steps = Steps()
    steps.add("bootstrap_check", {FIXTURE: bootstrap(), "check_mode": True},
              psql_task("select count(*) from users"),
              psql_task("select count(*) from domains"))
    steps.add("bootstrap", {FIXTURE: bootstrap()}, {FIXTURE: bootstrap(), "check_mode": True},
              {FIXTURE: bootstrap()}, cli=True)
    steps.add("bootstrap_db", psql_task(ADMIN_HASH_SQL), psql_task(ADMIN_KEY_SQL),
              psql_task("select username from users where email = 'user@example.com'"),
              psql_task("select count(*) from sgroups_for_domains"),
              psql_task("select count(*) from virtual_entities where entity_type = 'user'"),
              psql_task(PERSONAL_SQL), psql_task(ROSTER_SQL))
    # The roster edge goes missing (as if the user had been inserted by hand): the module
    # sees it, in check mode too, and writes it back.
    steps.add("graph", psql_task(DROP_ROSTER_EDGE_SQL),
              {FIXTURE: bootstrap(), "check_mode": True}, {FIXTURE: bootstrap()},
              {FIXTURE: bootstrap()}, psql_task(ROSTER_SQL))
    steps.add("update", {FIXTURE: renamed}, {FIXTURE: renamed, "check_mode": True},
              psql_task("select description from domains"))
    # An administrator changes the password and the secret key behind the playbook's back.
    steps.add("tamper",
              psql_task(f"update users set password = '{CHANGED_HASH}' "  # noqa: S608
                        f"where uuid = '{ADMIN_UUID}'"),
              psql_task("update keypairs set secret_key = "
                        "'rotatedSecretKey000000000000000000000000' "
                        "where access_key = 'AKIAADMINEXAMPLE0001'"))
    steps.add("on_create", {FIXTURE: bootstrap()}, psql_task(ADMIN_HASH_SQL))
    steps.add("always", {FIXTURE: bootstrap(update_secrets="always"), "check_mode": True},
              {FIXTURE: bootstrap(update_secrets="always")},
              {FIXTURE: bootstrap(update_secrets="always")},
              psql_task(ADMIN_HASH_SQL), psql_task(ADMIN_KEY_SQL))
    steps.add("generic", {FIXTURE: registry}, {FIXTURE: registry},
              psql_task("select type from container_registries"))
    steps.add("errors",
              {FIXTURE: dict(registry, tables={"no_such_table": [{"a": 1}]})},
              {FIXTURE: dict(registry, tables={"domains": [{"name": "default", "nope": 1}]})},
              {FIXTURE: bootstrap(config=f"{ETC}/manager-badpw.toml")},
              {FIXTURE: bootstrap(config=f"{ETC}/manager-down.toml")},
              {FIXTURE: {"venv": MGR_VENV, "config": f"{ETC}/manager.toml",
                         "users": [{"email": "x@example.com", "domain_name": "nowhere",
                                    "username": "x"}]}})
    return play(node, "fixture", steps, diff=True)


def test_fixture_bootstrap_idempotent(fixture):
    check, users, domains = fixture["bootstrap_check"]
    assert check["changed"] is True
    assert check["tables"]["users"] == {"inserted": 2, "updated": 0, "unchanged": 0}
    assert (users["stdout"], domains["stdout"]) == ("0", "0"), "check mode must not write"

    apply, check2, again = fixture["bootstrap"]
    assert changed([check, apply, check2, again]) == [True, True, False, False]
    assert apply["tables"]["association_groups_users"]["inserted"] == 3
    assert f"users[uuid={ADMIN_UUID}]" in apply["changed_keys"]
    assert "keypairs[access_key=AKIAADMINEXAMPLE0001]" in apply["changed_keys"]
    assert apply["diff"]["before"]["domains"]["domains[name=default]"] is None
    assert apply["diff"]["after"]["users"][f"users[uuid={ADMIN_UUID}]"]["password"].startswith(
        "********")

    stored, key, username, links, nodes, personal, roster = (
        x["stdout"] for x in fixture["bootstrap_db"])
    assert stored.startswith("pbkdf2_sha256$600000$")
    assert verify_password_hash(ADMIN_PASSWORD, stored) is True
    assert key == ADMIN_SECRET_KEY
    assert username == "user@example.com"  # the insert-only default
    assert links == "1"
    assert nodes == "2", "populate_fixture registers the RBAC graph node of every row"
    # What the manager's own user creation writes besides the row: the personal project
    # (named after the user name) and the place on each project's roster. The roles come
    # later, from `permissions provision` (the manager role runs it; no presets here).
    assert check["graph"] == [
        "personal project of user admin@example.com",
        "personal project of user user@example.com",
        "user admin@example.com on the roster of project default",
        "user user@example.com on the roster of project default",
        "user user@example.com on the roster of project model-store",
    ]
    assert apply["graph"] == check["graph"]
    assert again["graph"] == [] and check2["graph"] == []
    assert personal == "admin@example.com=admin,user@example.com=user-example.com"
    assert roster == (
        "admin@example.com>admin,admin@example.com>default,"
        "user@example.com>default,user@example.com>model-store,"
        "user@example.com>user-example.com"
    )


def test_fixture_completes_the_access_graph(fixture):
    dropped, check, apply, again, roster = fixture["graph"]
    assert dropped["stdout"] == "DELETE 1"
    assert changed([check, apply, again]) == [True, True, False]
    assert check["graph"] == ["user user@example.com on the roster of project default"]
    assert check["changed_keys"] == []
    assert check["diff"]["after"]["access graph"] == check["graph"]
    assert again["graph"] == []
    assert "user@example.com>default" in roster["stdout"].split(",")


def test_fixture_updates_only_what_differs(fixture):
    apply, check, description = fixture["update"]
    assert changed([apply, check]) == [True, False]
    assert apply["changes"] == [
        {"table": "domains", "key": {"name": "default"}, "action": "update",
         "columns": ["description"]},
        {"table": "scaling_groups", "key": {"name": "default"}, "action": "update",
         "columns": ["wsproxy_addr"]},
    ]
    assert apply["diff"]["before"]["domains"]["domains[name=default]"] == {
        "description": "default domain"}
    assert description["stdout"] == "renamed domain"


def test_fixture_update_secrets(fixture):
    on_create, stored = fixture["on_create"]
    # Only the renamed domain and wsproxy address are put back; the password stays.
    assert on_create["changed"] is True
    assert {c["table"] for c in on_create["changes"]} == {"domains", "scaling_groups"}
    assert stored["stdout"] == CHANGED_HASH

    check, apply, again, stored, key = fixture["always"]
    assert changed([check, apply, again]) == [True, True, False]
    for result in (check, apply):
        assert {"table": "users", "key": {"uuid": ADMIN_UUID}, "action": "update",
                "columns": ["password"]} in result["changes"]
        assert {"table": "keypairs", "key": {"access_key": "AKIAADMINEXAMPLE0001"},
                "action": "update", "columns": ["secret_key"]} in result["changes"]
    assert stored["stdout"] != CHANGED_HASH
    assert verify_password_hash(ADMIN_PASSWORD, stored["stdout"]) is True
    assert key["stdout"] == ADMIN_SECRET_KEY


def test_fixture_generic_tables(fixture):
    first, second, registry_type = fixture["generic"]
    assert changed([first, second]) == [True, False]
    assert registry_type["stdout"] == "harbor2"


def test_fixture_failures(fixture):
    table, column, badpw, down, ref = fixture["errors"]
    assert_clean_failure(table, "unknown table 'no_such_table'")
    assert_clean_failure(column, "no such column(s): nope")
    assert_clean_failure(badpw, "cannot connect", "password authentication failed")
    assert_clean_failure(down, "cannot connect", "127.0.0.1:5499")
    assert_clean_failure(ref, "domains.id of the row with name=nowhere")
    for result in (badpw, down):
        assert "Wrong-Pw-42" not in json.dumps(result)
