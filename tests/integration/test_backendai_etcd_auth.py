"""backendai_etcd_auth against a real etcd (Debian's etcd-server), started by the test itself.

What the cluster relies on is checked through etcd's own gateway, independent of the module:
anonymous requests are refused once authentication is on, the Backend.AI user reads and writes
its namespace and nothing else, and root keeps full access.
"""

import base64
import json
import shutil
import urllib.error
import urllib.request

import pytest
from modrun import run_module, start_etcd

MOD = "backendai.cluster.backendai_etcd_auth"
ROOT_PW = "Root-pw-4-itest"
BAI_PW = "Bai-pw-4-itest"


def post(url, path, body, token=None):
    """(HTTP status, JSON answer) of one gateway request."""
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": token} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def b64(text):
    return base64.b64encode(text.encode()).decode()


def token(url, name, password):
    status, answer = post(url, "/v3/auth/authenticate", {"name": name, "password": password})
    assert status == 200, answer
    return answer["token"]


def args(url, **changes):
    base = {"endpoints": [url], "root_password": ROOT_PW,
            "users": [{"name": "backendai", "password": BAI_PW, "namespaces": ["local"]}]}
    base.update(changes)
    return base


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    proc, url, data = start_etcd(tmp_path_factory, "authitest")
    yield url
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(data, ignore_errors=True)


def test_check_then_enable_then_nothing_to_do(etcd):
    rc, res, out = run_module(MOD, args(etcd), check=True, diff=True, via_cli=True)
    assert rc == 0, out
    assert res["changed"] is True
    assert res["users_added"] == ["root", "backendai"]
    assert "enable authentication" in res["actions"]
    assert ROOT_PW not in out and BAI_PW not in out, "a password leaked into the output"
    assert "authentication: disabled" in res["diff"]["before"]
    assert "role backendai: readwrite /sorna/local/" in res["diff"]["after"]
    # Check mode changed nothing: etcd is still open.
    assert post(etcd, "/v3/kv/range", {"key": b64("/x")})[0] == 200

    rc, res, out = run_module(MOD, args(etcd), diff=True)
    assert rc == 0, out
    assert res["changed"] is True and res["auth_enabled"] is True

    for check in (True, False):
        rc, res, out = run_module(MOD, args(etcd), check=check, diff=True)
        assert rc == 0, out
        assert res["changed"] is False, res["actions"]
        assert res["diff"]["before"] == res["diff"]["after"]


def test_etcd_enforces_what_the_module_set_up(etcd):
    run_module(MOD, args(etcd))
    status, answer = post(etcd, "/v3/kv/range", {"key": b64("/sorna/local/x")})
    assert status != 200 and "user name is empty" in answer.get("message", ""), answer

    bai = token(etcd, "backendai", BAI_PW)
    key = b64("/sorna/local/config/itest")
    assert post(etcd, "/v3/kv/put", {"key": key, "value": b64("v")}, bai)[0] == 200
    status, answer = post(etcd, "/v3/kv/range", {"key": key}, bai)
    assert status == 200 and base64.b64decode(answer["kvs"][0]["value"]) == b"v"
    for outside in ("/sorna/other/config/x", "/sorna/localx/y", "/elsewhere"):
        status, answer = post(etcd, "/v3/kv/put", {"key": b64(outside), "value": b64("v")}, bai)
        assert "permission denied" in answer.get("message", ""), (outside, status, answer)
    # Nor may the Backend.AI user manage users.
    status, answer = post(etcd, "/v3/auth/user/list", {}, bai)
    assert "permission denied" in answer.get("message", ""), answer

    root = token(etcd, "root", ROOT_PW)
    assert post(etcd, "/v3/kv/put", {"key": b64("/elsewhere"), "value": b64("v")}, root)[0] == 200


def test_changed_password_and_permissions_are_put_back(etcd):
    run_module(MOD, args(etcd))
    root = token(etcd, "root", ROOT_PW)
    post(etcd, "/v3/auth/user/changepw", {"name": "backendai", "password": "drifted"}, root)
    post(etcd, "/v3/auth/role/grant",
         {"name": "backendai", "perm": {"permType": "READ", "key": b64("/other"),
                                        "range_end": b64("/other0")}}, root)

    rc, res, out = run_module(MOD, args(etcd), check=True, diff=True)
    assert rc == 0, out
    assert res["changed"] is True
    assert res["passwords_set"] == ["backendai"] and res["roles_changed"] == ["backendai"]
    assert "user backendai: password set" in res["diff"]["after"]
    assert "read /other" in res["diff"]["before"] and "read /other" not in res["diff"]["after"]

    rc, res, out = run_module(MOD, args(etcd))
    assert rc == 0 and res["changed"] is True, out
    token(etcd, "backendai", BAI_PW)
    rc, res, out = run_module(MOD, args(etcd))
    assert rc == 0 and res["changed"] is False, res["actions"]


def test_wrong_root_password_fails_and_changes_nothing(etcd):
    run_module(MOD, args(etcd))
    rc, res, out = run_module(MOD, args(etcd, root_password="Not-the-one-42",
                                         users=[{"name": "intruder", "password": "x1y2z3",
                                                 "namespaces": ["local"]}]))
    assert rc != 0
    assert "refuses root's password" in res["msg"], res
    status, answer = post(etcd, "/v3/auth/user/list", {}, token(etcd, "root", ROOT_PW))
    assert "intruder" not in answer.get("users", [])


def test_disable_turns_authentication_off(etcd):
    run_module(MOD, args(etcd))
    rc, res, out = run_module(MOD, args(etcd, state="disabled"))
    assert rc == 0 and res["changed"] is True, out
    assert res["actions"] == ["disable authentication"]
    assert post(etcd, "/v3/kv/range", {"key": b64("/sorna/local/x")})[0] == 200
    rc, res, out = run_module(MOD, args(etcd, state="disabled"))
    assert rc == 0 and res["changed"] is False, res["actions"]
    # Back on for good measure: the users are still there, only their passwords are set again.
    rc, res, out = run_module(MOD, args(etcd))
    assert rc == 0 and res["changed"] is True, out
    assert res["users_added"] == [] and "enable authentication" in res["actions"]


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([{"name": "root", "password": "x", "namespaces": []}], "must not list root"),
        ([{"name": "a", "password": "x", "namespaces": ["a/b"]}], "without '/'"),
        ([{"name": "a", "password": "x"}, {"name": "a", "password": "y"}], "twice"),
    ],
)
def test_bad_input_is_refused_before_any_request(users, message):
    rc, res, out = run_module(MOD, {"endpoints": ["http://127.0.0.1:9"],
                                    "root_password": ROOT_PW, "users": users})
    assert rc != 0 and message in res["msg"], res


def test_the_fenced_user_reads_and_writes_the_whole_namespace_with_backendai_etcd(etcd):
    """backup.yml and restore.yml read and write the whole namespace (key "") as the Backend.AI
    user: its range must start at /sorna/<ns>/, inside the role's permission, not at /sorna/<ns>."""
    run_module(MOD, args(etcd))
    login = {"endpoints": [etcd], "namespace": "local", "user": "backendai", "password": BAI_PW}
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**login, "key": "", "document": {"config": {"whole": "1"}}})
    assert rc == 0, out
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**login, "key": "", "prefix": True, "state": "get"})
    assert rc == 0, out
    assert res["document"]["config"]["whole"] == "1", res
