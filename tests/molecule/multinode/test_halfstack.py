"""Checks of the halfstack (roles halfstack_postgres, halfstack_etcd, halfstack_redis).

Each service is asked on the cluster address other nodes use, and etcd and Redis from another
node than the one they run on (from the same node in a single-node inventory). The restart
tests write a marker, restart the stack's systemd unit and read the marker back.
"""

from __future__ import annotations

import base64
import json
import shlex
import uuid

import pytest
from conftest import role_defaults

UNITS = ("bai-postgres", "bai-etcd", "bai-redis")
WAIT = "for i in $(seq 90); do {probe} && break; sleep 2; done; {probe}"


@pytest.fixture(scope="module")
def halfstack(cluster):
    return cluster.node(cluster.first("halfstack"))


@pytest.fixture(scope="module")
def peer(cluster):
    """A node other than the halfstack host, to ask etcd and Redis across the network.

    A single-node inventory has no other node: there the halfstack host itself asks, still on
    the cluster address (not loopback), which is what its own services use.
    """
    others = [h for h in cluster.hosts if h != cluster.first("halfstack")]
    return cluster.node(others[0] if others else cluster.first("halfstack"))


@pytest.fixture(scope="module")
def addr(cluster):
    return cluster.address_of(cluster.first("halfstack"))


def psql(cluster, addr, user, password, database, sql):
    """psql inside the PostgreSQL container, over TCP to the cluster address."""
    return (
        f"docker exec -e PGPASSWORD={shlex.quote(password)} bai-postgres "
        f"psql -h {addr} -p {cluster.get('bai_postgres_port')} -U {shlex.quote(user)} "
        f"-d {shlex.quote(database)} -v ON_ERROR_STOP=1 -tAc {shlex.quote(sql)}"
    )


def redis_script(addr, port, commands):
    """A python3 one-shot that speaks RESP to Redis and prints its raw replies."""
    payload = "".join(
        f"*{len(c)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in c) for c in commands
    )
    code = (
        "import socket,sys,time\n"
        f"s=socket.create_connection(({addr!r},{port}),timeout=10)\n"
        f"s.sendall({payload!r}.encode())\n"
        "time.sleep(0.5)\n"
        "sys.stdout.write(s.recv(65536).decode())\n"
    )
    return f"python3 -c {shlex.quote(code)}"


def http_script(url, body=None):
    code = (
        "import json,sys,urllib.request\n"
        f"data={json.dumps(body)!r}\n"
        f"req=urllib.request.Request({url!r},data=data.encode() if data!='null' else None)\n"
        "print(urllib.request.urlopen(req,timeout=10).read().decode())\n"
    )
    return f"python3 -c {shlex.quote(code)}"


def etcd_script(base, path, body, user=None, password=None):
    """A python3 one-shot that logs in to etcd's gateway (when a user is given), posts ``body``
    to ``path`` and prints etcd's JSON answer, an error answer included."""
    code = (
        "import json,urllib.request,urllib.error\n"
        f"base,path,body,user,pw={base!r},{path!r},{json.dumps(body)!r},{user!r},{password!r}\n"
        "def post(p,b,h):\n"
        "    r=urllib.request.Request(base+p,data=b.encode(),headers=h,method='POST')\n"
        "    try:\n"
        "        return urllib.request.urlopen(r,timeout=10).read().decode()\n"
        "    except urllib.error.HTTPError as e:\n"
        "        return e.read().decode()\n"
        "h={}\n"
        "if user:\n"
        "    h['Authorization']=json.loads(post('/v3/auth/authenticate',"
        "json.dumps({'name':user,'password':pw}),{}))['token']\n"
        "print(post(path,body,h))\n"
    )
    return f"python3 -c {shlex.quote(code)}"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_halfstack_units_are_enabled_and_running(host, cluster):
    cluster.require(host, "halfstack")
    for unit in UNITS:
        service = host.service(unit)
        assert service.is_enabled, unit
        assert service.is_running, unit


def test_halfstack_env_files_are_private(host, cluster):
    cluster.require(host, "halfstack")
    out = host.check_output(
        "stat -c '%n %a' "
        + " ".join(f"{cluster.get('bai_service_base_dir')}/halfstack/{d}-default/.env"
                   for d in ("postgres", "etcd", "redis"))
    )
    for line in out.splitlines():
        name, mode = line.split()
        assert mode in ("600", "640"), f"{name} has mode {mode}"


def test_postgres_accepts_the_backend_ai_user(cluster, halfstack, addr):
    out = halfstack.check_output(psql(
        cluster, addr, cluster.get("bai_db_user"), cluster.secret("bai_postgres_password"),
        cluster.get("bai_db_name"), "select current_user, current_database()"))
    assert out.strip() == f"{cluster.get('bai_db_user')}|{cluster.get('bai_db_name')}"


def test_postgres_refuses_a_wrong_password(cluster, halfstack, addr):
    cmd = halfstack.run(psql(cluster, addr, cluster.get("bai_db_user"), "not-the-password",
                             cluster.get("bai_db_name"), "select 1"))
    assert cmd.rc != 0
    assert "password authentication failed" in cmd.stderr


def test_postgres_accepts_the_appproxy_user_with_create_rights(cluster, halfstack, addr):
    user, db = cluster.get("bai_appproxy_db_user"), cluster.get("bai_appproxy_db_name")
    out = halfstack.check_output(psql(
        cluster, addr, user, cluster.secret("bai_appproxy_db_password"), db,
        "create table if not exists verify_probe (id int); drop table verify_probe; "
        "select current_user"))
    assert out.strip().splitlines()[-1] == user


def test_postgres_refuses_the_appproxy_user_with_a_wrong_password(cluster, halfstack, addr):
    cmd = halfstack.run(psql(cluster, addr, cluster.get("bai_appproxy_db_user"), "wrong",
                             cluster.get("bai_appproxy_db_name"), "select 1"))
    assert cmd.rc != 0


def test_etcd_is_healthy_on_the_advertised_address_from_another_node(cluster, peer, addr):
    out = peer.check_output(http_script(f"http://{addr}:{cluster.get('bai_etcd_port')}/health"))
    assert json.loads(out)["health"] == "true"


def test_redis_refuses_unauthenticated_commands_from_another_node(cluster, peer, addr):
    out = peer.check_output(redis_script(addr, cluster.get("bai_redis_port"), [["PING"]]))
    assert out.startswith("-NOAUTH"), out


def test_redis_accepts_the_password_from_another_node(cluster, peer, addr):
    out = peer.check_output(redis_script(addr, cluster.get("bai_redis_port"),
        [["AUTH", cluster.secret("bai_redis_password")], ["PING"]]))
    assert out.split("\r\n")[:2] == ["+OK", "+PONG"], out


def test_redis_refuses_a_wrong_password(cluster, peer, addr):
    port = cluster.get("bai_redis_port")
    out = peer.check_output(redis_script(addr, port, [["AUTH", "wrong-password"]]))
    assert out.startswith("-WRONGPASS") or out.startswith("-ERR"), out


# --- data survives a restart of each stack --------------------------------------------------------


def test_postgres_data_survives_a_restart(cluster, halfstack, addr):
    marker = uuid.uuid4().hex
    user, pw, db = (cluster.get("bai_db_user"), cluster.secret("bai_postgres_password"),
                    cluster.get("bai_db_name"))
    halfstack.check_output(psql(cluster, addr, user, pw, db,
                                "create table if not exists verify_marker (v text); "
                                f"insert into verify_marker values ('{marker}')"))
    halfstack.check_output("systemctl restart bai-postgres")
    probe = psql(cluster, addr, user, pw, db, "select v from verify_marker") + " >/dev/null 2>&1"
    halfstack.run(WAIT.format(probe=probe))
    out = halfstack.check_output(psql(cluster, addr, user, pw, db, "select v from verify_marker"))
    halfstack.run(psql(cluster, addr, user, pw, db, "drop table verify_marker"))
    assert marker in out.split()


def test_etcd_data_survives_a_restart(cluster, halfstack, peer, addr):
    key, marker = "/sorna/verify/marker", uuid.uuid4().hex
    base = f"http://{addr}:{cluster.get('bai_etcd_port')}"
    root = {"user": "root", "password": cluster.secret("bai_etcd_password")} \
        if cluster.get("bai_etcd_auth_enabled") else {}
    peer.check_output(etcd_script(base, "/v3/kv/put", {"key": b64(key), "value": b64(marker)},
                                  **root))
    halfstack.check_output("systemctl restart bai-etcd")
    probe = http_script(base + "/health") + " >/dev/null 2>&1"
    peer.run(WAIT.format(probe=probe))
    out = json.loads(peer.check_output(etcd_script(base, "/v3/kv/range", {"key": b64(key)},
                                                   **root)))
    peer.run(etcd_script(base, "/v3/kv/deleterange", {"key": b64(key)}, **root))
    values = [base64.b64decode(kv["value"]).decode() for kv in out.get("kvs", [])]
    assert values == [marker]


def test_etcd_refuses_anonymous_clients_and_fences_the_services_user(cluster, peer, addr):
    """With authentication on (the default), etcd answers nobody without credentials, and the
    user the Backend.AI services log in as reads its namespace and nothing else."""
    if not cluster.get("bai_etcd_auth_enabled"):
        pytest.skip("bai_etcd_auth_enabled is false in this inventory")
    base = f"http://{addr}:{cluster.get('bai_etcd_port')}"
    ns = cluster.get("bai_etcd_namespace")
    redis_key = b64(f"/sorna/{ns}/config/redis/addr")
    anonymous = json.loads(peer.check_output(etcd_script(base, "/v3/kv/range",
                                                         {"key": redis_key})))
    assert "kvs" not in anonymous and "user name is empty" in anonymous.get("message", ""), \
        anonymous
    service = {"user": cluster.get("bai_etcd_user"),
               "password": cluster.secret("bai_etcd_backendai_password")}
    inside = json.loads(peer.check_output(etcd_script(base, "/v3/kv/range", {"key": redis_key},
                                                      **service)))
    assert len(inside.get("kvs", [])) == 1, inside
    for path, body in (
        ("/v3/kv/put", {"key": b64("/sorna/verify-other-ns/x"), "value": b64("x")}),
        ("/v3/kv/range", {"key": b64("/"), "range_end": b64("\0")}),
        ("/v3/auth/user/list", {}),
    ):
        out = json.loads(peer.check_output(etcd_script(base, path, body, **service)))
        assert "permission denied" in out.get("message", ""), (path, out)


def test_etcd_keeps_idle_tokens_as_long_as_configured(cluster, halfstack):
    """Backend.AI's etcd client never logs in again on a connection: with etcd's default token
    lifetime (300 s after the last use) the 26.9.6 manager failed with "invalid auth token"
    after five idle minutes. The running etcd must have the configured lifetime (whether or not
    authentication is on: the flag is always set)."""
    defaults = role_defaults("halfstack_etcd")
    name = cluster.get("halfstack_etcd_container_name", defaults["halfstack_etcd_container_name"])
    inspect = f"docker inspect --format '{{{{json .Args}}}}' {name}"
    args = json.loads(halfstack.check_output(inspect))
    key = "halfstack_etcd_auth_token_ttl"
    ttl = int(cluster.get(key, defaults[key]))
    assert ttl >= 7 * 86400
    assert args[args.index("--auth-token-ttl") + 1] == str(ttl), args
    assert args[args.index("--auth-token") + 1] == "simple", args


def test_redis_data_survives_a_restart(cluster, halfstack, peer, addr):
    port, pw = cluster.get("bai_redis_port"), cluster.secret("bai_redis_password")
    marker = uuid.uuid4().hex
    out = peer.check_output(redis_script(addr, port,
                                         [["AUTH", pw], ["SET", "verify:marker", marker]]))
    assert out.split("\r\n")[:2] == ["+OK", "+OK"], out
    halfstack.check_output("systemctl restart bai-redis")
    probe = redis_script(addr, port, [["AUTH", pw], ["PING"]]) + " | grep -q PONG"
    peer.run(WAIT.format(probe=probe))
    out = peer.check_output(redis_script(addr, port,
                                         [["AUTH", pw], ["GET", "verify:marker"],
                                          ["DEL", "verify:marker"]]))
    assert marker in out.split("\r\n"), out
