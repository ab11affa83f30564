"""The Harbor fake's answers to `docker login` (registry base /v2/ and token service).

The test-bed Harbor stand-in runs this fake, and the harbor role's `login` entry point and the
Molecule checks log Docker in to it, so the token flow must behave as Harbor's does: a Bearer
challenge that names the token service, a token for good credentials, 401 for wrong ones.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fakes.harbor.testing import basic, load_server  # noqa: E402
from tests.fakes.harbor.testing import call as get  # noqa: E402

PASSWORD = "AdminPw-Harbor-1234"


fake_server = load_server("harbor_fake_server_login")


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
