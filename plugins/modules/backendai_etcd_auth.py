#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backendai_etcd_auth
short_description: Turn on etcd client authentication, with users limited to Backend.AI namespaces
version_added: "0.2.0"
description:
  - Creates etcd's C(root) user (with the C(root) role) and, for each entry of O(users), a user
    and a role of the same name whose only permission is the key range of the listed Backend.AI
    namespaces (C(/sorna/<namespace>/)), then turns client authentication on.
  - Talks to etcd's v3 JSON gateway with the Python standard library only, like
    M(backendai.cluster.backendai_etcd), so it works with the official etcd image, which has no
    shell to run C(etcdctl) in.
  - Passwords are compared by logging in as the user, which etcd only allows while
    authentication is on. While it is off, passwords of existing users are set again when
    O(state=enabled) (authentication is switched on in the same run, so later runs compare them);
    with O(state=disabled) they are not checked.
  - Roles of a listed user other than its own are left alone, and users and roles not listed
    are never touched.
author:
  - backendai.cluster contributors
extends_documentation_fragment:
  - backendai.cluster.etcd
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads etcd's users, roles and authentication state, reports what would change.
  diff_mode:
    support: full
    details: Shows the authentication state, the roles' key ranges and each user's roles;
      passwords are never shown, only that one would be set.
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
    details: While authentication is off and O(state=enabled) the first run sets the
      passwords and turns authentication on; from then on passwords are compared by logging in.
  platform:
    platforms: posix
options:
  root_password:
    description:
      - Password of etcd's C(root) user. Used to create the user, and to log in once
        authentication is on.
      - When authentication is on and etcd refuses this password, the module fails and changes
        nothing (the cluster was set up with another password).
    type: str
    required: true
  users:
    description: Users besides C(root), each with a role of its own name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User name, also the name of its role. Not V(root).
        type: str
        required: true
      password:
        description: The user's password.
        type: str
        required: true
      namespaces:
        description:
          - Backend.AI etcd namespaces (C([etcd] namespace) in manager.toml) the user may
            access. The role gets exactly the key ranges C(/sorna/<namespace>/) of this list;
            other permissions of that role are revoked.
        type: list
        elements: str
        default: []
      access:
        description: What the user may do in those namespaces.
        type: str
        choices: [read, readwrite]
        default: readwrite
  state:
    description:
      - V(enabled) creates the users and roles and turns authentication on.
      - V(disabled) creates the users and roles and turns authentication off.
    type: str
    choices: [enabled, disabled]
    default: enabled
notes:
  - Backend.AI's services keep their etcd connection; after authentication is turned on they
    need the user and password in their configuration and a restart.
seealso:
  - module: backendai.cluster.backendai_etcd
"""

EXAMPLES = r"""
- name: Turn on etcd authentication; Backend.AI's services log in as backendai
  backendai.cluster.backendai_etcd_auth:
    endpoints: http://10.20.30.10:8120
    root_password: "{{ bai_etcd_password }}"
    users:
      - name: backendai
        password: "{{ bai_etcd_backendai_password }}"
        namespaces: [local]
  no_log: true

- name: A read-only account for a monitoring script
  backendai.cluster.backendai_etcd_auth:
    endpoints: http://10.20.30.10:8120
    root_password: "{{ bai_etcd_password }}"
    users:
      - name: monitor
        password: "{{ monitor_etcd_password }}"
        namespaces: [local]
        access: read
  no_log: true
"""

RETURN = r"""
auth_enabled:
  description: Whether client authentication is (or, in check mode, would be) on afterwards.
  returned: always
  type: bool
  sample: true
users_added:
  description: Users that were or would be created (C(root) included).
  returned: always
  type: list
  elements: str
  sample: [root, backendai]
passwords_set:
  description: Existing users whose password was or would be set.
  returned: always
  type: list
  elements: str
  sample: []
roles_changed:
  description: Roles that were or would be created, or whose permissions changed.
  returned: always
  type: list
  elements: str
  sample: [backendai]
actions:
  description: The etcd requests made (or, in check mode, that would be made), without passwords.
  returned: always
  type: list
  elements: str
  sample:
    - add user backendai
    - grant role backendai readwrite /sorna/local/
    - enable authentication
"""

import base64

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backendai.cluster.plugins.module_utils._etcd import (
    ROOT,
    EtcdError,
    Gateway,
    b64e,
    etcd_argument_spec,
    range_end,
)

PERM_TYPES = {"read": "READ", "readwrite": "READWRITE"}


def _b64d(text):
    return base64.b64decode((text or "").encode("ascii")).decode("utf-8", "surrogateescape")


def namespace_range(namespace):
    prefix = "%s/%s/" % (ROOT, namespace)
    return prefix, range_end(prefix)


def desired_perms(user):
    kind = PERM_TYPES[user.get("access") or "readwrite"]
    return sorted((kind, *namespace_range(ns)) for ns in set(user.get("namespaces") or []))


def current_perms(answer):
    """(type, key, range_end) of a role/get answer; READ (0) is omitted by the gateway."""
    perms = []
    for perm in (answer or {}).get("perm", []) or []:
        perms.append((perm.get("permType") or "READ", _b64d(perm.get("key")),
                      _b64d(perm.get("range_end"))))
    return sorted(perms)


def render(auth_on, roles, users):
    lines = ["authentication: %s" % ("enabled" if auth_on else "disabled")]
    for name in sorted(roles):
        perms = roles[name]
        if perms is None:
            continue
        shown = ", ".join("%s %s" % (t.lower(), k) for t, k, _end in perms) or "(no permission)"
        lines.append("role %s: %s" % (name, shown))
    for name in sorted(users):
        if users[name] is None:
            continue
        lines.append("user %s: roles %s" % (name, ", ".join(sorted(users[name])) or "(none)"))
    return "\n".join(lines) + "\n"


class Runner:
    def __init__(self, module, gw):
        self.module = module
        self.gw = gw
        self.actions = []

    def read(self, path, body, missing_words=()):
        answer, err = self.gw.request(path, body)
        if err is None:
            return answer
        if any(word in err for word in missing_words):
            return None
        raise EtcdError("etcd refused %s: %s" % (path, err))

    def write(self, label, path, body):
        self.actions.append(label)
        if self.module.check_mode:
            return
        _answer, err = self.gw.request(path, body)
        if err is not None:
            raise EtcdError("etcd refused to %s: %s" % (label, err))


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            root_password=dict(type="str", required=True, no_log=True),
            users=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", required=True, no_log=True),
                namespaces=dict(type="list", elements="str", default=[]),
                access=dict(type="str", default="readwrite", choices=["read", "readwrite"]),
            )),
            state=dict(type="str", default="enabled", choices=["enabled", "disabled"]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    want_on = p["state"] == "enabled"
    users = p["users"]
    names = [u["name"] for u in users]
    if "root" in names:
        module.fail_json(msg="users must not list root: its password is root_password")
    if len(set(names)) != len(names):
        module.fail_json(msg="users lists a name twice: %s" % ", ".join(names))
    for user in users:
        for ns in user["namespaces"]:
            if not ns or "/" in ns:
                module.fail_json(msg="user %s: namespace %r must be a non-empty name without '/'"
                                 % (user["name"], ns))

    gw = Gateway(p["endpoints"], ca_path=p["ca_path"], client_cert=p["client_cert"],
                 client_key=p["client_key"], validate_certs=p["validate_certs"],
                 timeout=p["timeout"])
    run = Runner(module, gw)
    try:
        # Logging in as root tells whether authentication is on, and proves the password.
        answer, err = gw.request("/v3/auth/authenticate",
                                 {"name": "root", "password": p["root_password"]}, auth=False)
        if err is None and answer.get("token"):
            auth_on = True
            gw.token = answer["token"]
        elif err is not None and "not enabled" in err:
            auth_on = False
        elif err is not None and "authentication failed" in err:
            module.fail_json(msg=(
                "etcd has authentication on and refuses root's password (%s). The cluster "
                "was set up with another password: put that one back into the vault, or change "
                "it in etcd first (etcdctl --user root user passwd root)." % err))
        else:
            raise EtcdError("cannot log in to etcd as root: %s" % (err or answer))

        not_found = ("not found",)
        listed = (run.read("/v3/auth/user/list", {}) or {}).get("users", []) or []
        before_users, before_roles = {}, {}
        for name in ["root", *names]:
            got = run.read("/v3/auth/user/get", {"name": name}, not_found) \
                if name in listed else None
            before_users[name] = None if got is None else list(got.get("roles", []) or [])
            role = run.read("/v3/auth/role/get", {"role": name}, not_found)
            before_roles[name] = None if role is None else current_perms(role)

        added, passwords, roles_changed = [], [], []
        after_users = {k: (None if v is None else list(v)) for k, v in before_users.items()}
        after_roles = dict(before_roles)

        def password_matches(name, password):
            if not auth_on:
                return not want_on  # cannot be compared; only set when turning auth on
            ans, error = gw.request("/v3/auth/authenticate",
                                    {"name": name, "password": password}, auth=False)
            if error is not None and "authentication failed" not in error:
                raise EtcdError("cannot log in to etcd as %s: %s" % (name, error))
            return error is None and bool(ans.get("token"))

        # root: the user, the role root, the grant.
        if before_roles["root"] is None:
            run.write("add role root", "/v3/auth/role/add", {"name": "root"})
            after_roles["root"] = []
            roles_changed.append("root")
        entries = [("root", p["root_password"], None),
                   *[(u["name"], u["password"], desired_perms(u)) for u in users]]
        for name, password, perms in entries:
            if before_users[name] is None:
                run.write("add user %s" % name, "/v3/auth/user/add",
                          {"name": name, "password": password})
                added.append(name)
                after_users[name] = []
            elif not password_matches(name, password):
                run.write("set the password of user %s" % name, "/v3/auth/user/changepw",
                          {"name": name, "password": password})
                passwords.append(name)
            if perms is not None:
                current = before_roles[name]
                if current is None:
                    run.write("add role %s" % name, "/v3/auth/role/add", {"name": name})
                    current = []
                for kind, key, end in perms:
                    if (kind, key, end) not in current:
                        run.write("grant role %s %s %s" % (name, kind.lower(), key),
                                  "/v3/auth/role/grant",
                                  {"name": name, "perm": {"permType": kind, "key": b64e(key),
                                                          "range_end": b64e(end)}})
                for kind, key, end in current:
                    if (kind, key, end) not in perms:
                        run.write("revoke from role %s %s %s" % (name, kind.lower(), key),
                                  "/v3/auth/role/revoke",
                                  {"role": name, "key": b64e(key), "range_end": b64e(end)})
                if current != perms or before_roles[name] is None:
                    roles_changed.append(name)
                after_roles[name] = perms
            if name not in after_users[name]:
                run.write("grant role %s to user %s" % (name, name), "/v3/auth/user/grant",
                          {"user": name, "role": name})
                after_users[name] = after_users[name] + [name]

        if want_on and not auth_on:
            run.write("enable authentication", "/v3/auth/enable", {})
        elif auth_on and not want_on:
            run.write("disable authentication", "/v3/auth/disable", {})

        result = dict(changed=bool(run.actions), auth_enabled=want_on, users_added=added,
                      passwords_set=passwords, roles_changed=sorted(set(roles_changed)),
                      actions=run.actions)
        if module._diff:
            after_text = render(want_on, after_roles, after_users)
            if passwords:
                after_text += "".join("user %s: password set\n" % n for n in sorted(passwords))
            result["diff"] = dict(before=render(auth_on, before_roles, before_users),
                                  after=after_text)
        module.exit_json(**result)
    except EtcdError as exc:
        module.fail_json(msg=str(exc), actions=run.actions)


if __name__ == "__main__":
    main()
