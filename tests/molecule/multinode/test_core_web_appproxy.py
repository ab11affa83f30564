"""Core tier, part B: the webserver and the App Proxy (roles webserver and appproxy).

HTTP requests are sent from the node that runs the service (to 127.0.0.1) with the node's own
python3, so the checks do not depend on the controller's network. Expected values (ports, worker
list, secrets) come from the inventory over the roles' defaults.

The login tests and the resource-group test need a running manager with the superadmin fixture.
"""

from __future__ import annotations

import json
import shlex

import pytest
import tomllib
from conftest import role_defaults

TIMEOUT = 15


def setting(cluster, role: str, key: str):
    """An inventory value as the role's first host sees it, over the role's default."""
    value = cluster.host_vars(cluster.first(role)).get(key)
    return role_defaults(role).get(key) if value is None else value


def http(node, method: str, url: str, body=None, headers=None) -> tuple[int, str]:
    """One HTTP request sent by python3 on `node`; returns the status and the body (any status)."""
    code = (
        "import json,sys,urllib.request,urllib.error\n"
        "a=json.loads(sys.argv[1])\n"
        "data=None if a['body'] is None else json.dumps(a['body']).encode()\n"
        "h=dict(a['headers'])\n"
        "if data is not None: h['Content-Type']='application/json'\n"
        "r=urllib.request.Request(a['url'],data=data,method=a['method'],headers=h)\n"
        "try:\n"
        f"    resp=urllib.request.urlopen(r,timeout={TIMEOUT}); s=resp.status; b=resp.read()\n"
        "except urllib.error.HTTPError as e:\n"
        "    s=e.code; b=e.read()\n"
        "print(json.dumps({'status': s, 'body': b.decode('utf-8', 'replace')}))\n"
    )
    args = json.dumps({"method": method, "url": url, "body": body, "headers": headers or {}})
    result = node.run(f"python3 -c {shlex.quote(code)} {shlex.quote(args)}")
    assert result.rc == 0, f"{method} {url}: {result.stderr.strip()[-400:]}"
    answer = json.loads(result.stdout)
    return answer["status"], answer["body"]


def read_toml(node, path: str) -> dict:
    with node.sudo():
        f = node.file(path)
        assert f.exists, path
        return tomllib.loads(f.content_string)


def expected_workers(cluster) -> list[dict]:
    # group_vars/appproxy may set the workers: read them as the appproxy host sees them.
    workers = cluster.get("bai_appproxy_workers", host=cluster.first("appproxy"))
    assert isinstance(workers, list) and workers, "bai_appproxy_workers is empty"
    return workers


# --- webserver ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def web(cluster):
    return cluster.node(cluster.first("webserver"))


@pytest.fixture(scope="module")
def web_url(cluster):
    return f"http://127.0.0.1:{int(cluster.get('bai_webserver_port'))}"


@pytest.fixture(scope="module")
def web_conf_path(cluster):
    return f"{cluster.get('bai_service_base_dir')}/webserver/webserver.conf"


def test_webserver_unit_is_enabled_and_running(web):
    service = web.service("backendai-webserver")
    assert service.is_enabled
    assert service.is_running


def test_webserver_config_is_private_and_points_at_manager_and_redis(cluster, web, web_conf_path):
    with web.sudo():
        f = web.file(web_conf_path)
        assert f.exists
        assert f.mode & 0o007 == 0, oct(f.mode)
        assert f.user == cluster.get("bai_user")
    conf = read_toml(web, web_conf_path)
    manager = cluster.address_of(cluster.first("manager"))
    endpoint = f"http://{manager}:{int(cluster.get('bai_manager_api_port'))}"
    assert endpoint in conf["api"]["endpoint"].split(",")
    redis = conf["session"]["redis"]
    assert redis["addr"] == {
        "host": cluster.address_of(cluster.first("halfstack")),
        "port": int(cluster.get("bai_redis_port")),
    }
    assert redis["password"] == cluster.secret("bai_redis_password")
    assert conf["service"]["port"] == int(cluster.get("bai_webserver_port"))


def test_webserver_serves_the_web_ui(web, web_url):
    status, body = http(web, "GET", f"{web_url}/")
    assert status == 200
    assert "<html" in body.lower()


def test_webserver_logs_the_superadmin_in(cluster, web, web_url):
    status, body = http(
        web,
        "POST",
        f"{web_url}/server/login",
        body={
            "username": cluster.get("bai_superadmin_email"),
            "password": cluster.secret("bai_superadmin_password"),
        },
    )
    assert status == 200, body[:400]
    answer = json.loads(body)
    assert answer["authenticated"] is True, answer
    assert answer["data"]["role"] == "superadmin"
    assert answer["data"]["access_key"] == cluster.secret("bai_superadmin_access_key")


def test_webserver_rejects_a_wrong_password(cluster, web, web_url):
    status, body = http(
        web,
        "POST",
        f"{web_url}/server/login",
        body={
            "username": cluster.get("bai_superadmin_email"),
            "password": cluster.secret("bai_superadmin_password") + "-wrong",
        },
    )
    assert status == 401, body[:400]
    assert json.loads(body)["authenticated"] is False


# --- App Proxy ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(cluster):
    return cluster.node(cluster.first("appproxy"))


@pytest.fixture(scope="module")
def coordinator_port(cluster):
    return int(cluster.get("bai_appproxy_coordinator_port"))


@pytest.fixture(scope="module")
def appproxy_dir(cluster):
    return f"{cluster.get('bai_service_base_dir')}/appproxy"


@pytest.fixture(scope="module")
def listed_workers(cluster, app, coordinator_port):
    status, body = http(
        app,
        "GET",
        f"http://127.0.0.1:{coordinator_port}/api/worker",
        headers={"X-BackendAI-Token": cluster.secret("bai_appproxy_api_secret")},
    )
    assert status == 200, body[:400]
    return json.loads(body)["workers"]


def test_appproxy_units_are_enabled_and_running(cluster, app):
    units = ["backendai-appproxy-coordinator"] + [
        f"backendai-appproxy-worker-{w['type']}" for w in expected_workers(cluster)
    ]
    for unit in units:
        service = app.service(unit)
        assert service.is_enabled, unit
        assert service.is_running, unit


def test_coordinator_health_answers(app, coordinator_port):
    status, body = http(app, "GET", f"http://127.0.0.1:{coordinator_port}/health")
    assert status == 200, body[:400]
    assert json.loads(body)


def test_coordinator_refuses_a_wrong_api_token(app, coordinator_port):
    status, _ = http(
        app,
        "GET",
        f"http://127.0.0.1:{coordinator_port}/api/worker",
        headers={"X-BackendAI-Token": "not-the-token"},
    )
    assert status in (401, 403)


def test_each_worker_answers_health(cluster, app):
    for worker in expected_workers(cluster):
        status, body = http(app, "GET", f"http://127.0.0.1:{int(worker['api_port'])}/health")
        assert status == 200, f"{worker['type']}: {body[:300]}"


def test_coordinator_knows_every_worker(cluster, app, listed_workers, appproxy_dir):
    listed = {w["authority"]: w for w in listed_workers}
    for worker in expected_workers(cluster):
        conf = read_toml(app, f"{appproxy_dir}/worker-{worker['type']}/app-proxy-worker.toml")
        section = conf["proxy_worker"]
        authority = section["authority"]
        assert authority in listed, f"{authority} not in {sorted(listed)}"
        entry = listed[authority]
        assert entry["api_port"] == int(worker["api_port"])
        assert list(entry["port_range"]) == [int(p) for p in worker["proxy_port_range"]]
        assert entry["protocol"] == section["protocol"]
        if "status" in entry:
            assert entry["status"] == "ALIVE", entry


def test_workers_have_unique_ports_authorities_and_disjoint_ranges(
    cluster, app, appproxy_dir, coordinator_port
):
    sections = [
        read_toml(app, f"{appproxy_dir}/worker-{w['type']}/app-proxy-worker.toml")["proxy_worker"]
        for w in expected_workers(cluster)
    ]
    authorities = [s["authority"] for s in sections]
    assert len(set(authorities)) == len(authorities), authorities
    api_ports = [s["api_bind_addr"]["port"] for s in sections]
    assert len(set(api_ports)) == len(api_ports), api_ports
    assert coordinator_port not in api_ports
    ids = [s["id"] for s in sections]
    assert len(set(ids)) == len(ids), ids
    monitors = [
        p for s in sections for p in (s["aiomonitor_termui_port"], s["aiomonitor_webui_port"])
    ]
    assert len(set(monitors)) == len(monitors), monitors
    ranges = sorted(
        tuple(s["port_proxy"]["bind_port_range"]) for s in sections if "port_proxy" in s
    )
    for start, end in ranges:
        assert start <= end
        assert not any(start <= p <= end for p in [*api_ports, coordinator_port])
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert end < start, ranges


def test_appproxy_secrets_match_across_coordinator_and_workers(cluster, app, appproxy_dir):
    coordinator = read_toml(app, f"{appproxy_dir}/coordinator/app-proxy-coordinator.toml")
    assert coordinator["secrets"]["api_secret"] == cluster.secret("bai_appproxy_api_secret")
    for worker in expected_workers(cluster):
        conf = read_toml(app, f"{appproxy_dir}/worker-{worker['type']}/app-proxy-worker.toml")
        assert conf["secrets"] == coordinator["secrets"], worker["type"]
        assert conf["permit_hash"] == coordinator["permit_hash"], worker["type"]


def test_manager_resource_group_points_at_the_coordinator(cluster, coordinator_port):
    halfstack = cluster.node(cluster.first("halfstack"))
    addr = cluster.address_of(cluster.first("halfstack"))
    password = cluster.secret("bai_postgres_password")
    token = cluster.secret("bai_appproxy_api_secret")
    groups = setting(cluster, "appproxy", "appproxy_scaling_groups") or []
    if not groups:
        pytest.skip("appproxy_scaling_groups is empty")
    names = ",".join("'" + g.replace("'", "''") + "'" for g in groups)
    sql = (
        "SELECT name, wsproxy_addr, wsproxy_api_token = :'token' FROM scaling_groups "
        f"WHERE name IN ({names}) ORDER BY name"
    )
    # The SQL goes in on stdin: psql substitutes :'token' there (not in -c).
    result = halfstack.run(
        "printf '%s\\n' {sql} | docker exec -i -e PGPASSWORD={pw} bai-postgres "
        "psql -h {addr} -p {port} -U {user} -d {db} -v ON_ERROR_STOP=1 "
        "-v token={token} -tA -F '|'".format(
            sql=shlex.quote(sql),
            pw=shlex.quote(password),
            addr=addr,
            port=int(cluster.get("bai_postgres_port")),
            user=shlex.quote(str(cluster.get("bai_db_user"))),
            db=shlex.quote(str(cluster.get("bai_db_name"))),
            token=shlex.quote(token),
        )
    )
    assert result.rc == 0, result.stderr[-400:]
    rows = [line.split("|") for line in result.stdout.split("\n") if line.strip()]
    assert sorted(r[0] for r in rows) == sorted(groups), rows
    endpoint = f"http://{cluster.address_of(cluster.first('appproxy'))}:{coordinator_port}"
    for name, wsproxy_addr, token_ok in rows:
        assert wsproxy_addr == endpoint, name
        assert token_ok == "t", f"{name}: wsproxy_api_token differs from bai_appproxy_api_secret"
