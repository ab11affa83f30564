#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Manage a local user of Harbor."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: harbor_user
short_description: Manage a local Harbor user (profile, password, system administrator flag)
version_added: "0.1.0"
description:
  - Creates, updates or removes a user of Harbor's local user database through Harbor's v2.0
    REST API, for example the C(bai) user whose credentials the Backend.AI manager and agents
    use to pull and push images.
  - The module reads the user first and sends only what differs; the user's email, real name
    and comment are changed with one profile update, the system administrator flag and the
    password with their own requests.
  - Harbor never shows a password. With O(update_password=always) the module tries to log in
    as the user with O(password) (C(GET /api/v2.0/users/current)); only if Harbor refuses the
    login is the password set, so a second run reports no change.
  - Removing a user is what Harbor calls marking it removed; the name becomes free for a new
    user and the user's project memberships lose their effect.
author:
  - backendai.cluster maintainers
options:
  username:
    description:
      - Login name of the user, 1 to 255 characters. Harbor refuses the comma, the double
        quote and the characters C(~), C(#), C(%) and C($).
    type: str
    required: true
    aliases: [name]
  email:
    description:
      - Email address. Harbor requires one for every local user, and it must be unique.
      - Required to create the user; left as it is when omitted for an existing user.
    type: str
  realname:
    description:
      - Full name (1 to 255 characters). Defaults to O(username) when the user is created;
        left as it is when omitted for an existing user.
    type: str
  comment:
    description:
      - Free text of at most 30 characters (Harbor's limit). Left as it is when omitted.
    type: str
  password:
    description:
      - Password of the user; required to create it. Harbor demands 8 to 128 characters with
        at least one uppercase letter, one lowercase letter and one digit, and the module
        checks this before it sends anything.
      - Never logged, returned or shown in a diff.
    type: str
  update_password:
    description:
      - V(on_create) sets O(password) only when the user is created.
      - V(always) also makes an existing user's password O(password). The module logs in as
        the user to find out whether the password is already right and changes it only if
        not (Harbor refuses to "change" a password to the same value anyway). In check mode
        that login attempt is made too, as it changes nothing.
    type: str
    choices: [on_create, always]
    default: on_create
  sysadmin:
    description:
      - Whether the user is a Harbor system administrator. Left as it is when omitted (a new
        user is then an ordinary user).
    type: bool
  state:
    description:
      - V(present) creates or updates the user; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - backendai.cluster.harbor
  - backendai.cluster.harbor.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - ansible.builtin.action_common_attributes.actiongroups
attributes:
  check_mode:
    support: full
    details: Only reading requests are sent (with O(update_password=always), the login attempt
      as the user).
  diff_mode:
    support: full
    details: Shows email, real name, comment and the administrator flag before and after; a
      password change shows as a masked C(password) entry that changes, never the password
      itself.
  idempotent:
    details: With O(update_password=always) this relies on the login check described above.
notes:
  - A failed login makes Harbor lock that user name for 1.5 seconds. When O(update_password=always)
    finds the password wrong it sets it right away (as the administrator, who is not locked), but
    a login as the user in the same instant may still be refused; the module itself does not
    log in as the user again.
  - Harbor must use its local database for authentication (C(auth_mode=db_auth), the default);
    with LDAP or OIDC Harbor refuses to create local users.
seealso:
  - module: backendai.cluster.harbor_project
  - module: backendai.cluster.harbor_project_member
"""

EXAMPLES = r"""
- name: Harbor user for Backend.AI (the guide's HARBOR_BAI_USERNAME)
  backendai.cluster.harbor_user:
    harbor_url: "http://{{ bai_registry_address }}:{{ bai_harbor_port }}"
    harbor_username: admin
    harbor_password: "{{ bai_harbor_admin_password }}"
    username: "{{ bai_harbor_username }}"
    email: "{{ bai_harbor_username }}@example.com"
    realname: Backend.AI
    comment: Backend.AI image registry user
    password: "{{ bai_harbor_bai_password }}"
    update_password: always

- name: The same with the connection options from module_defaults
  module_defaults:
    group/backendai.cluster.harbor:
      harbor_url: "http://{{ bai_registry_address }}:{{ bai_harbor_port }}"
      harbor_password: "{{ bai_harbor_admin_password }}"
  block:
    - name: Make bai a Harbor system administrator
      backendai.cluster.harbor_user:
        username: bai
        sysadmin: true

    - name: Remove an old user
      backendai.cluster.harbor_user:
        username: olduser
        state: absent
"""

RETURN = r"""
changed:
  description: Whether the user was (or, in check mode, would be) created, changed or removed.
  returned: always
  type: bool
user:
  description: The user as Harbor reports it after the run (before it, for V(absent)); empty
    when there is no such user. Secrets (the password, an OIDC CLI secret) are never included.
    In check mode the values are the expected ones.
  returned: always
  type: dict
  contains:
    user_id:
      description: Harbor's ID of the user (null for a user only created in check mode).
      type: int
      sample: 3
    username:
      description: Login name.
      type: str
      sample: bai
    email:
      description: Email address.
      type: str
      sample: bai@example.com
    realname:
      description: Full name.
      type: str
      sample: Backend.AI
    comment:
      description: Comment.
      type: str
      sample: Backend.AI image registry user
    sysadmin_flag:
      description: Whether the user is a Harbor system administrator.
      type: bool
      sample: false
    creation_time:
      description: When Harbor created the user.
      type: str
      sample: "2026-01-31T10:00:00.000Z"
    update_time:
      description: When Harbor last changed the user.
      type: str
      sample: "2026-01-31T10:00:00.000Z"
  sample:
    user_id: 3
    username: bai
    email: bai@example.com
    realname: Backend.AI
    comment: ""
    sysadmin_flag: false
password_changed:
  description: Whether the password was (or would be) set, on creation or by
    O(update_password=always).
  returned: always
  type: bool
  sample: false
"""

import re  # noqa: E402 - the documentation strings come first in Ansible modules

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils._harbor import (  # noqa: E402
    COMPLEXITY_RULE,
    HarborError,
    connect,
    fail,
    harbor_argument_spec,
    location_id,
    make_diff,
    password_is_acceptable,
)

ILLEGAL_NAME_CHARS = ',"~#%$'
PUBLIC_FIELDS = (
    "user_id", "username", "email", "realname", "comment", "sysadmin_flag", "creation_time",
    "update_time",
)
DIFF_KEYS = ("username", "email", "realname", "comment", "sysadmin", "password")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)*\.[A-Za-z]{2,}$")


def public_user(user):
    """The user's fields that may be returned (no secrets)."""
    return {key: user.get(key) for key in PUBLIC_FIELDS if key in user} if user else {}


def diff_view(user):
    if not user:
        return {}
    view = {key: user.get(key) for key in ("username", "email", "realname", "comment")}
    view["sysadmin"] = bool(user.get("sysadmin_flag"))
    return view


def validate(module):
    """Refuse input Harbor would refuse, before any request (also in check mode)."""
    p = module.params
    name = p["username"]
    if not name or len(name) > 255:
        module.fail_json(msg="username must be 1 to 255 characters long")
    bad = sorted(set(name) & set(ILLEGAL_NAME_CHARS))
    if bad:
        module.fail_json(
            msg=f"username {name!r} contains characters Harbor does not allow: {' '.join(bad)}"
        )
    if p["state"] == "absent":
        return
    if p["email"] is not None and (len(p["email"]) > 255 or not _EMAIL.match(p["email"])):
        module.fail_json(msg=f"email {p['email']!r} is not an email address Harbor accepts")
    if p["realname"] is not None:
        if not 1 <= len(p["realname"]) <= 255:
            module.fail_json(msg="realname must be 1 to 255 characters long")
        bad = sorted(set(p["realname"]) & set(ILLEGAL_NAME_CHARS))
        if bad:
            module.fail_json(
                msg=f"realname contains characters Harbor does not allow: {' '.join(bad)}"
            )
    if p["comment"] is not None and len(p["comment"]) > 30:
        module.fail_json(msg=f"comment is {len(p['comment'])} characters long; Harbor allows 30")
    if p["password"] is not None and not password_is_acceptable(p["password"]):
        module.fail_json(msg=f"password does not meet Harbor's rule: {COMPLEXITY_RULE}")


def create_user(module, client):
    p = module.params
    if p["password"] is None:
        module.fail_json(msg=f"password is required to create the Harbor user {p['username']!r}")
    if p["email"] is None:
        module.fail_json(msg=f"email is required to create the Harbor user {p['username']!r}")
    body = {
        "username": p["username"],
        "email": p["email"],
        "realname": p["realname"] if p["realname"] is not None else p["username"],
        "comment": p["comment"] or "",
        "password": p["password"],
    }
    expected = {key: body[key] for key in ("username", "email", "realname", "comment")}
    expected.update(user_id=None, sysadmin_flag=bool(p["sysadmin"]))
    if module.check_mode:
        return expected
    response = client.call("POST", "/users", body=body)
    user_id = location_id(response.header("Location"))
    if user_id is None:
        found = client.find_user(p["username"])
        user_id = found and found.get("user_id")
    if user_id is None:
        module.fail_json(msg=f"Harbor created {p['username']!r} but does not tell its ID")
    if p["sysadmin"]:
        client.call("PUT", f"/users/{user_id}/sysadmin", body={"sysadmin_flag": True})
    return client.get(f"/users/{user_id}")


def update_user(module, client, user):
    """Returns (user after, changed, password_changed)."""
    p = module.params
    user_id = user["user_id"]
    after = dict(user)
    changed = False

    wanted = {key: p[key] for key in ("email", "realname", "comment") if p[key] is not None}
    if any(user.get(key) != value for key, value in wanted.items()):
        # Harbor validates all three fields on every profile update, so all three are sent.
        profile = {key: user.get(key) or "" for key in ("email", "realname", "comment")}
        profile.update(wanted)
        if not module.check_mode:
            client.call("PUT", f"/users/{user_id}", body=profile)
        after.update(profile)
        changed = True

    if p["sysadmin"] is not None and bool(user.get("sysadmin_flag")) != p["sysadmin"]:
        if not module.check_mode:
            client.call("PUT", f"/users/{user_id}/sysadmin", body={"sysadmin_flag": p["sysadmin"]})
        after["sysadmin_flag"] = p["sysadmin"]
        changed = True

    password_changed = False
    if p["update_password"] == "always" and p["password"] is not None:  # noqa: S105
        own = p["username"] == client.username
        # The module's own user is known to log in with harbor_password; a failed login
        # attempt would make Harbor lock that name (and so the next request) for 1.5 s.
        same = p["password"] == client.password if own else client.can_login(
            p["username"], p["password"]
        )
        if not same:
            if not module.check_mode:
                body = {"new_password": p["password"]}
                if own:
                    body["old_password"] = client.password  # Harbor wants it from users
                client.call("PUT", f"/users/{user_id}/password", body=body)
            password_changed = changed = True

    if changed and not module.check_mode:
        after = client.get(f"/users/{user_id}")
    return after, changed, password_changed


def main():
    module = AnsibleModule(
        argument_spec=harbor_argument_spec(
            username=dict(type="str", required=True, aliases=["name"]),
            email=dict(type="str"),
            realname=dict(type="str"),
            comment=dict(type="str"),
            password=dict(type="str", no_log=True),
            update_password=dict(
                type="str", choices=["on_create", "always"], default="on_create", no_log=False
            ),
            sysadmin=dict(type="bool"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    validate(module)
    client = connect(module)
    client.add_secret(module.params["password"])
    name = module.params["username"]
    result = dict(changed=False, password_changed=False, user={})

    try:
        user = client.find_user(name)
        if module.params["state"] == "absent":
            if user:
                if not module.check_mode:
                    client.call("DELETE", f"/users/{user['user_id']}")
                result["changed"] = True
            result["user"] = public_user(user)
            before, after = diff_view(user), {}
        elif user is None:
            created = create_user(module, client)
            result.update(changed=True, password_changed=True, user=public_user(created))
            before, after = {}, diff_view(created)
        else:
            updated, changed, password_changed = update_user(module, client, user)
            result.update(
                changed=changed, password_changed=password_changed, user=public_user(updated)
            )
            before, after = diff_view(user), diff_view(updated)
            if password_changed:
                before["password"], after["password"] = "********", "******** (changed)"
    except HarborError as exc:
        fail(module, exc)

    if module._diff:
        result["diff"] = make_diff(before, after, DIFF_KEYS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
