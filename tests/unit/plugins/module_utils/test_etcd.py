"""Pure logic of the etcd helper: key layout, put-json flattening, diffs."""

import pytest
from ansible_collections.backendai.cluster.plugins.module_utils import _etcd as e


def test_mangle_global_strips_leading_slash():
    assert e.mangle("local", "/config/redis/addr") == "/sorna/local/config/redis/addr"


@pytest.mark.parametrize(
    ("scope", "name", "expected"),
    [
        ("sgroup", "gpu", "/sorna/ns/sgroup/gpu/config/x"),
        ("node", "i-ag1", "/sorna/ns/nodes/agents/i-ag1/config/x"),
        ("storage_node", "sp1", "/sorna/ns/nodes/storage/sp1/config/x"),
        ("sgroup", "a/b", "/sorna/ns/sgroup/a%2Fb/config/x"),
    ],
)
def test_mangle_scopes(scope, name, expected):
    assert e.mangle("ns", "config/x", scope, name) == expected


def test_scope_without_name_is_refused():
    with pytest.raises(ValueError, match="scope_name"):
        e.mangle("ns", "k", "sgroup", None)


def test_flatten_matches_put_json_quirks():
    doc = {"list": ["a", "b"], "num": 5, "float": 1.5, "bool": True, "false": False,
           "null": None, "": "value-at-prefix", "a/b c": "slash and space",
           "nested": {"x": {"y": "z"}}, "empty": {}}
    assert e.flatten("/sorna/local/quirks", doc) == {
        "/sorna/local/quirks/list": "['a', 'b']",
        "/sorna/local/quirks/num": "5",
        "/sorna/local/quirks/float": "1.5",
        "/sorna/local/quirks/bool": "True",
        "/sorna/local/quirks/false": "False",
        "/sorna/local/quirks/null": "None",
        "/sorna/local/quirks": "value-at-prefix",
        "/sorna/local/quirks/a%2Fb%20c": "slash and space",
        "/sorna/local/quirks/nested/x/y": "z",
    }


def test_flatten_volumes_document():
    doc = {"_types": {"user": "", "group": ""}, "default_host": "sp1:nas",
           "proxies": {"sp1": {"secret": "s3", "ssl_verify": "false"}}}
    assert e.flatten("/sorna/local/volumes", doc) == {
        "/sorna/local/volumes/_types/user": "",
        "/sorna/local/volumes/_types/group": "",
        "/sorna/local/volumes/default_host": "sp1:nas",
        "/sorna/local/volumes/proxies/sp1/secret": "s3",
        "/sorna/local/volumes/proxies/sp1/ssl_verify": "false",
    }


def test_unflatten_keeps_value_and_children():
    kvs = {"/r/k": "v", "/r/k/x": "1", "/r/k/y/z": "2", "/r/kk/q": "other subtree"}
    assert e.unflatten("/r/k", kvs) == {"": "v", "x": "1", "y": {"z": "2"}}


def test_range_end_increments_last_byte():
    assert e.range_end("/sorna/local/volumes/") == "/sorna/local/volumes0"
    assert e.range_end("abc") == "abd"


def test_b64_roundtrip_utf8():
    assert e.b64d(e.b64e("vfolder-호스트")) == "vfolder-호스트"
    assert e.b64e("hello") == "aGVsbG8="


def test_compute_diff_merge_and_exclusive():
    cur = {"/b/a": "1", "/b/c": "3", "/b/old": "x", "/bb/z": "keep"}
    want = {"/b/a": "1", "/b/c": "4", "/b/new": "n"}
    assert e.compute_diff(cur, want) == (["/b/new"], ["/b/c"], [])
    assert e.compute_diff(cur, want, exclusive=True, base="/b") == (
        ["/b/new"], ["/b/c"], ["/b/old"])


def test_render_masks_secrets():
    out = e.render({"/r/config/redis/password": "pw", "/r/config/redis/addr": "h:1"}, strip="/r/")
    assert out == "config/redis/addr = h:1\nconfig/redis/password = ********\n"
    assert "= pw" in e.render({"/r/password": "pw"}, show_secrets=True)


def test_in_subtree_is_not_a_raw_prefix():
    assert e.in_subtree("/a/config/redis/addr", "/a/config/redis")
    assert not e.in_subtree("/a/config/redis2/addr", "/a/config/redis")
