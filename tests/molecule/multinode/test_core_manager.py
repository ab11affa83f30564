"""Core tier, part A: manager, storage proxy and client (pytest-testinfra + Backend.AI's API).

Runs against the host of the inventory group `manager` (override with BAI_TEST_MANAGER_HOSTS, a
testinfra host spec). Credentials are read from the client's environment file on the manager
host (the demo puts the client there) or, when that file is absent, from the environment
variables BACKEND_ACCESS_KEY / BACKEND_SECRET_KEY. API requests are signed in this file with
Backend.AI's HMAC-SHA256 scheme and sent from the controller to the manager's cluster address.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import re
import shlex
import urllib.parse

import pytest
from conftest import client_cli, http_request

testinfra_hosts = [os.environ.get("BAI_TEST_MANAGER_HOSTS", "ansible://manager")]

JSON = "application/json"


# --- Backend.AI request signing ------------------------------------------------------------------


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def signed_headers(method, url, access_key, secret_key, api_version, content_type=JSON):
    """Headers of a request signed the way the manager checks it (signMethod HMAC-SHA256).

    The string to sign is method, path with query, ISO date, host, content type, API version and
    the SHA-256 of an empty body, one per line. The key is derived from the secret key, the date
    (YYYYMMDD) and the host, in that order.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = [
        method.upper(),
        path,
        now.isoformat(),
        f"host:{host}",
        f"content-type:{content_type.lower()}",
        f"x-backendai-version:{api_version}",
        hashlib.sha256(b"").hexdigest(),
    ]
    key = _hmac(secret_key.encode(), now.strftime("%Y%m%d").encode())
    key = _hmac(key, host.encode())
    signature = hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).hexdigest()
    return {
        "Date": now.isoformat(),
        "Content-Type": content_type,
        "X-BackendAI-Version": api_version,
        "Authorization": f"BackendAI signMethod=HMAC-SHA256, credential={access_key}:{signature}",
    }


# --- Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostvars(host):
    return host.ansible.get_variables()


@pytest.fixture(scope="module")
def runner(host):
    return host.backend.ansible_runner


@pytest.fixture(scope="module")
def bai_home(hostvars):
    return hostvars.get("bai_home", f"/home/{hostvars.get('bai_user', 'bai')}")


@pytest.fixture(scope="module")
def endpoint(host, hostvars):
    address = hostvars.get("bai_address") or host.interface.default().addresses[0]
    return f"http://{address}:{hostvars.get('bai_manager_api_port', 8081)}"


@pytest.fixture(scope="module")
def api_version(endpoint):
    status, body = http_request("GET", endpoint + "/")
    assert status == 200, body
    return body["version"]


@pytest.fixture(scope="module")
def credentials(host, bai_home):
    env_file = host.file(f"{bai_home}/client/.env")
    values = {}
    if env_file.exists:
        for line in host.check_output(f"sudo cat {env_file.path}").splitlines():
            match = re.match(r"^export (BACKEND_[A-Z_]+)=(.*)$", line.strip())
            if match:
                values[match.group(1)] = shlex.split(match.group(2))[0]
    access_key = values.get("BACKEND_ACCESS_KEY") or os.environ.get("BACKEND_ACCESS_KEY")
    secret_key = values.get("BACKEND_SECRET_KEY") or os.environ.get("BACKEND_SECRET_KEY")
    if not (access_key and secret_key):
        pytest.skip("no client environment file on this host and no BACKEND_*_KEY variables")
    return access_key, secret_key


def signed(method, endpoint, path, credentials, api_version, body=None):
    url = endpoint + path
    headers = signed_headers(method, url, *credentials, api_version)
    return http_request(method, url, headers=headers, body=body)


# --- Manager -------------------------------------------------------------------------------------


def test_manager_unit_is_enabled_and_running(host):
    unit = host.service("backendai-manager")
    assert unit.is_enabled
    assert unit.is_running


def test_manager_unit_has_the_guide_limits_and_docker_host(host):
    unit = host.file("/etc/systemd/system/backendai-manager.service").content_string
    assert "LimitNOFILE=512000" in unit
    assert "LimitNPROC=65536" in unit
    assert "Restart=on-failure" in unit
    assert 'Environment="DOCKER_HOST=' in unit


def test_manager_files_are_private(host, hostvars, bai_home):
    user = hostvars.get("bai_user", "bai")
    manager_dir = f"{bai_home}/manager"
    for name, mode in (("manager.toml", 0o640), ("alembic.ini", 0o640)):
        f = host.file(f"{manager_dir}/{name}")
        assert f.exists and f.user == user and f.mode == mode, name
    secret = host.file(f"{manager_dir}/fixtures/manager.key_secret")
    assert secret.exists and secret.mode == 0o600 and secret.user == user
    assert host.file(f"{manager_dir}/fixtures/manager.key").contains("public-key")
    link = host.file(f"{bai_home}/.config/backend.ai/manager.toml")
    assert link.is_symlink and link.linked_to == f"{manager_dir}/manager.toml"


def test_manager_answers_with_its_version(endpoint, hostvars):
    status, body = http_request("GET", endpoint + "/")
    assert status == 200
    assert set(body) == {"version", "manager"}
    assert re.match(r"^v\d+\.\d{8}$", body["version"])
    assert body["manager"] == str(hostvars.get("bai_version", body["manager"]))
    assert re.match(r"^\d+\.\d+\.\d+", body["manager"])


def test_signed_request_is_accepted(endpoint, credentials, api_version):
    status, body = signed("GET", endpoint, "/folders/_/hosts", credentials, api_version)
    assert status == 200, body


def test_wrong_secret_key_is_refused(endpoint, credentials, api_version):
    access_key, secret_key = credentials
    wrong = secret_key[:-4] + ("AAAA" if not secret_key.endswith("AAAA") else "BBBB")
    status, body = signed("GET", endpoint, "/folders/_/hosts", (access_key, wrong), api_version)
    assert status == 401, body


def test_unknown_access_key_is_refused(endpoint, credentials, api_version):
    _, secret_key = credentials
    status, body = signed(
        "GET", endpoint, "/folders/_/hosts", ("AKIANOSUCHKEY0000000", secret_key), api_version
    )
    assert status == 401, body


def test_storage_volume_is_listed(endpoint, credentials, api_version, hostvars):
    status, body = signed("GET", endpoint, "/folders/_/hosts", credentials, api_version)
    assert status == 200, body
    proxy = hostvars.get("storage_proxy_node_id")
    proxy = proxy or hostvars.get("bai_storage_proxy_node_id", "sp1")
    volume = hostvars.get("bai_default_volume_name", "nas")
    assert f"{proxy}:{volume}" in body["allowed"], body
    assert body["default"] == f"{proxy}:{volume}", body


def test_storage_proxy_answers_on_both_apis(runner):
    for name in runner.get_hosts("storage_proxy"):
        sp_vars = runner.get_variables(name)
        address = sp_vars.get("bai_address", name)
        for port, kind in (
            (sp_vars.get("bai_storage_proxy_client_port", 6021), "client-facing"),
            (sp_vars.get("bai_storage_proxy_manager_port", 6022), "manager-facing"),
        ):
            status, body = http_request("GET", f"http://{address}:{port}/")
            assert status == 200 and body.get("type") == kind, (name, port, body)


def test_storage_proxy_unit_requires_its_volume_mounts(runner):
    for name in runner.get_hosts("storage_proxy"):
        sp = runner.get_host(name)
        assert sp.service("backendai-storage-proxy").is_running
        unit = sp.file("/etc/systemd/system/backendai-storage-proxy.service").content_string
        assert re.search(r"^RequiresMountsFor=/", unit, re.M), unit
        home = runner.get_variables(name).get("bai_home", "/home/bai")
        run_script = sp.file(f"{home}/bin/run-storage-proxy.sh").content_string
        assert "-m ai.backend.storage.server" in run_script


# --- Client --------------------------------------------------------------------------------------


def test_client_env_file_is_private(host, hostvars, bai_home, runner):
    if host.backend.host not in runner.get_hosts("client"):
        pytest.skip("the client is not installed on this host")
    env_file = host.file(f"{bai_home}/client/.env")
    assert env_file.mode == 0o600 and env_file.user == hostvars.get("bai_user", "bai")


def test_client_cli_lists_the_superadmin(host, hostvars, bai_home, runner):
    if host.backend.host not in runner.get_hosts("client"):
        pytest.skip("the client is not installed on this host")
    user = hostvars.get("bai_user", "bai")
    cmd = host.run(
        "sudo -u %s bash -c %s",
        user,
        f"cd {bai_home}/client && . .env && .venv/bin/backend.ai admin user list",
    )
    assert cmd.rc == 0, cmd.stderr
    assert hostvars.get("bai_superadmin_email", "admin@example.com") in cmd.stdout


def test_client_cli_adds_a_user_with_a_keypair_and_removes_it(host, hostvars, bai_home, runner):
    """An operator's first day-1 step: a new user gets a keypair of the default keypair resource
    policy. 26.9 takes the policy marked is_default; a schema created on a fresh database marks
    none, and then `admin user add` fails ("No keypair resource policy is marked as the
    default.")."""
    if host.backend.host not in runner.get_hosts("client"):
        pytest.skip("the client is not installed on this host")
    user = hostvars.get("bai_user", "bai")
    domain = hostvars.get("bai_domain_name", "default")
    email = "verify-user-add@example.com"

    def cli(*args, answer=""):
        return client_cli(host, user, f"{bai_home}/client", *args, answer=answer)

    def purge():  # the CLI asks for a confirmation
        out = cli("admin", "user", "purge", email, answer="y")
        return out.rc == 0 and '"ok": true' in out.stdout

    purge()  # what an earlier, interrupted run left
    try:
        added = cli("admin", "user", "add", "-u", "verify-user-add", domain, email,
                    "Verify-Passw0rd-42")
        assert added.rc == 0 and json.loads(added.stdout).get("ok"), added.stdout + added.stderr
        keypairs = cli("admin", "keypair", "list", "--user-id", email)
        assert keypairs.rc == 0, keypairs.stderr
        policies = {k.get("resource_policy") for k in json.loads(keypairs.stdout)["items"]}
        assert policies == {hostvars.get("manager_policy_name", "default")}, keypairs.stdout
    finally:
        purged = purge()
    assert purged, f"{email} could not be purged"


# --- Agents (registered by the agent role) -------------------------------------------------------


def test_every_agent_is_alive(endpoint, credentials, api_version, runner):
    agents = runner.get_hosts("agents")
    if not agents:
        pytest.skip("no agents in the inventory")
    query = {"query": 'query { agents(status: "ALIVE") { id status addr } }'}
    status, body = signed("POST", endpoint, "/admin/gql", credentials, api_version, body=query)
    assert status == 200, body
    alive = (body.get("data") or {}).get("agents") or []
    assert all(a["status"] == "ALIVE" for a in alive)
    addresses = " ".join(a.get("addr") or "" for a in alive)
    for name in agents:
        address = runner.get_variables(name).get("bai_address", name)
        assert f"{address}:" in addresses, (name, alive)
