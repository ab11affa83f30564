"""Pure logic of backendai_etcd_auth: the key ranges, the gateway's permission format, the diff."""

from __future__ import annotations

import base64
import io
import json
import sys
import urllib.error
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.backendai.cluster.plugins.module_utils import _etcd  # noqa: E402
from ansible_collections.backendai.cluster.plugins.modules import (  # noqa: E402
    backendai_etcd_auth as m,
)


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_a_namespace_is_its_prefix_and_nothing_that_merely_starts_alike():
    key, end = m.namespace_range("local")
    assert (key, end) == ("/sorna/local/", "/sorna/local0")
    # "/sorna/localx/..." sorts after the range's end; "/sorna/local/..." inside it.
    assert key <= "/sorna/local/config/redis" < end
    assert not key <= "/sorna/localx/a" < end


def test_desired_permissions_deduplicate_and_sort():
    user = {"name": "u", "namespaces": ["b", "a", "b"], "access": "read"}
    assert m.desired_perms(user) == [("READ", "/sorna/a/", "/sorna/a0"),
                                     ("READ", "/sorna/b/", "/sorna/b0")]


def test_gateway_omits_read_permission_type():
    answer = {"perm": [{"key": b64("/r/"), "range_end": b64("/r0")},
                       {"permType": "READWRITE", "key": b64("/s/"), "range_end": b64("/s0")}]}
    assert m.current_perms(answer) == [("READ", "/r/", "/r0"), ("READWRITE", "/s/", "/s0")]
    assert m.current_perms({}) == []


def test_render_skips_missing_entries_and_never_shows_passwords():
    text = m.render(True, {"root": [], "backendai": [("READWRITE", "/sorna/local/", "x")],
                           "gone": None},
                    {"backendai": ["backendai"], "root": ["root"], "none": None})
    assert text.splitlines() == [
        "authentication: enabled",
        "role backendai: readwrite /sorna/local/",
        "role root: (no permission)",
        "user backendai: roles backendai",
        "user root: roles root",
    ]


def test_request_returns_etcd_errors_instead_of_raising():
    def opener(url, **kwargs):
        raise urllib.error.HTTPError(url, 400, "Bad Request", {},
                                     io.BytesIO(json.dumps({"message": "etcdserver: x"}).encode()))

    gw = _etcd.Gateway(["http://etcd:2379"], opener=opener)
    assert gw.request("/v3/auth/user/list", {}) == (None, "etcdserver: x")


def test_request_raises_when_no_endpoint_answers():
    def opener(url, **kwargs):
        raise urllib.error.URLError("connection refused")

    gw = _etcd.Gateway(["http://a:1", "http://b:2"], opener=opener)
    with pytest.raises(_etcd.EtcdError, match=r"a:1.*b:2"):
        gw.request("/v3/auth/status", {})
