"""Unit tests of the Harbor client helpers: URLs, Link headers, error messages, diffs."""

from __future__ import annotations

import io
import json
import socket
import sys
from email.message import Message
from pathlib import Path
from urllib.error import HTTPError, URLError

import pytest

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.backendai.cluster.plugins.module_utils import (  # noqa: E402
    _harbor as harbor,
)
from ansible_collections.backendai.cluster.plugins.modules import (  # noqa: E402
    harbor_project,
    harbor_user,
)

# ---------------------------------------------------------------------------------------------
# URLs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://10.20.30.10:7080", "http://10.20.30.10:7080/api/v2.0"),
        ("http://10.20.30.10:7080/", "http://10.20.30.10:7080/api/v2.0"),
        ("https://harbor.example.com/api/v2.0", "https://harbor.example.com/api/v2.0"),
        ("https://harbor.example.com/api/v2.0/", "https://harbor.example.com/api/v2.0"),
        ("http://proxy.example.com/harbor", "http://proxy.example.com/harbor/api/v2.0"),
        ("  http://h:80  ", "http://h:80/api/v2.0"),
    ],
)
def test_normalize_url(given, expected):
    assert harbor.normalize_url(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "empty"),
        ("10.20.30.10:7080", "must start with http:// or https://"),
        ("ftp://h", "must start with http:// or https://"),
        ("http://", "no host name"),
        ("http://admin:Secret123@h:7080", "must not contain credentials"),
        ("http://h:7080/?x=1", "query or fragment"),
        ("http://h:99999", "invalid port"),
    ],
)
def test_normalize_url_refuses(given, reason):
    with pytest.raises(ValueError, match=reason) as info:
        harbor.normalize_url(given)
    assert "Secret123" not in str(info.value)


def test_scrub_url():
    assert harbor.scrub_url("http://u:pw@h:1/x") == "http://********@h:1/x"
    assert harbor.scrub_url("http://h:1/x") == "http://h:1/x"


def test_url_for_encodes_the_query():
    client = harbor.HarborClient("http://h:7080", "admin", "Secret123")
    url = client.url_for("/users", {"q": "username=bai", "page": 1, "page_size": 100,
                                    "skip": None})
    assert url == "http://h:7080/api/v2.0/users?q=username%3Dbai&page=1&page_size=100"
    assert client.project_path("bai-user") == "/projects/bai-user"
    assert client.project_path("a/b") == "/projects/a%2Fb"


# ---------------------------------------------------------------------------------------------
# Pagination
# ---------------------------------------------------------------------------------------------


def test_parse_link_header_harbor_format():
    # Harbor's format: relative URLs, unescaped query (may contain commas), " , " between.
    value = ('</api/v2.0/users?page=1&page_size=10&q=username=~a,email=~b>; rel="prev" , '
             '</api/v2.0/users?page=3&page_size=10&q=username=~a,email=~b>; rel="next"')
    links = harbor.parse_link_header(value)
    assert links == {
        "prev": "/api/v2.0/users?page=1&page_size=10&q=username=~a,email=~b",
        "next": "/api/v2.0/users?page=3&page_size=10&q=username=~a,email=~b",
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", {}),
        (None, {}),
        ('<http://x/a?page=2>; rel="next"', {"next": "http://x/a?page=2"}),
        ("<http://x/a?page=2>; rel=next", {"next": "http://x/a?page=2"}),
        ('<http://x/a>; title="t"', {}),
        ('<http://x/a>; rel="next last"', {"next": "http://x/a", "last": "http://x/a"}),
        ('<http://x/a?page=1>; REL="Prev"', {"prev": "http://x/a?page=1"}),
    ],
)
def test_parse_link_header_variants(value, expected):
    assert harbor.parse_link_header(value) == expected


class FakeResponse:
    def __init__(self, headers):
        self.headers = headers

    header = harbor.HarborResponse.header


@pytest.mark.parametrize(
    ("headers", "batch", "fresh", "read", "expected"),
    [
        ({"Link": '</u?page=2&page_size=2>; rel="next"', "X-Total-Count": "5"}, 2, 2, 2, True),
        ({"Link": '</u?page=2&page_size=2>; rel="prev"', "X-Total-Count": "5"}, 2, 2, 4, False),
        ({"X-Total-Count": "4"}, 2, 2, 4, False),        # all read
        ({"X-Total-Count": "9"}, 2, 2, 4, True),         # no Link, but more to read
        ({}, 2, 2, 2, False),                            # nothing tells of more pages
        ({"Link": '</u?page=2>; rel="next"'}, 1, 1, 1, False),   # short page
        ({"Link": '</u?page=2>; rel="next"'}, 0, 0, 0, False),   # empty page
        ({"Link": '</u?page=2>; rel="next"'}, 2, 0, 2, False),   # page repeats earlier items
        # Harbor's member list counts all members even when filtered by entityname:
        ({"Link": '</m?page=2>; rel="next"', "X-Total-Count": "30"}, 2, 2, 2, True),
        ({"Link": '</m?page=2>; rel="next"', "X-Total-Count": "junk"}, 2, 2, 2, True),
    ],
)
def test_next_page_expected(headers, batch, fresh, read, expected):
    assert harbor.next_page_expected(FakeResponse(headers), batch, fresh, 2, read) is expected


def test_get_all_follows_pages_and_stops(monkeypatch):
    pages = {
        1: ([{"id": 1}, {"id": 2}], {"X-Total-Count": "5", "Link": '<x>; rel="next"'}),
        2: ([{"id": 3}, {"id": 4}], {"X-Total-Count": "5", "Link": '<x>; rel="next"'}),
        3: ([{"id": 5}], {"X-Total-Count": "5"}),
    }
    seen = []

    def call(self, method, path, query=None, body=None, headers=None, auth=None):
        seen.append(dict(query))
        data, answer = pages[query["page"]]
        return harbor.HarborResponse(200, answer, data)

    monkeypatch.setattr(harbor.HarborClient, "call", call)
    client = harbor.HarborClient("http://h", "admin", "Secret123")
    items = client.get_all("/things", {"q": "x=y"}, page_size=2)
    assert [item["id"] for item in items] == [1, 2, 3, 4, 5]
    assert [q["page"] for q in seen] == [1, 2, 3]
    assert all(q["page_size"] == 2 and q["q"] == "x=y" for q in seen)


def test_get_all_survives_an_endpoint_that_ignores_page(monkeypatch):
    def call(self, method, path, query=None, body=None, headers=None, auth=None):
        return harbor.HarborResponse(200, {"X-Total-Count": "50", "Link": '<x>; rel="next"'},
                                     [{"user_id": 1}, {"user_id": 2}])

    monkeypatch.setattr(harbor.HarborClient, "call", call)
    client = harbor.HarborClient("http://h", "admin", "Secret123")
    assert len(client.get_all("/users/search", page_size=2, key="user_id")) == 2


def test_find_user_avoids_q_for_names_harbor_would_misread(monkeypatch):
    queries = []

    def get_all(self, path, query=None, headers=None, page_size=100, max_pages=10000, key="id"):
        queries.append(query)
        return [{"user_id": 7, "username": "a+b"}, {"user_id": 8, "username": "ab"}]

    monkeypatch.setattr(harbor.HarborClient, "get_all", get_all)
    client = harbor.HarborClient("http://h", "admin", "Secret123")
    assert client.find_user("a+b")["user_id"] == 7
    assert client.find_user("ab")["user_id"] == 8
    assert client.find_user("a") is None
    assert queries == [None, {"q": "username=ab"}, {"q": "username=a"}]


def test_location_id():
    assert harbor.location_id("/api/v2.0/users/12") == 12
    assert harbor.location_id("/api/v2.0/projects/3/") == 3
    assert harbor.location_id("/api/v2.0/projects/bai") is None
    assert harbor.location_id(None) is None


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"errors":[{"code":"NOT_FOUND","message":"user x not found"}]}',
         ("NOT_FOUND", "user x not found")),
        (b'{"errors":[{"code":"A","message":"one"},{"code":"B","message":"two"}]}',
         ("A; B", "one; two")),
        ('{"errors":[]}', (None, '{"errors":[]}')),
        ('{"code": 400, "message": "legacy"}', (400, "legacy")),
        ("<html><body>502 Bad Gateway</body></html>",
         (None, "<html><body>502 Bad Gateway</body></html>")),
        ("", (None, None)),
        (None, (None, None)),
        ("x" * 1000, (None, "x" * 297 + "...")),
    ],
)
def test_parse_error_body(body, expected):
    assert harbor.parse_error_body(body) == expected


@pytest.mark.parametrize(
    ("status", "code", "message", "expected"),
    [
        (401, "UNAUTHORIZED", "unauthorized",
         ["rejected the credentials of user 'admin'", "HTTP 401 Unauthorized",
          "Check harbor_username and harbor_password"]),
        (403, "FORBIDDEN", "admin", ["refused GET /api/v2.0/users", "system administrator",
                                     "Harbor said FORBIDDEN: admin"]),
        (404, "NOT_FOUND", "user 9 not found", ["no such resource", "user 9 not found"]),
        (409, "CONFLICT", "user bai or email b@x.io already exists",
         ["conflict", "already exists"]),
        (400, "BAD_REQUEST", "email with illegal format", ["as invalid", "illegal format"]),
        (422, "UNPROCESSABLE_ENTITY", "x", ["as invalid", "HTTP 422 Unprocessable Entity"]),
        (412, "PRECONDITION", "the project contains repositories, can not be deleted",
         ["cannot do", "contains repositories"]),
        (500, "UNKNOWN", "internal server error", ["failed internally", "harbor-core",
                                                  "request ID rid-1"]),
        (503, None, None, ["failed internally", "HTTP 503 Service Unavailable"]),
        (418, None, None, ["answered GET /api/v2.0/users with HTTP 418"]),
    ],
)
def test_describe_http_error(status, code, message, expected):
    text = harbor.describe_http_error("GET", "/users", status, code, message, "rid-1", "admin")
    for part in expected:
        assert part in text


def test_describe_redirect():
    text = harbor.describe_http_error("GET", "/users/current", 301,
                                      location="https://u:pw@harbor.example.com/api/v2.0/users")
    assert "redirect (HTTP 301)" in text
    assert "https://********@harbor.example.com" in text
    assert "pw@" not in text


def test_describe_unreachable():
    text = harbor.describe_unreachable("http://10.0.0.1:7080/api/v2.0", "Connection refused")
    assert text.startswith("Cannot reach Harbor at http://10.0.0.1:7080/api/v2.0: Connection")
    assert "Check harbor_url" in text


def _http_error(status, body, headers=None):
    message = Message()
    for name, value in (headers or {}).items():
        message[name] = value
    return HTTPError("http://h/api/v2.0/x", status, "status", message,
                     io.BytesIO(body.encode()))


def test_call_maps_http_errors(monkeypatch):
    body = json.dumps({"errors": [{"code": "CONFLICT",
                                   "message": "echo of Secret123 and BaiPw-1234"}]})

    def open_(self, method, url, **kwargs):
        raise _http_error(409, body, {"X-Request-Id": "rid-9"})

    monkeypatch.setattr(harbor.Request, "open", open_)
    client = harbor.HarborClient("http://h", "admin", "Secret123")
    client.add_secret("BaiPw-1234")
    with pytest.raises(harbor.HarborError) as info:
        client.call("POST", "/users", body={"password": "BaiPw-1234"})
    error = info.value
    assert error.status == 409 and error.code == "CONFLICT" and error.request_id == "rid-9"
    assert "Secret123" not in str(error) and "BaiPw-1234" not in str(error)
    assert "********" in str(error)
    assert error.details() == {"status": 409, "harbor_code": "CONFLICT",
                               "harbor_message": "echo of ******** and ********",
                               "request_id": "rid-9"}


@pytest.mark.parametrize(
    "exception",
    [URLError(ConnectionRefusedError(111, "Connection refused")), socket.timeout("timed out"),
     OSError("Network is unreachable")],
)
def test_call_maps_network_errors(monkeypatch, exception):
    def open_(self, method, url, **kwargs):
        raise exception

    monkeypatch.setattr(harbor.Request, "open", open_)
    client = harbor.HarborClient("http://h:7080", "admin", "Secret123")
    with pytest.raises(harbor.HarborError) as info:
        client.call("GET", "/users/current")
    assert str(info.value).startswith("Cannot reach Harbor at http://h:7080/api/v2.0: ")
    assert info.value.status is None


def test_call_refuses_non_json(monkeypatch):
    class Answer:
        headers = Message()

        def getcode(self):
            return 200

        def read(self):
            return b"<html>portal</html>"

    monkeypatch.setattr(harbor.Request, "open", lambda self, method, url, **kw: Answer())
    client = harbor.HarborClient("http://h", "admin", "Secret123")
    with pytest.raises(harbor.HarborError, match="not JSON"):
        client.call("GET", "/users/current")


def test_can_login(monkeypatch):
    answers = {"good": None, "bad": _http_error(401, '{"errors":[]}'),
               "down": _http_error(503, "")}

    def open_(self, method, url, **kwargs):
        error = answers[self.url_password]
        if error:
            raise error
        response = type("R", (), {"headers": Message(), "getcode": lambda s: 200,
                                  "read": lambda s: b'{"user_id": 3}'})
        return response()

    monkeypatch.setattr(harbor.Request, "open", open_)
    client = harbor.HarborClient("http://h", "admin", "admin-pw")
    assert client.can_login("bai", "good") is True
    assert client.can_login("bai", "bad") is False
    with pytest.raises(harbor.HarborError):
        client.can_login("bai", "down")


# ---------------------------------------------------------------------------------------------
# Diffs and values
# ---------------------------------------------------------------------------------------------


def test_changed_fields():
    current = {"email": "a@x.io", "realname": "A", "comment": ""}
    assert harbor.changed_fields(current, {"email": "a@x.io", "realname": None}) == []
    assert harbor.changed_fields(current, {"email": "b@x.io", "comment": "c"}) == [
        "comment", "email"]
    assert harbor.changed_fields(None, {"email": "b@x.io"}) == ["email"]


def test_make_diff():
    before = {"username": "bai", "email": "a@x.io", "user_id": 3}
    after = {"username": "bai", "email": "b@x.io", "user_id": 3}
    assert harbor.make_diff(before, after, ("username", "email")) == {
        "before": {"username": "bai", "email": "a@x.io"},
        "after": {"username": "bai", "email": "b@x.io"},
    }
    assert harbor.make_diff(None, after) == {"before": {}, "after": after}
    assert harbor.make_diff(before, {}) == {"before": before, "after": {}}


def test_public_user_drops_secrets():
    user = {"user_id": 3, "username": "bai", "email": "b@x.io", "sysadmin_flag": False,
            "oidc_user_meta": {"secret": "cli-secret"}, "password": "x"}
    shown = harbor_user.public_user(user)
    assert shown == {"user_id": 3, "username": "bai", "email": "b@x.io", "sysadmin_flag": False}
    assert harbor_user.diff_view(user)["sysadmin"] is False
    assert harbor_user.public_user(None) == {}


def test_project_view():
    project = {"project_id": 2, "name": "bai", "metadata": {"public": "true"},
               "owner_name": "admin", "repo_count": 0, "creation_time": "t"}
    view = harbor_project.view(project, -1)
    assert view["public"] is True and view["storage_limit"] == -1
    assert harbor_project.view(None, None) == {}


@pytest.mark.parametrize(
    ("password", "ok"),
    [("Harbor12345", True), ("harbor12345", False), ("HARBOR12345", False),
     ("HarborHarbor", False), ("Ha1", False), ("Ab1" + "x" * 125, True),
     ("Ab1" + "x" * 126, False)],
)
def test_password_is_acceptable(password, ok):
    assert harbor.password_is_acceptable(password) is ok


def test_bool_to_harbor_and_roles():
    assert harbor.bool_to_harbor(True) == "true"
    assert harbor.bool_to_harbor(False) == "false"
    assert harbor.bool_to_harbor("high") == "high"
    assert harbor.ROLES == {"projectAdmin": 1, "developer": 2, "guest": 3, "maintainer": 4,
                            "limitedGuest": 5}
    assert harbor.ROLE_NAMES[2] == "developer"


def test_argument_spec_is_a_copy():
    spec = harbor.harbor_argument_spec(name=dict(type="str"))
    spec["harbor_url"]["required"] = False
    assert harbor.HARBOR_ARGUMENT_SPEC["harbor_url"]["required"] is True
    assert spec["harbor_password"]["no_log"] is True
    assert "name" in spec
