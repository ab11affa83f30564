"""backendai_etcd against a real etcd (Debian's etcd-server), started by the test itself."""

import base64
import json
import shutil
import subprocess
import urllib.request

import pytest
from modrun import free_port, require_binary, run_module, start_etcd

NS = "itest"


def _post(url, path, body, token=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": token} if token else {})})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def _b64(s):
    return base64.b64encode(s.encode()).decode()


def raw_subtree(url, prefix, token=None):
    """Read keys straight through the gateway, independent of the module's code."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    res = _post(url, "/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end)}, token)
    return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", "")).decode()
            for kv in res.get("kvs", [])}


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    proc, url, data = start_etcd(tmp_path_factory, "itest")
    yield url
    proc.terminate()
    proc.wait(10)
    shutil.rmtree(data, ignore_errors=True)


def test_document_check_apply_check_apply(etcd):
    args = {"endpoints": [etcd], "namespace": NS, "key": "volumes",
            "document": {"_types": {"user": "", "group": ""}, "default_host": "sp1:nas",
                         "proxies": {"sp1": {"secret": "s3cr3t", "ssl_verify": "false"}}}}
    # Through the real CLI once: --check and --diff as the controller passes them.
    rc, res, out = run_module("backendai.cluster.backendai_etcd", args, check=True, diff=True,
                              via_cli=True)
    assert rc == 0, out
    assert res["changed"] is True
    assert sorted(res["keys_added"]) == ["volumes/_types/group", "volumes/_types/user",
                                         "volumes/default_host", "volumes/proxies/sp1/secret",
                                         "volumes/proxies/sp1/ssl_verify"]
    assert "s3cr3t" not in out, "a secret value leaked into the diff"
    assert res["diff"]["before"] == ""
    assert "volumes/proxies/sp1/secret = ********" in res["diff"]["after"].splitlines()
    assert "volumes/default_host = sp1:nas" in res["diff"]["after"].splitlines()
    assert raw_subtree(etcd, f"/sorna/{NS}/volumes/") == {}, "check mode wrote keys"
    # The direct run gives the same answer.
    rc, direct, out = run_module("backendai.cluster.backendai_etcd", args, check=True, diff=True)
    assert rc == 0 and "s3cr3t" not in out, out
    assert (direct["diff"], direct["keys_added"]) == (res["diff"], res["keys_added"])

    rc, res, out = run_module("backendai.cluster.backendai_etcd", args)
    assert (rc, res["changed"]) == (0, True), out
    assert raw_subtree(etcd, f"/sorna/{NS}/volumes/") == {
        f"/sorna/{NS}/volumes/_types/user": "", f"/sorna/{NS}/volumes/_types/group": "",
        f"/sorna/{NS}/volumes/default_host": "sp1:nas",
        f"/sorna/{NS}/volumes/proxies/sp1/secret": "s3cr3t",
        f"/sorna/{NS}/volumes/proxies/sp1/ssl_verify": "false"}

    for check in (True, False):
        rc, res, out = run_module("backendai.cluster.backendai_etcd", args, check=check)
        assert (rc, res["changed"]) == (0, False), out


def test_leaves_stored_like_the_cli(etcd):
    doc = {"bool": True, "list": ["a", "b"], "num": 5, "null": None, "": "at-prefix",
           "a/b c": "quoted"}
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {"endpoints": [etcd], "namespace": NS, "key": "quirks",
                               "document": doc})
    assert rc == 0, out
    got = raw_subtree(etcd, f"/sorna/{NS}/quirks")
    assert got == {f"/sorna/{NS}/quirks": "at-prefix", f"/sorna/{NS}/quirks/bool": "True",
                   f"/sorna/{NS}/quirks/list": "['a', 'b']", f"/sorna/{NS}/quirks/num": "5",
                   f"/sorna/{NS}/quirks/null": "None", f"/sorna/{NS}/quirks/a%2Fb%20c": "quoted"}


def test_single_value_change_and_get(etcd):
    base = {"endpoints": [etcd], "namespace": NS, "key": "config/redis/addr"}
    assert run_module("backendai.cluster.backendai_etcd", {**base, "value": "h:1"})[1]["changed"]
    rc, res, _ = run_module("backendai.cluster.backendai_etcd", {**base, "value": "h:2"})
    assert res["changed"] is True and res["keys_changed"] == ["config/redis/addr"]
    rc, res, _ = run_module("backendai.cluster.backendai_etcd", {**base, "state": "get"})
    assert (res["value"], res["exists"]) == ("h:2", True)


def test_exclusive_removes_extra_keys_and_prefix_delete(etcd):
    base = {"endpoints": [etcd], "namespace": NS, "key": "config/plugins"}
    run_module("backendai.cluster.backendai_etcd", {**base, "document": {"a": "1", "b": "2"}})
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**base, "document": {"a": "1"}, "exclusive": True})
    assert rc == 0 and res["keys_removed"] == ["config/plugins/b"], out
    assert raw_subtree(etcd, f"/sorna/{NS}/config/plugins/") == {
        f"/sorna/{NS}/config/plugins/a": "1"}
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**base, "state": "absent", "prefix": True})
    assert res["changed"] is True and raw_subtree(etcd, f"/sorna/{NS}/config/plugins") == {}
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**base, "state": "absent", "prefix": True})
    assert res["changed"] is False


def test_unreachable_endpoint_fails_cleanly():
    port = free_port()
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {"endpoints": [f"http://127.0.0.1:{port}"], "key": "k",
                               "value": "v", "timeout": 2})
    assert rc != 0
    assert "cannot reach etcd" in res["msg"] and str(port) in res["msg"]
    assert "Traceback" not in out


def test_malformed_input_fails_cleanly(etcd):
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {"endpoints": [etcd], "key": "k", "value": "v",
                               "document": {"a": 1}})
    assert rc != 0 and "mutually exclusive" in res["msg"]
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {"endpoints": [etcd], "key": "/", "state": "absent",
                               "prefix": True})
    assert rc != 0 and "refusing" in res["msg"]
    assert "Traceback" not in out


def test_wrong_password_on_auth_enabled_etcd(tmp_path_factory):
    proc, url, data = start_etcd(tmp_path_factory, "authtest")
    try:
        ctl = require_binary("etcdctl", "etcd-client")
        env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
        for cmd in (["user", "add", "root:rootpw"], ["auth", "enable"]):
            subprocess.run([ctl, "--endpoints", url, *cmd], env=env, check=True,
                           capture_output=True)
        args = {"endpoints": [url], "namespace": NS, "key": "config/x", "value": "1",
                "user": "root"}
        rc, res, out = run_module("backendai.cluster.backendai_etcd",
                                  {**args, "password": "wrong-password"}, via_cli=True)
        assert rc != 0 and "refused the credentials" in res["msg"], out
        assert "wrong-password" not in out
        rc, res, out = run_module("backendai.cluster.backendai_etcd",
                                  {**args, "password": "rootpw"})
        assert (rc, res["changed"]) == (0, True), out
        rc, res, out = run_module("backendai.cluster.backendai_etcd",
                                  {**args, "password": "rootpw"})
        assert (rc, res["changed"]) == (0, False), out
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(data, ignore_errors=True)


def test_whole_namespace_document_in_one_call(etcd):
    """key "" merges a document whose top level are the roots, like `put-json "" FILE`."""
    ns = "whole"
    doc = {"config": {"redis": {"addr": "10.0.0.1:8110"}},
           "volumes": {"_types": {"user": ""}, "default_host": "sp1:nas"}}
    base = {"endpoints": [etcd], "namespace": ns, "key": ""}
    rc, res, out = run_module("backendai.cluster.backendai_etcd", {**base, "document": doc})
    assert (rc, res["changed"]) == (0, True), out
    assert sorted(res["keys_added"]) == ["config/redis/addr", "volumes/_types/user",
                                         "volumes/default_host"]
    assert raw_subtree(etcd, f"/sorna/{ns}/") == {
        f"/sorna/{ns}/config/redis/addr": "10.0.0.1:8110",
        f"/sorna/{ns}/volumes/_types/user": "", f"/sorna/{ns}/volumes/default_host": "sp1:nas"}
    rc, res, out = run_module("backendai.cluster.backendai_etcd", {**base, "document": doc})
    assert (rc, res["changed"]) == (0, False), out
    rc, res, out = run_module("backendai.cluster.backendai_etcd",
                              {**base, "state": "get", "prefix": True})
    assert res["document"] == {"config": {"redis": {"addr": "10.0.0.1:8110"}},
                               "volumes": {"_types": {"user": ""}, "default_host": "sp1:nas"}}
    for refused in ({"document": doc, "exclusive": True}, {"value": "x"},
                    {"state": "absent", "prefix": True}):
        rc, res, out = run_module("backendai.cluster.backendai_etcd", {**base, **refused})
        assert rc != 0 and "refusing" in res["msg"], out
    assert len(raw_subtree(etcd, f"/sorna/{ns}/")) == 3
