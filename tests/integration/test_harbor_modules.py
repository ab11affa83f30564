"""Integration tests of harbor_user, harbor_project and harbor_project_member.

Each test starts the Harbor fake (tests/fakes/harbor) on a free 127.0.0.1 port. The fake checks
every request against our description of Harbor's API and refuses what does not match it. The
modules run through the ``ansible`` and ``ansible-playbook`` commands next to this Python, from
the repository root with its ansible.cfg, exactly as a playbook would use them; the fake's state
is then inspected directly.

Needs no container and no network beyond the loopback interface.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import modrun
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / ".collections"))
sys.path.insert(0, str(ROOT))

from ansible_collections.backendai.cluster.plugins.module_utils import (  # noqa: E402
    _harbor as harbor,
)

from tests.fakes.harbor.testing import basic, call, load_server  # noqa: E402

fake_server = load_server("harbor_fake_server")

ADMIN_PASSWORD = "AdminPw-Harbor-1234"
BAI_PASSWORD = "BaiPw-Harbor-5678"
BAI_PASSWORD_2 = "BaiPw-Harbor-9999"
SECRETS = [ADMIN_PASSWORD, BAI_PASSWORD, BAI_PASSWORD_2]

ENV = dict(
    os.environ,
    PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    ANSIBLE_NOCOLOR="1",
    ANSIBLE_RETRY_FILES_ENABLED="0",
)
for _name in ("HARBOR_URL", "HARBOR_USERNAME", "HARBOR_PASSWORD"):
    ENV.pop(_name, None)


@pytest.fixture
def fake():
    with fake_server.FakeHarbor(admin_password=ADMIN_PASSWORD) as running:
        yield running
        assert running.violations == [], "requests or answers off the API description"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_clean(text):
    assert "Traceback (most recent call last)" not in text
    for secret in SECRETS:
        assert secret not in text, "a password leaked into the output"


def run_module(module, url, args, check=False, diff=True, admin_password=ADMIN_PASSWORD,
               expect_failure=False, via_cli=False):
    """Run one module; return (rc, task result, whole output).

    The module file runs directly (fast); ``via_cli=True`` goes through the ``ansible`` CLI,
    which the first check/apply test of every module does.
    """
    params = {"harbor_url": url, "harbor_password": admin_password}
    params.update(args)
    rc, result, output = modrun.run_module(f"backendai.cluster.{module}", params, check=check,
                                           diff=diff, via_cli=via_cli)
    assert_clean(output)
    if result is None:
        raise AssertionError(f"no JSON result from {module} (rc={rc}):\n{output}")
    if expect_failure:
        assert rc != 0, result
        assert result.get("failed"), result
    else:
        assert rc == 0, f"{module} failed: {result.get('msg')}\n{output[-3000:]}"
    return rc, result, output


def run_tasks(url, runs, ignore_errors=False):
    """Run several module invocations, given as (module, args, check mode), in one playbook.

    Returns the task results in order. One ansible-playbook process is much faster than one
    ``ansible`` process per run.
    """
    tasks = []
    for index, (module, args, check) in enumerate(runs):
        params = {"harbor_url": url, "harbor_password": ADMIN_PASSWORD}
        params.update(args)
        tasks.append({"name": f"run {index}", f"backendai.cluster.{module}": params,
                      "check_mode": check, "diff": True, "ignore_errors": ignore_errors})
    play = [{"name": "runs", "hosts": "localhost", "connection": "local",
             "gather_facts": False, "tasks": tasks}]
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "runs.yml"
        playbook.write_text(json.dumps(play))  # JSON is YAML
        argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
                "-e", f"ansible_python_interpreter={sys.executable}"]
        env = dict(ENV, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
    output = proc.stdout + proc.stderr
    assert_clean(output)
    assert proc.returncode == 0, output[-3000:]
    start = re.search(r"^\{", proc.stdout, re.M).start()
    document = json.JSONDecoder().raw_decode(proc.stdout[start:])[0]
    return [task["hosts"]["localhost"] for task in document["plays"][0]["tasks"]]


def runs_of(module, args, checks):
    return [(module, args, check) for check in checks]


def pattern(module, url, args):
    """check -> apply -> check -> apply; returns the four results.

    A first check run that wrote anything would make the apply run report no change.
    """
    return run_tasks(url, runs_of(module, args, (True, False, True, False)))


def http(fake, method, path, body=None, auth=("admin", ADMIN_PASSWORD), headers=None, raw=None):
    """A raw request to the fake: (status, headers, decoded body)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = dict(basic(*auth)) if auth else {}
    if data is not None:
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    status, answer_headers, text = call(fake.url + path, sent, method=method, data=data)
    text = text.decode()
    try:
        decoded = json.loads(text) if text else None
    except ValueError:
        decoded = text
    return status, answer_headers, decoded


def add_user(fake, name, password=BAI_PASSWORD, email=None):
    status, headers, _ = http(fake, "POST", "/api/v2.0/users", {
        "username": name, "email": email or f"{name}@example.com", "realname": name,
        "password": password,
    })
    assert status == 201
    return int(headers["Location"].rsplit("/", 1)[1])


def add_project(fake, name, public=False):
    status, _, _ = http(fake, "POST", "/api/v2.0/projects", {
        "project_name": name, "metadata": {"public": "true" if public else "false"},
    })
    assert status == 201


# ---------------------------------------------------------------------------------------------
# harbor_user
# ---------------------------------------------------------------------------------------------

BAI_USER = {
    "username": "bai", "email": "bai@example.com", "realname": "Backend.AI",
    "comment": "image registry user", "password": BAI_PASSWORD,
}


def test_user_check_apply_check_apply(fake):
    first_check = run_module("harbor_user", fake.url, BAI_USER, check=True)[1]
    assert first_check["changed"] is True
    assert fake.state.user_by_name("bai") is None, "check mode created the user"
    assert first_check["diff"]["before"] == {}
    assert first_check["diff"]["after"]["email"] == "bai@example.com"

    later = run_tasks(fake.url, runs_of("harbor_user", BAI_USER, (False, True, False)))
    results = [first_check, *later]
    assert [r["changed"] for r in results] == [True, True, False, False]
    user = fake.state.user_by_name("bai")
    assert user["email"] == "bai@example.com"
    assert user["realname"] == "Backend.AI"
    assert user["comment"] == "image registry user"
    assert user["sysadmin_flag"] is False
    assert fake.state.authenticate("bai", BAI_PASSWORD) is not None
    assert results[1]["user"]["user_id"] == user["user_id"]
    assert results[1]["password_changed"] is True
    assert results[3]["password_changed"] is False
    assert "password" not in results[1]["user"]


def test_user_update_password_on_create_and_always(fake):
    other = dict(BAI_USER, password=BAI_PASSWORD_2)
    always = dict(other, update_password="always")
    results = run_tasks(fake.url, [
        ("harbor_user", BAI_USER, False),   # create with the first password
        ("harbor_user", other, False),      # on_create: the new password is ignored
        ("harbor_user", always, True),      # always, check mode: would change it
        ("harbor_user", always, False),     # always: changes it
        ("harbor_user", always, False),     # always: already right
        ("harbor_user", always, True),      # always, check mode: already right
        # the module's own user: compared with harbor_password, no login attempt
        ("harbor_user", {"username": "admin", "password": ADMIN_PASSWORD,
                         "update_password": "always"}, False),
    ])
    # A run that had wrongly changed the password would make the next one report no change.
    assert [r["changed"] for r in results] == [True, False, True, True, False, False, False]
    assert [r["password_changed"] for r in results] == [
        True, False, True, True, False, False, False]
    check = results[2]
    assert check["diff"]["after"]["password"] != check["diff"]["before"]["password"]
    assert "password" not in results[1]["diff"]["after"]
    assert fake.state.authenticate("bai", BAI_PASSWORD_2) is not None
    assert fake.state.authenticate("bai", BAI_PASSWORD) is None


def test_check_mode_keeps_the_old_password(fake):
    add_user(fake, "bai", password=BAI_PASSWORD)
    always = dict(BAI_USER, password=BAI_PASSWORD_2, update_password="always")
    result = run_module("harbor_user", fake.url, always, check=True)[1]
    assert result["changed"] is True and result["password_changed"] is True
    assert fake.state.authenticate("bai", BAI_PASSWORD) is not None


def test_user_profile_and_sysadmin(fake):
    change = {"username": "bai", "email": "bai@cluster.example.com", "sysadmin": True}
    results = run_tasks(fake.url, [("harbor_user", BAI_USER, False),
                                   *runs_of("harbor_user", change, (True, False, True, False))])
    assert [r["changed"] for r in results] == [True, True, True, False, False]
    diff = results[1]["diff"]
    assert diff["before"]["email"] == "bai@example.com"
    assert diff["after"]["email"] == "bai@cluster.example.com"
    assert diff["before"]["sysadmin"] is False and diff["after"]["sysadmin"] is True
    user = fake.state.user_by_name("bai")
    assert user["email"] == "bai@cluster.example.com"
    assert user["realname"] == "Backend.AI", "fields not given must stay"
    assert user["sysadmin_flag"] is True
    assert results[2]["user"]["sysadmin_flag"] is True


def test_user_absent(fake):
    add_user(fake, "olduser")
    absent = {"username": "olduser", "state": "absent"}
    results = pattern("harbor_user", fake.url, absent)
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert results[0]["diff"]["after"] == {}
    assert fake.state.user_by_name("olduser") is None


def test_user_create_needs_password_and_email(fake):
    _, result, _ = run_module("harbor_user", fake.url, {"username": "nopw",
                                                         "email": "n@example.com"},
                              expect_failure=True)
    assert "password is required" in result["msg"]
    _, result, _ = run_module("harbor_user", fake.url, {"username": "nomail",
                                                         "password": BAI_PASSWORD},
                              expect_failure=True)
    assert "email is required" in result["msg"]
    assert fake.state.user_by_name("nopw") is None


def test_user_email_conflict_is_reported(fake):
    add_user(fake, "first", email="shared@example.com")
    _, result, _ = run_module(
        "harbor_user", fake.url,
        {"username": "second", "email": "shared@example.com", "password": BAI_PASSWORD},
        expect_failure=True,
    )
    assert result["status"] == 409
    assert "conflict" in result["msg"] and "already exists" in result["msg"]


# ---------------------------------------------------------------------------------------------
# harbor_project
# ---------------------------------------------------------------------------------------------


def test_public_project_check_apply_check_apply(fake):
    args = {"name": "bai", "public": True, "storage_limit": -1}
    results = pattern("harbor_project", fake.url, args)
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert results[0]["diff"]["before"] == {}
    project = fake.state.project_by_name("bai")
    assert project["metadata"]["public"] == "true"
    assert fake.state.quota_of(project["project_id"])["hard"]["storage"] == -1
    assert results[1]["project"]["public"] is True
    assert results[1]["project"]["storage_limit"] == -1


def test_private_project_with_quota_and_metadata(fake):
    limit = 500 * 1024 ** 3
    args = {"name": "bai-user", "public": False, "storage_limit": limit,
            "metadata": {"auto_scan": True, "severity": "high"}}
    check = run_module("harbor_project", fake.url, args, check=True)[1]
    assert check["changed"] is True
    assert fake.state.project_by_name("bai-user") is None, "check mode created the project"
    results = [check, *run_tasks(fake.url, runs_of("harbor_project", args, (False, True, False)))]
    assert [r["changed"] for r in results] == [True, True, False, False]
    project = fake.state.project_by_name("bai-user")
    assert project["metadata"] == {"public": "false", "auto_scan": "true", "severity": "high"}
    assert fake.state.quota_of(project["project_id"])["hard"]["storage"] == limit
    assert results[3]["project"]["storage_limit"] == limit


def test_project_update_public_and_quota(fake):
    add_project(fake, "images", public=False)
    args = {"name": "images", "public": True, "storage_limit": 1024 ** 3}
    results = pattern("harbor_project", fake.url, args)
    assert [r["changed"] for r in results] == [True, True, False, False]
    diff = results[0]["diff"]
    assert diff["before"]["public"] is False and diff["after"]["public"] is True
    assert diff["before"]["storage_limit"] == -1 and diff["after"]["storage_limit"] == 1024 ** 3
    project = fake.state.project_by_name("images")
    assert project["metadata"]["public"] == "true"
    assert fake.state.quota_of(project["project_id"])["hard"]["storage"] == 1024 ** 3


def test_project_absent(fake):
    add_project(fake, "scratch")
    results = pattern("harbor_project", fake.url, {"name": "scratch", "state": "absent"})
    assert [r["changed"] for r in results] == [True, True, False, False]
    assert fake.state.project_by_name("scratch") is None


def test_project_with_repositories_cannot_be_deleted(fake):
    add_project(fake, "busy")
    fake.state.project_by_name("busy")["repo_count"] = 2
    _, result, _ = run_module("harbor_project", fake.url, {"name": "busy", "state": "absent"},
                              expect_failure=True)
    assert result["status"] == 412
    assert "contains repositories" in result["msg"]


# ---------------------------------------------------------------------------------------------
# harbor_project_member
# ---------------------------------------------------------------------------------------------


def member_role(fake, project, username):
    project_id = fake.state.project_by_name(project)["project_id"]
    user_id = fake.state.user_by_name(username)["user_id"]
    for member in fake.state.members_of(project_id):
        if member["entity_id"] == user_id:
            return fake_server.ROLES[member["role_id"]]
    return None


def test_member_check_apply_check_apply_and_role_change(fake):
    add_user(fake, "bai")
    add_project(fake, "bai-user")
    args = {"project": "bai-user", "username": "bai", "role": "developer"}
    check = run_module("harbor_project_member", fake.url, args, check=True)[1]
    assert check["changed"] is True
    assert member_role(fake, "bai-user", "bai") is None, "check mode added the member"

    promote = dict(args, role="maintainer")
    absent = {"project": "bai-user", "username": "bai", "state": "absent"}
    phases = (False, True, False), (True, False, True, False), (True, False, True, False)
    results = run_tasks(fake.url, [
        *runs_of("harbor_project_member", args, phases[0]),
        *runs_of("harbor_project_member", promote, phases[1]),
        *runs_of("harbor_project_member", absent, phases[2]),
    ])
    assert [r["changed"] for r in [check, *results]] == [True, True, False, False] * 3
    assert results[0]["member"]["role_name"] == "developer"
    assert results[0]["member"]["entity_name"] == "bai"
    assert results[3]["diff"] == {
        "before": {"project": "bai-user", "username": "bai", "role": "developer"},
        "after": {"project": "bai-user", "username": "bai", "role": "maintainer"},
    }
    assert results[4]["member"]["role_name"] == "maintainer"
    assert results[8]["diff"]["after"] == {}
    assert member_role(fake, "bai-user", "bai") is None


def test_member_role_is_kept(fake):
    add_user(fake, "bai")
    add_project(fake, "bai-user")
    run_module("harbor_project_member", fake.url,
               {"project": "bai-user", "username": "bai", "role": "developer"})
    assert member_role(fake, "bai-user", "bai") == "developer"


def test_member_among_many_members(fake):
    """The member list is paginated and filtered; Harbor counts all members in X-Total-Count."""
    add_project(fake, "crowd")
    for index in range(25):
        add_user(fake, f"user{index:02d}")
        status, _, _ = http(fake, "POST", "/api/v2.0/projects/crowd/members",
                            {"role_id": 3, "member_user": {"username": f"user{index:02d}"}},
                            headers={"X-Is-Resource-Name": "true"})
        assert status == 201
    args = {"project": "crowd", "username": "user17", "role": "guest"}
    assert run_module("harbor_project_member", fake.url, args)[1]["changed"] is False
    args["role"] = "developer"
    assert run_module("harbor_project_member", fake.url, args)[1]["changed"] is True
    assert member_role(fake, "crowd", "user17") == "developer"


def test_member_of_missing_project(fake):
    add_user(fake, "bai")
    args = {"project": "nothere", "username": "bai", "role": "developer"}
    _, result, _ = run_module("harbor_project_member", fake.url, args, expect_failure=True)
    assert "no project 'nothere'" in result["msg"]
    _, result, output = run_module("harbor_project_member", fake.url, args, check=True)
    assert result["changed"] is True
    assert "no project 'nothere'" in output  # the warning


def test_member_missing_user(fake):
    add_project(fake, "bai-user")
    args = {"project": "bai-user", "username": "ghost", "role": "developer"}
    _, result, _ = run_module("harbor_project_member", fake.url, args, expect_failure=True)
    assert "no user 'ghost'" in result["msg"]
    assert result["status"] == 404


# ---------------------------------------------------------------------------------------------
# The guide's setup as one playbook, with module_defaults and the action group
# ---------------------------------------------------------------------------------------------

GUIDE_PLAYBOOK = """
- name: Harbor for Backend.AI
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/backendai.cluster.harbor:
      harbor_url: "{{ harbor_url }}"
      harbor_username: admin
      harbor_password: "{{ admin_password }}"
  tasks:
    - name: User bai
      backendai.cluster.harbor_user:
        username: bai
        email: bai@example.com
        realname: Backend.AI
        password: "{{ bai_password }}"
        update_password: always
    - name: Public project for compute images
      backendai.cluster.harbor_project:
        name: bai
        public: true
    - name: Private project for user images
      backendai.cluster.harbor_project:
        name: bai-user
        public: false
    - name: bai is a developer of bai-user
      backendai.cluster.harbor_project_member:
        project: bai-user
        username: bai
        role: developer
"""

RECAP = re.compile(r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)",
                   re.M)


def test_guide_playbook(fake, tmp_path):
    playbook = tmp_path / "harbor.yml"
    playbook.write_text(GUIDE_PLAYBOOK)
    extra = json.dumps({"harbor_url": fake.url, "admin_password": ADMIN_PASSWORD,
                        "bai_password": BAI_PASSWORD,
                        "ansible_python_interpreter": sys.executable})
    changed = []
    for check in (True, False, True, False):
        argv = [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", extra]
        if check:
            argv.append("--check")
        proc = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True,
                              timeout=300)
        output = proc.stdout + proc.stderr
        assert_clean(output)
        assert proc.returncode == 0, output[-3000:]
        _ok, count, failed = RECAP.search(proc.stdout).groups()
        assert failed == "0"
        changed.append(int(count))
        if check and len(changed) == 1:
            assert fake.state.user_by_name("bai") is None
            assert fake.state.project_by_name("bai") is None
    assert changed == [4, 4, 0, 0]
    assert fake.state.project_by_name("bai")["metadata"]["public"] == "true"
    assert member_role(fake, "bai-user", "bai") == "developer"


# ---------------------------------------------------------------------------------------------
# Failures: a clear message, rc != 0, no traceback, no password
# ---------------------------------------------------------------------------------------------


def test_unreachable_url():
    url = f"http://127.0.0.1:{free_port()}"
    rc, result, _ = run_module("harbor_user", url, BAI_USER, expect_failure=True)
    assert rc != 0
    assert result["msg"].startswith(f"Cannot reach Harbor at {url}/api/v2.0")
    assert "refused" in result["msg"].lower()


def test_wrong_admin_password(fake):
    rc, result, _ = run_module("harbor_project", fake.url, {"name": "bai"},
                               admin_password="Wrong-Password-1", expect_failure=True)
    assert rc != 0
    assert result["status"] == 401
    assert "rejected the credentials of user 'admin'" in result["msg"]
    assert "harbor_password" in result["msg"]
    assert fake.state.project_by_name("bai") is None


def test_not_a_harbor(fake):
    """A URL that answers, but not as Harbor does (the fake's non-API path)."""
    _rc, result, _ = run_module("harbor_user", fake.url + "/elsewhere", BAI_USER,
                               expect_failure=True)
    assert result["status"] == 404


MALFORMED = [
    ("harbor_project", {"name": "Bad_Name!"}, "is not valid in Harbor"),
    ("harbor_project", {"name": "bai", "storage_limit": 0}, "storage_limit must be -1"),
    ("harbor_project", {"name": "bai", "metadata": {"color": "blue"}},
     "unknown metadata key 'color'"),
    ("harbor_project", {"name": "bai", "metadata": {"auto_scan": "maybe"}},
     "metadata.auto_scan must be true or false"),
    ("harbor_project", {"name": "bai", "metadata": {"public": True}},
     "not in metadata"),
    ("harbor_user", {"username": "bai", "email": "bai@example.com", "password": "weak"},
     "password does not meet Harbor's rule"),
    ("harbor_user", {"username": "b#i", "email": "bai@example.com"},
     "characters Harbor does not allow"),
    ("harbor_user", {"username": "bai", "email": "not-an-email"}, "is not an email address"),
    ("harbor_user", {"username": "bai", "comment": "x" * 31}, "Harbor allows 30"),
    ("harbor_user", {"username": "bai", "update_password": "sometimes"},
     "value of update_password must be one of"),
    ("harbor_project_member", {"project": "bai", "username": "bai", "role": "owner"},
     "value of role must be one of"),
    ("harbor_project_member", {"project": "bai", "username": "bai"},
     "state is present but all of the following are missing: role"),
    ("harbor_user", {"username": "bai", "harbor_url": "ftp://10.0.0.1"},
     "harbor_url must start with http:// or https://"),
    ("harbor_user", {"username": "bai", "harbor_url": "http://admin:pw@10.0.0.1"},
     "harbor_url must not contain credentials"),
    ("harbor_user", {"username": "bai", "timeout": 0}, "timeout must be a positive"),
    ("harbor_project", {"name": "bai", "storage_limit": "lots"}, "storage_limit"),
]


def test_malformed_input_is_refused_clearly(fake):
    runs = [(module, args, False) for module, args, _message in MALFORMED]
    results = run_tasks(fake.url, runs, ignore_errors=True)
    for (module, args, message), result in zip(MALFORMED, results):
        assert result.get("failed"), (module, args, result)
        assert message in result["msg"], (module, args, result["msg"])
    assert fake.state.user_by_name("bai") is None
    assert fake.state.project_by_name("bai") is None


def test_malformed_input_fails_the_command(fake):
    rc, result, _ = run_module("harbor_project", fake.url, {"name": "Bad_Name!"},
                               expect_failure=True)
    assert rc != 0
    assert "is not valid in Harbor" in result["msg"]


# ---------------------------------------------------------------------------------------------
# The client against the fake (pagination) and the fake itself
# ---------------------------------------------------------------------------------------------


def test_client_reads_all_pages(fake):
    for index in range(23):
        add_user(fake, f"page{index:02d}")
    client = harbor.HarborClient(fake.url, "admin", ADMIN_PASSWORD)
    users = client.get_all("/users", page_size=5, key="user_id")
    assert len(users) == 24  # with admin
    assert len({u["user_id"] for u in users}) == 24
    assert client.find_user("page17")["username"] == "page17"
    assert client.find_user("page") is None, "q=username= must be an exact match"
    status, headers, _ = http(fake, "GET", "/api/v2.0/users?page=2&page_size=5")
    assert status == 200 and headers["X-Total-Count"] == "24"
    links = harbor.parse_link_header(headers["Link"])
    assert set(links) == {"prev", "next"}
    assert "page=3" in links["next"] and "page=1" in links["prev"]


def test_fake_rejects_requests_off_the_description(fake):
    # an unknown field in a body
    status, _, body = http(fake, "POST", "/api/v2.0/users", {
        "username": "x1", "email": "x1@example.com", "realname": "x", "password": BAI_PASSWORD,
        "sysadmin_flag": True,
    })
    assert status == 400
    assert body["errors"][0]["code"] == "BAD_REQUEST"
    assert "sysadmin_flag" in body["errors"][0]["message"]
    # a wrong type
    status, _, body = http(fake, "PUT", "/api/v2.0/users/1/sysadmin", {"sysadmin_flag": "yes"})
    assert status == 400 and "'yes' is not of type 'boolean'" in body["errors"][0]["message"]
    # a page larger than Harbor allows, and an unknown query parameter
    assert http(fake, "GET", "/api/v2.0/users?page_size=500")[0] == 400
    assert http(fake, "GET", "/api/v2.0/users?user=admin")[0] == 400
    # a path parameter of the wrong type
    assert http(fake, "GET", "/api/v2.0/users/admin")[0] == 400
    # not JSON
    assert http(fake, "POST", "/api/v2.0/projects", raw=b"{not json")[0] == 400
    # no body where one is required
    assert http(fake, "POST", "/api/v2.0/projects")[0] == 400
    # an unknown endpoint and an unknown method, in Harbor's error shape
    status, _, body = http(fake, "GET", "/api/v2.0/nonsense")
    assert status == 404 and body["errors"][0]["code"] == "NOT_FOUND"
    status, _, body = http(fake, "DELETE", "/api/v2.0/users")
    assert status == 405 and body["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    assert fake.state.user_by_name("x1") is None
    assert len(fake.violations) == 7
    assert all(v["kind"] == "request" for v in fake.violations)
    fake.violations.clear()


def test_fake_without_strict_mode_only_logs():
    with fake_server.FakeHarbor(admin_password=ADMIN_PASSWORD, strict=False) as lenient:
        status, _, _ = http(lenient, "POST", "/api/v2.0/users", {
            "username": "x1", "email": "x1@example.com", "realname": "x",
            "password": BAI_PASSWORD, "unknown": 1,
        })
        assert status == 201
        assert lenient.violations and lenient.violations[0]["kind"] == "request"


def test_fake_answers_like_harbor(fake):
    status, headers, body = http(fake, "GET", "/api/v2.0/ping", auth=None)
    assert (status, body) == (200, "Pong")
    assert headers["X-Request-Id"]
    status, _, body = http(fake, "GET", "/api/v2.0/health", auth=None)
    assert body["status"] == "healthy" and {c["name"] for c in body["components"]} >= {
        "core", "database", "registry"}
    status, _, body = http(fake, "GET", "/api/v2.0/systeminfo", auth=None)
    assert status == 200 and body["auth_mode"] == "db_auth"
    status, headers, _ = http(fake, "GET", "/api/v2.0/users/current",
                              headers={"X-Request-Id": "req-42"}, auth=("admin", "nope"))
    assert status == 401 and headers["X-Request-Id"] == "req-42"
    user_id = add_user(fake, "bai")
    assert http(fake, "GET", "/api/v2.0/users/current", auth=("bai", BAI_PASSWORD))[0] == 200
    assert http(fake, "GET", "/api/v2.0/users", auth=("bai", BAI_PASSWORD))[0] == 403
    status, _, body = http(fake, "PUT", f"/api/v2.0/users/{user_id}/password",
                           {"new_password": BAI_PASSWORD})
    assert status == 400 and "identical" in body["errors"][0]["message"]
    status, headers, _ = http(fake, "POST", "/api/v2.0/projects",
                              {"project_name": "bai", "metadata": {"public": "true"}},
                              headers={"X-Resource-Name-In-Location": "true"})
    assert status == 201 and headers["Location"] == "/api/v2.0/projects/bai"
    assert http(fake, "POST", "/api/v2.0/projects", {"project_name": "bai"})[0] == 409
    assert http(fake, "HEAD", "/api/v2.0/projects?project_name=bai")[0] == 200
    assert http(fake, "HEAD", "/api/v2.0/projects?project_name=none")[0] == 404
    # a public project is readable without logging in, a private one is not
    assert http(fake, "GET", "/api/v2.0/projects/bai", auth=None)[0] == 200
    add_project(fake, "secret")
    assert http(fake, "GET", "/api/v2.0/projects/secret", auth=None)[0] == 401


def test_fake_keeps_state_in_a_file(tmp_path):
    state = tmp_path / "harbor-state.json"
    with fake_server.FakeHarbor(admin_password=ADMIN_PASSWORD, state_file=state) as first:
        add_user(first, "bai")
        add_project(first, "bai-user")
    assert BAI_PASSWORD not in state.read_text()
    assert ADMIN_PASSWORD not in state.read_text()
    # As with Harbor, the admin password given at a restart does not replace the stored one.
    with fake_server.FakeHarbor(admin_password="Other-Admin-1", state_file=state) as second:
        assert second.state.user_by_name("bai") is not None
        assert second.state.project_by_name("bai-user") is not None
        assert http(second, "GET", "/api/v2.0/users/current")[0] == 200


@pytest.mark.parametrize("how", ["script", "module"])
def test_fake_command_line(how):
    port = free_port()
    target = (["tests/fakes/harbor/server.py"] if how == "script"
              else ["-m", "tests.fakes.harbor"])
    proc = subprocess.Popen(
        [sys.executable, *target, "--host", "127.0.0.1", "--port", str(port),
         "--admin-password", ADMIN_PASSWORD],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v2.0/ping", timeout=2
                ) as response:
                    assert response.read() == b"Pong"
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0]
    assert proc.returncode == 0, output
    assert ADMIN_PASSWORD not in output
