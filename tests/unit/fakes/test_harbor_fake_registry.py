"""The Harbor fake's registry side: who may pull and push, and the repository/artifact API.

The decision the stand-in's nginx asks for before it passes a request on to the registry is
tested directly (``registry_access``) and over HTTP (``/service/registry-auth``). The
repositories and artifacts endpoints read a small in-process registry that speaks the part of
the distribution API the fake uses (catalog, tag lists, manifests); every request and answer
is checked against the fake's API description.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from tests.fakes.harbor.testing import basic as basic_auth  # noqa: E402
from tests.fakes.harbor.testing import call, load_server  # noqa: E402

ADMIN_PASSWORD = "AdminPw-Harbor-1234"
PASSWORD = "UserPw-Harbor-5678"


fake_server = load_server("harbor_fake_server_registry")


# ---------------------------------------------------------------------------------------------
# A small registry: what the fake reads of the distribution API
# ---------------------------------------------------------------------------------------------


class TinyRegistry(ThreadingHTTPServer):
    """Catalog (two names a page, with a Link to the next), tag lists and manifests."""

    daemon_threads = True
    PAGE = 2

    def __init__(self):
        super().__init__(("127.0.0.1", 0), TinyRegistryHandler)
        self.repos = {}  # name -> {"tags": {tag: digest}, "manifests": {digest: (type, bytes)}}
        self.requests = []

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server_address[1]

    def put(self, name, tag, media_type, document):
        body = json.dumps(document, indent=3).encode()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        repo = self.repos.setdefault(name, {"tags": {}, "manifests": {}})
        repo["manifests"][digest] = (media_type, body)
        if tag:
            repo["tags"][tag] = digest
        return digest, len(body)


class TinyRegistryHandler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def answer(self, status, body=b"", content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def unknown(self, code):
        body = json.dumps({"errors": [{"code": code, "message": "unknown"}]}).encode()
        self.answer(404, body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        registry = self.server
        split = urlsplit(self.path)
        registry.requests.append(self.path)
        if split.path == "/v2/_catalog":
            query = parse_qs(split.query)
            size = min(int(query.get("n", ["100"])[0]), registry.PAGE)
            names = sorted(name for name in registry.repos if name > query.get("last", [""])[0])
            headers = []
            if len(names) > size:
                headers.append(("Link", f'</v2/_catalog?last={names[size - 1]}&n={size}>; '
                                        'rel="next"'))
            body = json.dumps({"repositories": names[:size]}).encode()
            self.answer(200, body, headers=headers)
            return
        found = re.match(r"^/v2/(.+)/(tags/list|manifests/([^/]+))$", split.path)
        if not found or found[1] not in registry.repos:
            self.unknown("NAME_UNKNOWN")
            return
        repo = registry.repos[found[1]]
        if found[2] == "tags/list":
            self.answer(200, json.dumps({"name": found[1], "tags": sorted(repo["tags"])}).encode())
            return
        reference = found[3]
        if reference.startswith("sha256:") and not re.fullmatch(r"sha256:[0-9a-f]{64}",
                                                                reference):
            body = json.dumps({"errors": [{"code": "DIGEST_INVALID", "message": "bad"}]})
            self.answer(400, body.encode())
            return
        digest = repo["tags"].get(reference, reference)
        if digest not in repo["manifests"]:
            self.unknown("MANIFEST_UNKNOWN")
            return
        media_type, body = repo["manifests"][digest]
        accepted = [part.strip() for part in self.headers.get("Accept", "").split(",")]
        assert media_type in accepted, f"{media_type} not in the Accept header {accepted}"
        self.answer(200, body, media_type, [("Docker-Content-Digest", digest)])


@pytest.fixture()
def registry():
    server = TinyRegistry()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Users, projects and members of the tests
# ---------------------------------------------------------------------------------------------


def add_user(state, name, admin=False):
    user_id = state.new_id("user")
    user = {"user_id": user_id, "username": name, "email": f"{name}@example.com",
            "realname": name, "comment": "", "sysadmin_flag": admin,
            "creation_time": "", "update_time": ""}
    state.set_password(user, PASSWORD)
    state.users[user_id] = user
    return user


def add_project(state, name, public, members):
    project_id = state.new_id("project")
    state.projects[project_id] = {"project_id": project_id, "name": name, "owner_id": 1,
                                  "metadata": {"public": "true" if public else "false"},
                                  "repo_count": 0, "creation_time": "", "update_time": ""}
    for user, role in members:
        member_id = state.new_id("member")
        state.members[member_id] = {"id": member_id, "project_id": project_id,
                                    "entity_id": user["user_id"], "entity_type": "u",
                                    "role_id": role}


def populate(state):
    users = {name: add_user(state, name) for name in
             ("owner", "dev", "maint", "guest", "limited", "outsider")}
    users["root"] = add_user(state, "root", admin=True)
    add_project(state, "priv", False, [(users["owner"], 1), (users["dev"], 2),
                                       (users["guest"], 3), (users["maint"], 4),
                                       (users["limited"], 5)])
    add_project(state, "pub", True, [(users["owner"], 1)])
    return users


@pytest.fixture()
def state():
    harbor_state = fake_server.HarborState(ADMIN_PASSWORD)
    populate(harbor_state)
    return harbor_state


def who(state, name):
    return None if name is None else state.user_by_name(name)


# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------

MANIFEST = "/v2/priv/app/manifests/1.0"
UPLOAD = "/v2/priv/app/blobs/uploads/"
PUB_BLOB = "/v2/pub/tools/x/blobs/sha256:" + "a" * 64


@pytest.mark.parametrize(("user", "method", "uri", "status"), [
    # pulling from a private project: members of every role and system admins
    (None, "GET", MANIFEST, 401),
    ("outsider", "GET", MANIFEST, 403),
    ("limited", "HEAD", MANIFEST, 200),
    ("guest", "GET", MANIFEST, 200),
    ("dev", "GET", "/v2/priv/app/tags/list", 200),
    ("root", "GET", MANIFEST, 200),
    ("admin", "HEAD", MANIFEST, 200),
    # pushing: project admin, developer, maintainer, system admins
    (None, "POST", UPLOAD, 401),
    ("outsider", "POST", UPLOAD, 403),
    ("limited", "POST", UPLOAD, 403),
    ("guest", "PUT", MANIFEST, 403),
    ("dev", "POST", UPLOAD, 200),
    ("dev", "PATCH", UPLOAD + "0b5e2c1e-1111-2222-3333-444455556666?_state=x", 200),
    ("maint", "PUT", MANIFEST, 200),
    ("owner", "DELETE", MANIFEST, 200),
    ("root", "PUT", MANIFEST, 200),
    # a public project: anyone pulls, only its members push
    (None, "GET", PUB_BLOB, 200),
    ("outsider", "HEAD", PUB_BLOB, 200),
    (None, "PUT", "/v2/pub/tools/x/manifests/2", 401),
    ("dev", "PUT", "/v2/pub/tools/x/manifests/2", 403),
    ("owner", "PUT", "/v2/pub/tools/x/manifests/2", 200),
    # the catalog: system admins only
    (None, "GET", "/v2/_catalog", 401),
    ("owner", "GET", "/v2/_catalog?n=10", 403),
    ("root", "GET", "/v2/_catalog", 200),
    # projects that do not exist, and names that are no repositories of a project
    (None, "GET", "/v2/nosuch/app/manifests/1", 401),
    ("dev", "GET", "/v2/nosuch/app/manifests/1", 403),
    ("root", "PUT", "/v2/nosuch/app/manifests/1", 403),
    ("dev", "GET", "/v2/app/manifests/1", 403),
    ("dev", "GET", "/v2/priv/app/nonsense", 403),
    ("dev", "OPTIONS", MANIFEST, 403),
])
def test_registry_access(state, user, method, uri, status):
    decided, code, message = fake_server.registry_access(state, who(state, user), method, uri)
    assert decided == status, message
    if status == 200:
        assert code is None and message is None
    else:
        assert code == ("UNAUTHORIZED" if status == 401 else "DENIED")
        assert message


def test_a_role_change_takes_effect_at_once(state):
    dev = state.user_by_name("dev")
    assert fake_server.registry_access(state, dev, "PUT", MANIFEST)[0] == 200
    for member in state.members.values():
        if member["entity_id"] == dev["user_id"]:
            member["role_id"] = 3  # guest
    assert fake_server.registry_access(state, dev, "PUT", MANIFEST)[0] == 403
    assert fake_server.registry_access(state, dev, "GET", MANIFEST)[0] == 200


# ---------------------------------------------------------------------------------------------
# Over HTTP: the auth endpoint, the registry base, the API
# ---------------------------------------------------------------------------------------------


def basic(user, password=PASSWORD):
    return basic_auth(user, password)


def token_for(fake, user=None):
    status, _, body = call(fake.url + "/service/token?service=harbor-registry",
                           basic(user) if user else {})
    assert status == 200
    return {"Authorization": "Bearer " + json.loads(body)["token"]}


@pytest.fixture()
def fake(registry):
    with fake_server.FakeHarbor(admin_password=ADMIN_PASSWORD, registry_url=registry.url) as run:
        with run.state.lock:
            populate(run.state)
        yield run
        assert run.violations == [], "requests or answers off the API description"


def ask(fake, method, uri, headers=None, extra=None):
    headers = dict(headers or {}, **{"X-Original-Method": method, "X-Original-URI": uri})
    headers.update(extra or {})
    return call(fake.url + "/service/registry-auth", headers)


def test_auth_endpoint_takes_basic_credentials_and_tokens(fake):
    assert ask(fake, "PUT", MANIFEST, basic("dev"))[0] == 200
    assert ask(fake, "PUT", MANIFEST, token_for(fake, "dev"))[0] == 200
    assert ask(fake, "GET", "/v2/pub/tools/x/manifests/1", token_for(fake))[0] == 200
    status, headers, body = ask(fake, "GET", MANIFEST, token_for(fake, "outsider"))
    assert status == 403
    assert json.loads(body)["errors"][0]["code"] == "DENIED"
    assert "Www-Authenticate" not in headers


def test_auth_endpoint_challenges_anonymous_callers(fake):
    for headers in ({}, token_for(fake), {"Authorization": "Bearer made-up"},
                    basic("dev", "wrong-Password-1")):
        status, answer, body = ask(fake, "POST", UPLOAD, headers,
                                   {"Host": "harbor.example.test:8080"})
        assert status == 401, headers
        assert answer["Www-Authenticate"] == (
            'Bearer realm="http://harbor.example.test:8080/service/token",'
            'service="harbor-registry"')
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"


def test_auth_endpoint_leaves_the_challenge_to_the_refusal(fake):
    # nginx copies a challenge of its auth_request answer to the client, and then adds the one
    # of the refusal it asks for: only the refusal may carry it.
    status, headers, _ = ask(fake, "GET", MANIFEST, {}, {"X-Registry-Auth": "check"})
    assert status == 401 and "Www-Authenticate" not in headers
    status, headers, _ = ask(fake, "GET", MANIFEST, {}, {"X-Registry-Auth": "refusal"})
    assert status == 401 and headers.get_all("Www-Authenticate") == [
        f'Bearer realm="{fake.url}/service/token",service="harbor-registry"']


def test_registry_base_accepts_basic_credentials(fake):
    assert call(fake.url + "/v2/", basic("dev"))[0] == 200
    assert call(fake.url + "/v2/", basic("admin", ADMIN_PASSWORD))[0] == 200
    assert call(fake.url + "/v2/", token_for(fake, "dev"))[0] == 200
    assert call(fake.url + "/v2/", token_for(fake))[0] == 200
    for headers in ({}, basic("dev", "wrong-Password-1"), {"Authorization": "Bearer made-up"}):
        status, answer, _ = call(fake.url + "/v2/", headers)
        assert status == 401, headers
        assert answer["Www-Authenticate"].startswith('Bearer realm="http://')


# -- repositories and artifacts ---------------------------------------------------------------

DOCKER_IMAGE = "application/vnd.docker.container.image.v1+json"


def image(media_type, config_size, *layer_sizes):
    config_type = (DOCKER_IMAGE if "docker" in media_type
                   else "application/vnd.oci.image.config.v1+json")
    return {"schemaVersion": 2, "mediaType": media_type,
            "config": {"mediaType": config_type, "size": config_size,
                       "digest": "sha256:" + "c" * 64},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "size": size, "digest": "sha256:" + f"{i}" * 64}
                       for i, size in enumerate(layer_sizes)]}


def api(fake, path, user=None, query=""):
    status, headers, body = call(f"{fake.url}/api/v2.0{path}{query}",
                                 basic(*user) if isinstance(user, tuple)
                                 else basic(user) if user else {})
    return status, headers, json.loads(body) if body else None


def test_repositories_of_a_project_page_by_page(fake, registry):
    for name in ("priv/c", "priv/a", "priv/b/nested", "pub/tools", "privy/x"):
        registry.put(name, "1", fake_server.DOCKER_MANIFEST, image(fake_server.DOCKER_MANIFEST,
                                                                   10, 20))
    registry.put("priv/a", "2", fake_server.OCI_MANIFEST, image(fake_server.OCI_MANIFEST, 5, 6))
    registry.put("priv/a", "same-as-2", fake_server.OCI_MANIFEST,
                 image(fake_server.OCI_MANIFEST, 5, 6))

    status, headers, page = api(fake, "/projects/priv/repositories", "dev", "?page_size=2")
    assert status == 200
    assert [repo["name"] for repo in page] == ["priv/a", "priv/b/nested"]
    assert headers["X-Total-Count"] == "3"
    assert 'rel="next"' in headers["Link"] and "page=2" in headers["Link"]
    assert page[0]["artifact_count"] == 2  # tags 2 and same-as-2 are one artifact
    assert all(repo["project_id"] == 2 and repo["id"] for repo in page)
    assert {"creation_time", "update_time", "pull_count"} <= set(page[0])
    status, headers, rest = api(fake, "/projects/priv/repositories", "dev",
                                "?page=2&page_size=2")
    assert [repo["name"] for repo in rest] == ["priv/c"]
    assert "next" not in headers.get("Link", "")
    status, _, found = api(fake, "/projects/priv/repositories", "root", "?q=name%3D~nest")
    assert [repo["name"] for repo in found] == ["priv/b/nested"]

    # a public project is open to anyone, a private one only to members and system admins
    assert [r["name"] for r in api(fake, "/projects/pub/repositories")[2]] == ["pub/tools"]
    assert api(fake, "/projects/priv/repositories")[0] == 401
    assert api(fake, "/projects/priv/repositories", "outsider")[0] == 403
    assert api(fake, "/projects/priv/repositories", "limited")[0] == 200
    assert api(fake, "/projects/nosuch/repositories", "dev")[0] == 403
    assert api(fake, "/projects/nosuch/repositories", "root")[0] == 404


def test_artifacts_of_a_repository(fake, registry):
    manifest = image(fake_server.DOCKER_MANIFEST, 1000, 200, 30)
    digest, length = registry.put("priv/app", "1.0", fake_server.DOCKER_MANIFEST, manifest)
    registry.put("priv/app", "latest", fake_server.DOCKER_MANIFEST, manifest)
    amd, _ = registry.put("priv/app", None, fake_server.OCI_MANIFEST,
                          image(fake_server.OCI_MANIFEST, 1, 2))
    index = {"schemaVersion": 2, "mediaType": fake_server.OCI_INDEX, "manifests": [
        {"mediaType": fake_server.OCI_MANIFEST, "digest": amd, "size": 321,
         "platform": {"os": "linux", "architecture": "amd64"}},
        {"mediaType": fake_server.OCI_MANIFEST, "digest": "sha256:" + "e" * 64, "size": 7,
         "platform": {"os": "unknown", "architecture": "unknown"}}]}
    index_digest, index_length = registry.put("priv/app", "multi", fake_server.OCI_INDEX, index)

    status, headers, artifacts = api(fake, "/projects/priv/repositories/app/artifacts", "guest",
                                     "?page_size=30&with_tag=true&with_scan_overview=false")
    assert status == 200 and headers["X-Total-Count"] == "2"
    first, multi = artifacts
    assert first["digest"] == digest
    assert first["manifest_media_type"] == fake_server.DOCKER_MANIFEST
    assert first["media_type"] == DOCKER_IMAGE
    assert first["type"] == "IMAGE"
    assert first["size"] == length + 1000 + 200 + 30
    assert [tag["name"] for tag in first["tags"]] == ["1.0", "latest"]
    assert first["references"] is None and first["push_time"]
    assert multi["digest"] == index_digest
    assert multi["manifest_media_type"] == multi["media_type"] == fake_server.OCI_INDEX
    assert multi["size"] == index_length + 321 + 7
    assert [(ref["child_digest"], ref["platform"]) for ref in multi["references"]] == [
        (amd, {"os": "linux", "architecture": "amd64"}),
        ("sha256:" + "e" * 64, {"os": "unknown", "architecture": "unknown"})]

    # the same artifact by tag and by digest, with stable IDs
    status, _, by_tag = api(fake, "/projects/priv/repositories/app/artifacts/latest", "dev")
    assert status == 200 and by_tag == first
    status, _, by_digest = api(fake, f"/projects/priv/repositories/app/artifacts/{digest}", "dev")
    assert status == 200 and by_digest == first
    # an untagged artifact has tags null, as has every artifact without with_tag
    status, _, untagged = api(fake, f"/projects/priv/repositories/app/artifacts/{amd}", "dev")
    assert status == 200 and untagged["tags"] is None
    status, _, bare = api(fake, "/projects/priv/repositories/app/artifacts", "dev",
                          "?with_tag=false")
    assert [artifact["tags"] for artifact in bare] == [None, None]

    assert api(fake, "/projects/priv/repositories/app/artifacts/nosuch", "dev")[0] == 404
    assert api(fake, "/projects/priv/repositories/app/artifacts/sha256:12", "dev")[0] == 400
    assert api(fake, "/projects/priv/repositories/gone/artifacts", "dev")[2] == []
    assert api(fake, "/projects/priv/repositories/app/artifacts", "outsider")[0] == 403
    assert api(fake, "/projects/priv/repositories/app/artifacts/1.0")[0] == 401


def test_nested_repository_names_are_decoded_once_or_twice(fake, registry):
    digest, _ = registry.put("pub/team/tool", "v1", fake_server.DOCKER_MANIFEST,
                             image(fake_server.DOCKER_MANIFEST, 1, 1))
    for encoded in ("team%252Ftool", "team%2Ftool"):
        status, _, found = api(fake, f"/projects/pub/repositories/{encoded}/artifacts/v1")
        assert status == 200, encoded
        assert found["digest"] == digest and found["repository_name"] == "pub/team/tool"
        status, _, listed = api(fake, f"/projects/pub/repositories/{encoded}/artifacts")
        assert [artifact["digest"] for artifact in listed] == [digest]


def test_undeclared_parameters_are_refused(fake):
    status, _, body = api(fake, "/projects/pub/repositories/x/artifacts", None, "?with_tags=1")
    assert status == 400 and "with_tags" in body["errors"][0]["message"]
    fake.violations.clear()


def test_without_a_registry_there_are_no_repositories():
    with fake_server.FakeHarbor(admin_password=ADMIN_PASSWORD) as run:
        status, headers, body = api(run, "/projects/library/repositories")
        assert (status, body, headers["X-Total-Count"]) == (200, [], "0")
        assert api(run, "/projects/library/repositories/x/artifacts")[2] == []
        assert api(run, "/projects/library/repositories/x/artifacts/1")[0] == 404
        assert run.violations == []
