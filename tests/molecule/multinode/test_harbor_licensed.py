"""Checks of the Harbor registry and the license server (roles harbor and licensed).

Tests that take the ``host`` fixture run once per node and skip nodes outside the group they
are about (``registry``, ``license_server``, ``agents``, ``manager``; the first two default to
the manager). Harbor's API is asked from the controller at the registry's cluster address, with
the credentials of the inventory (its vault.yml). Docker logins run on the agents with the
credentials the role stored there, so no password appears on a command line. The inventory and
its values come from conftest.py.
"""

from __future__ import annotations

import base64
import json
import shlex
import urllib.parse

import pytest
import tomllib
import yaml
from conftest import http_request

# Role defaults these tests rely on (roles/harbor and roles/licensed defaults/main.yml).
HARBOR_UNIT = "backendai-harbor"
LICENSED_UNIT = "backendai-licensed"
MEMBER_ROLE = "developer"


def registry_fqdn(cluster) -> str:
    return f"{cluster.address_of(cluster.first('registry'))}:{cluster.get('bai_harbor_port')}"


def registry_url(cluster) -> str:
    return f"{cluster.get('bai_registry_scheme')}://{registry_fqdn(cluster)}"


# --- Harbor's API, asked from the controller -----------------------------------------------------


def harbor(cluster, path: str, user: str | None = None, password: str | None = None):
    """(status, parsed JSON or text) of GET <registry>/api/v2.0<path>."""
    headers = {"Accept": "application/json"}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    return http_request("GET", registry_url(cluster) + "/api/v2.0" + path, headers=headers)


@pytest.fixture(scope="module")
def admin(cluster):
    return "admin", cluster.secret("bai_harbor_admin_password")


def test_harbor_reports_itself_healthy(cluster):
    status, body = harbor(cluster, "/health")
    assert status == 200, body
    assert body["status"] == "healthy", body


def test_harbor_admin_login_works(cluster, admin):
    status, body = harbor(cluster, "/users/current", *admin)
    assert status == 200, body
    assert body["username"] == "admin"
    assert body["sysadmin_flag"] is True


def test_harbor_refuses_a_wrong_admin_password(cluster, admin):
    status, body = harbor(cluster, "/users/current", "admin", admin[1] + "-wrong")
    assert status == 401, body


def test_harbor_has_the_backend_ai_user(cluster, admin):
    name = cluster.get("bai_harbor_username")
    status, body = harbor(cluster, "/users/search?" + urllib.parse.urlencode({"username": name}),
                          *admin)
    assert status == 200, body
    assert name in [u["username"] for u in body], body
    # Its password is the vault's, and it is no system administrator.
    status, body = harbor(cluster, "/users/current", name,
                          cluster.secret("bai_harbor_bai_password"))
    assert status == 200, body
    assert body["username"] == name
    assert body["sysadmin_flag"] is False


@pytest.mark.parametrize(("key", "public"), [("bai_harbor_project_compute", "true"),
                                             ("bai_harbor_project_user", "false")])
def test_harbor_projects_exist_with_their_access_level(cluster, admin, key, public):
    name = cluster.get(key)
    status, body = harbor(cluster, f"/projects/{urllib.parse.quote(name)}", *admin)
    assert status == 200, body
    assert body["name"] == name
    assert body["metadata"]["public"] == public


def test_backend_ai_user_is_a_developer_of_the_user_project(cluster, admin):
    project = urllib.parse.quote(cluster.get("bai_harbor_project_user"))
    name = cluster.get("bai_harbor_username")
    status, body = harbor(cluster, f"/projects/{project}/members?entityname={name}", *admin)
    assert status == 200, body
    roles = {m["entity_name"]: m["role_name"] for m in body if m["entity_type"] == "u"}
    assert roles.get(name) == MEMBER_ROLE, body


# --- Harbor on the registry host -----------------------------------------------------------------


def test_harbor_unit_is_enabled_and_active(host, cluster):
    cluster.require(host, "registry")
    service = host.service(HARBOR_UNIT)
    assert service.is_enabled
    assert service.is_running


def test_harbor_yml_is_private_and_names_this_registry(host, cluster):
    cluster.require(host, "registry")
    home = cluster.get("bai_service_base_dir")
    f = host.file(f"{home}/harbor/harbor.yml")
    assert f.is_file
    assert f.mode == 0o600, oct(f.mode)
    content = yaml.safe_load(host.check_output(f"sudo cat {shlex.quote(f.path)}"))
    assert content["hostname"] == cluster.address_of(host.backend.host)
    assert content["http"]["port"] == int(cluster.get("bai_harbor_port"))


# --- docker login on the agents ------------------------------------------------------------------


def test_agent_stores_the_harbor_credentials_privately(host, cluster):
    cluster.require(host, "agents")
    user = cluster.get("bai_user")
    f = host.file(f"{cluster.get('bai_home')}/.docker/config.json")
    assert f.is_file
    assert f.user == user and f.mode == 0o600, (f.user, oct(f.mode))
    auths = json.loads(host.check_output(f"sudo cat {shlex.quote(f.path)}"))["auths"]
    assert registry_fqdn(cluster) in auths, list(auths)


def test_agent_docker_login_works_with_the_stored_credentials(host, cluster):
    cluster.require(host, "agents")
    # Without -u/-p the CLI logs in again with the credentials stored by the role.
    command = f"docker login {shlex.quote(registry_fqdn(cluster))} </dev/null"
    user = shlex.quote(cluster.get("bai_user"))
    result = host.run(f"runuser -u {user} -- sh -c {shlex.quote(command)}")
    assert result.rc == 0, result.stderr
    assert "Login Succeeded" in result.stdout


def test_agent_docker_login_with_a_wrong_password_fails(host, cluster):
    cluster.require(host, "agents")
    fqdn = shlex.quote(registry_fqdn(cluster))
    name = shlex.quote(cluster.get("bai_harbor_username"))
    result = host.run(
        "d=$(mktemp -d) && trap 'rm -rf \"$d\"' EXIT && "
        f"echo not-the-password | DOCKER_CONFIG=$d docker login {fqdn} -u {name} --password-stdin"
    )
    assert result.rc != 0, result.stdout
    assert "unauthorized" in (result.stderr + result.stdout).lower()


# --- license server ------------------------------------------------------------------------------


def test_licensed_unit_is_enabled_and_active(host, cluster):
    cluster.require(host, "license_server")
    service = host.service(LICENSED_UNIT)
    assert service.is_enabled
    assert service.is_running
    unit = host.file(f"/etc/systemd/system/{LICENSED_UNIT}.service").content_string
    assert f"User={cluster.get('bai_user')}" in unit
    assert f"ExecStart={cluster.get('bai_bin_dir')}/start_licensed.sh" in unit


def test_licensed_files_are_installed(host, cluster):
    cluster.require(host, "license_server")
    directory = f"{cluster.get('bai_service_base_dir')}/.config/backend.ai/.license"
    binary = host.file(f"{directory}/licensed.linux.amd64.bin")
    assert binary.is_file and binary.mode & 0o100 and binary.user == cluster.get("bai_user")
    licenses = host.run(f"sudo find {shlex.quote(directory)} -maxdepth 1 -name '*.lic'")
    assert licenses.stdout.strip(), "no license file"
    script = host.file(f"{cluster.get('bai_bin_dir')}/start_licensed.sh")
    assert script.is_file and script.mode & 0o100
    content = host.check_output(f"sudo cat {shlex.quote(script.path)}")
    assert f"--port {cluster.get('bai_license_port')}" in content


def test_licensed_port_answers_from_the_manager(host, cluster):
    cluster.require(host, "manager")
    address = cluster.address_of(cluster.first("license_server"))
    port = cluster.get("bai_license_port")
    result = host.run(f"timeout 5 bash -c '</dev/tcp/{address}/{port}'")
    assert result.rc == 0, f"{address}:{port} does not answer from {host.backend.host}"


def test_manager_and_agents_point_their_license_section_at_the_license_server(host, cluster):
    """The guide's [license] addr in manager.toml and agent.toml names the license server."""
    name = host.backend.host
    configs = {"manager": "manager/manager.toml", "agents": "agent/agent.toml"}
    paths = [path for group, path in configs.items() if name in cluster.members(group)]
    if not paths:
        pytest.skip(f"{name} runs neither the manager nor an agent")
    expected = {"host": cluster.address_of(cluster.first("license_server")),
                "port": int(cluster.get("bai_license_port"))}
    for path in paths:
        full = f"{cluster.get('bai_service_base_dir')}/{path}"
        config = tomllib.loads(host.check_output(f"sudo cat {shlex.quote(full)}"))
        assert config.get("license", {}).get("addr") == expected, (path, config.get("license"))


# --- restart (last: it briefly takes Harbor down) ---------------------------------------------


def test_harbor_keeps_its_users_and_projects_across_a_restart(host, cluster, admin):
    cluster.require(host, "registry")
    result = host.run(f"systemctl restart {HARBOR_UNIT}")
    assert result.rc == 0, result.stderr
    assert host.service(HARBOR_UNIT).is_running
    status, body = harbor(cluster, "/health")
    assert status == 200 and body["status"] == "healthy", body
    project = urllib.parse.quote(cluster.get("bai_harbor_project_user"))
    status, body = harbor(cluster, f"/projects/{project}", *admin)
    assert status == 200, body
    name = cluster.get("bai_harbor_username")
    status, body = harbor(cluster, "/users/current", name,
                          cluster.secret("bai_harbor_bai_password"))
    assert status == 200, body
