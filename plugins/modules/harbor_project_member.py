#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Manage the membership (and role) of a user in a Harbor project."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: harbor_project_member
short_description: Manage a user's membership and role in a Harbor project
version_added: "0.1.0"
description:
  - Adds a Harbor user to a project with a role, changes the role, or removes the membership,
    through Harbor's v2.0 REST API. For Backend.AI the C(bai) user is a C(developer) of the
    private project C(bai-user), so the manager can push images built by users there.
  - The module reads the project's members first and sends only what differs.
author:
  - backendai.cluster maintainers
options:
  project:
    description:
      - Name of the project. It must exist (see M(backendai.cluster.harbor_project)).
    type: str
    required: true
  username:
    description:
      - Name of the user. The user must exist (see M(backendai.cluster.harbor_user)).
    type: str
    required: true
    aliases: [user]
  role:
    description:
      - Role of the user in the project; required for O(state=present).
      - Harbor's role IDs are V(projectAdmin)=1, V(developer)=2, V(guest)=3, V(maintainer)=4
        and V(limitedGuest)=5.
    type: str
    choices: [projectAdmin, maintainer, developer, guest, limitedGuest]
  state:
    description:
      - V(present) adds the membership or corrects its role; V(absent) removes it.
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
    details: Only reading requests are sent. A project or user that does not exist yet (for
      example because an earlier task only pretended to create it in check mode) is reported
      as a change with a warning instead of a failure.
  diff_mode:
    support: full
    details: Shows project, user and role before and after.
notes:
  - Only user members are managed; members that are groups (LDAP, HTTP or OIDC groups) are
    left alone even when they have the same name.
seealso:
  - module: backendai.cluster.harbor_user
  - module: backendai.cluster.harbor_project
"""

EXAMPLES = r"""
- name: bai may push to the private project bai-user
  backendai.cluster.harbor_project_member:
    harbor_url: "http://{{ bai_registry_address }}:{{ bai_harbor_port }}"
    harbor_username: admin
    harbor_password: "{{ bai_harbor_admin_password }}"
    project: "{{ bai_harbor_project_user }}"
    username: "{{ bai_harbor_username }}"
    role: developer

- name: Remove a membership
  backendai.cluster.harbor_project_member:
    harbor_url: http://10.20.30.10:7080
    harbor_password: "{{ bai_harbor_admin_password }}"
    project: bai-user
    username: olduser
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the membership was (or, in check mode, would be) added, changed or
    removed.
  returned: always
  type: bool
member:
  description: The membership after the run (before it, for V(absent)); empty when there is
    none. In check mode the values are the expected ones.
  returned: always
  type: dict
  contains:
    id:
      description: Harbor's ID of the membership (null when only added in check mode).
      type: int
      sample: 4
    project_id:
      description: ID of the project.
      type: int
      sample: 3
    entity_name:
      description: Name of the user.
      type: str
      sample: bai
    entity_id:
      description: ID of the user.
      type: int
      sample: 3
    entity_type:
      description: C(u) for a user.
      type: str
      sample: u
    role_id:
      description: Harbor's ID of the role.
      type: int
      sample: 2
    role_name:
      description: Harbor's name of the role.
      type: str
      sample: developer
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils._harbor import (  # noqa: E402
    ROLES,
    HarborError,
    connect,
    fail,
    harbor_argument_spec,
    make_diff,
)

MEMBER_FIELDS = ("id", "project_id", "entity_name", "entity_id", "entity_type", "role_id",
                 "role_name")


def public_member(member):
    return {key: member.get(key) for key in MEMBER_FIELDS if key in member} if member else {}


def diff_view(project, username, member):
    if not member:
        return {}
    return {"project": project, "username": username, "role": member.get("role_name")}


def main():
    module = AnsibleModule(
        argument_spec=harbor_argument_spec(
            project=dict(type="str", required=True),
            username=dict(type="str", required=True, aliases=["user"]),
            role=dict(type="str", choices=["projectAdmin", "maintainer", "developer", "guest",
                                          "limitedGuest"]),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ["role"])],
        supports_check_mode=True,
    )
    p = module.params
    if not p["project"].strip() or not p["username"].strip():
        module.fail_json(msg="project and username must not be empty")
    client = connect(module)
    project_name, username = p["project"], p["username"]
    members_path = client.project_path(project_name) + "/members"
    role_id = ROLES.get(p["role"])
    result = dict(changed=False, member={})
    before = after = {}

    try:
        project = client.get_project(project_name)
        if project is None:
            if p["state"] == "absent":
                if module._diff:
                    result["diff"] = make_diff({}, {})
                module.exit_json(**result)
            if not module.check_mode:
                module.fail_json(msg=f"Harbor has no project {project_name!r}")
            module.warn(f"Harbor has no project {project_name!r} (yet); assuming an earlier task "
                        "creates it")
            member = None
        else:
            member = client.find_member(project_name, username)
        before = diff_view(project_name, username, member)

        if p["state"] == "absent":
            if member:
                if not module.check_mode:
                    client.call(
                        "DELETE", f"{members_path}/{member['id']}", headers=client.NAME_HEADER
                    )
                result["changed"] = True
            result["member"] = public_member(member)

        elif member is None:
            expected = {
                "id": None, "project_id": project and project.get("project_id"),
                "entity_name": username, "entity_id": None, "entity_type": "u",
                "role_id": role_id, "role_name": p["role"],
            }
            if module.check_mode:
                if project is not None and client.find_user(username) is None:
                    module.warn(f"Harbor has no user {username!r} (yet); assuming an earlier task "
                                "creates it")
                member = expected
            else:
                body = {"role_id": role_id, "member_user": {"username": username}}
                try:
                    client.call("POST", members_path, headers=client.NAME_HEADER, body=body)
                except HarborError as exc:
                    if exc.status == 404:
                        reason = exc.harbor_message or str(exc)
                        fail(module, f"Harbor has no user {username!r} to add to project "
                             f"{project_name!r} ({reason})", **exc.details())
                    raise
                member = client.find_member(project_name, username) or expected
            result.update(changed=True, member=public_member(member))

        elif member.get("role_id") != role_id:
            if not module.check_mode:
                client.call(
                    "PUT", f"{members_path}/{member['id']}", headers=client.NAME_HEADER,
                    body={"role_id": role_id},
                )
                member = client.find_member(project_name, username) or member
            else:
                member = dict(member, role_id=role_id, role_name=p["role"])
            result.update(changed=True, member=public_member(member))
        else:
            result["member"] = public_member(member)
        after = {} if p["state"] == "absent" else diff_view(project_name, username, member)
    except HarborError as exc:
        fail(module, exc)

    if module._diff:
        result["diff"] = make_diff(before, after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
