"""The Harbor fake's answers to `docker login` (registry base /v2/ and token service).

The test-bed Harbor stand-in runs this fake, and the harbor role's `login` entry point and the
Molecule checks log Docker in to it, so the token flow must behave as Harbor's does: a Bearer
challenge that names the token service, a token for good credentials, 401 for wrong ones.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "AdminPw-Harbor-1234"


def _load_fake():
    spec = importlib.util.spec_from_file_location(
        "harbor_fake_server_login", ROOT / "tests" / "fakes" / "harbor" / "server.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


fake_server = _load_fake()


def get(url, headers=None, method="GET"):
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture()
def fake():
    with fake_server.FakeHarbor(admin_password=PASSWORD) as running:
        yield running


def test_registry_base_challenges_for_a_bearer_token(fake):
    status, headers, body = get(fake.url + "/v2/")
    assert status == 401
    challenge = headers["Www-Authenticate"]
    host = fake.url.split("://", 1)[1]
    assert challenge == f'Bearer realm="http://{host}/service/token",service="harbor-registry"'
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"


def test_token_for_good_credentials_opens_the_registry(fake):
    status, _, body = get(fake.url + "/service/token?service=harbor-registry&account=admin",
                          basic("admin", PASSWORD))
    assert status == 200
    token = json.loads(body)
    assert token["token"] == token["access_token"] and token["expires_in"] > 0
    status, _, _ = get(fake.url + "/v2/", {"Authorization": f"Bearer {token['token']}"})
    assert status == 200


def test_wrong_credentials_get_no_token(fake):
    status, _, body = get(fake.url + "/service/token?service=harbor-registry",
                          basic("admin", PASSWORD + "x"))
    assert status == 401
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"


def test_made_up_token_is_refused(fake):
    status, _, _ = get(fake.url + "/v2/", {"Authorization": "Bearer made-up"})
    assert status == 401


def test_only_reading_methods_are_allowed(fake):
    status, _, _ = get(fake.url + "/v2/", method="DELETE")
    assert status == 405


def test_state_file_keeps_users_across_a_restart():
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state.json"
        with fake_server.FakeHarbor(admin_password=PASSWORD, state_file=state) as first:
            first.state.users[1]["comment"] = "kept"
            first.state.save()
        # The admin password given to a restarted fake is ignored, as by Harbor.
        with fake_server.FakeHarbor(admin_password="Other-Pw-1234", state_file=state) as second:
            status, _, body = get(second.url + "/api/v2.0/users/current",
                                  basic("admin", PASSWORD))
            assert status == 200, body
            assert json.loads(body)["comment"] == "kept"
