#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Manage a Harbor project (visibility, storage quota, simple settings)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: harbor_project
short_description: Manage a Harbor project (public flag, storage quota, project settings)
version_added: "0.1.0"
description:
  - Creates, updates or deletes a project of Harbor through Harbor's v2.0 REST API, for example
    the public project C(bai) that holds Backend.AI's compute images and the private project
    C(bai-user) for images built by users.
  - The module reads the project (and its quota) first and sends only what differs. The public
    flag and O(metadata) are changed with C(PUT /api/v2.0/projects/NAME); the storage limit
    lives in a separate quota object, which is changed with C(PUT /api/v2.0/quotas/ID) (Harbor
    ignores a storage limit sent with a project update).
author:
  - backendai.cluster maintainers
options:
  name:
    description:
      - Name of the project. Harbor allows lowercase letters, digits and C(. _ -) between them
        (the first and last character a letter or digit), 1 to 255 characters.
    type: str
    required: true
    aliases: [project_name]
  public:
    description:
      - Whether anyone may pull the project's images without logging in.
      - A new project is private when this is omitted; an existing project keeps its setting.
    type: bool
  storage_limit:
    description:
      - Storage quota of the project in bytes; V(-1) means unlimited. At most 1125899906842624
        (1024 TiB), Harbor's limit.
      - When omitted a new project gets Harbor's default quota (unlimited unless the Harbor
        administrator configured another) and an existing project keeps its quota.
      - Reading and changing quotas needs a Harbor system administrator.
    type: int
  metadata:
    description:
      - Further project settings, as Harbor's project metadata. Keys not given are left as they
        are. Booleans may be given as booleans; Harbor stores them as the strings C(true) and
        C(false).
      - Allowed keys are C(auto_scan), C(auto_sbom_generation), C(prevent_vul), C(severity)
        (C(none), C(low), C(medium), C(high) or C(critical)), C(enable_content_trust),
        C(enable_content_trust_cosign) and C(reuse_sys_cve_allowlist). Use O(public) for the
        public flag.
    type: dict
  state:
    description:
      - V(present) creates or updates the project; V(absent) deletes it.
      - Harbor refuses to delete a project that still holds repositories (HTTP 412); the module
        then fails with Harbor's explanation.
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
    details: Only reading requests are sent.
  diff_mode:
    support: full
    details: Shows the public flag, the storage limit and the metadata before and after.
notes:
  - The user that creates a project becomes its project administrator (Harbor adds that
    membership by itself).
  - Proxy-cache projects (C(registry_id)) and CVE allowlists are not managed by this module.
seealso:
  - module: backendai.cluster.harbor_user
  - module: backendai.cluster.harbor_project_member
"""

EXAMPLES = r"""
- name: Harbor projects of the Backend.AI guide
  module_defaults:
    group/backendai.cluster.harbor:
      harbor_url: "http://{{ bai_registry_address }}:{{ bai_harbor_port }}"
      harbor_username: admin
      harbor_password: "{{ bai_harbor_admin_password }}"
  block:
    - name: Public project for the compute images
      backendai.cluster.harbor_project:
        name: "{{ bai_harbor_project_compute }}"
        public: true
        storage_limit: -1

    - name: Private project for images built by users
      backendai.cluster.harbor_project:
        name: "{{ bai_harbor_project_user }}"
        public: false
        storage_limit: "{{ 500 * 1024 ** 3 }}"
        metadata:
          auto_scan: true
          severity: high

- name: Delete a project (it must hold no repositories)
  backendai.cluster.harbor_project:
    harbor_url: http://10.20.30.10:7080
    harbor_password: "{{ bai_harbor_admin_password }}"
    name: scratch
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the project was (or, in check mode, would be) created, changed or
    deleted.
  returned: always
  type: bool
project:
  description: The project after the run (before it, for V(absent)); empty when there is no
    such project. In check mode the values are the expected ones.
  returned: always
  type: dict
  contains:
    project_id:
      description: Harbor's ID of the project (null for a project only created in check mode).
      type: int
      sample: 2
    name:
      description: Name of the project.
      type: str
      sample: bai
    public:
      description: Whether the project is public.
      type: bool
      sample: true
    storage_limit:
      description: Storage quota in bytes, V(-1) for unlimited; null when Harbor keeps no
        quota for the project or the user may not read quotas.
      type: int
      sample: -1
    metadata:
      description: Harbor's project metadata (all values are strings).
      type: dict
      sample: {"public": "true", "auto_scan": "false"}
    owner_name:
      description: The user that created the project.
      type: str
      sample: admin
    repo_count:
      description: Number of repositories in the project.
      type: int
      sample: 0
    creation_time:
      description: When Harbor created the project.
      type: str
      sample: "2026-01-31T10:00:00.000Z"
"""

import re  # noqa: E402 - the documentation strings come first in Ansible modules

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils._harbor import (  # noqa: E402
    HarborError,
    bool_to_harbor,
    connect,
    fail,
    harbor_argument_spec,
    make_diff,
)

NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
MAX_STORAGE = 1024 ** 5  # 1024 TiB
FLAG_KEYS = (
    "auto_scan", "auto_sbom_generation", "prevent_vul", "enable_content_trust",
    "enable_content_trust_cosign", "reuse_sys_cve_allowlist",
)
SEVERITIES = ("none", "low", "medium", "high", "critical")
DIFF_KEYS = ("name", "public", "storage_limit", "metadata")


def desired_metadata(module):
    """The metadata the task asks for, in Harbor's string form; fails on unknown keys."""
    p = module.params
    wanted = {}
    for key, value in (p["metadata"] or {}).items():
        if key == "public":
            module.fail_json(msg="set the public flag with the option public, not in metadata")
        if key in FLAG_KEYS:
            text = bool_to_harbor(value).lower() if isinstance(value, (bool, str)) else None
            if text not in ("true", "false"):
                module.fail_json(msg=f"metadata.{key} must be true or false, not {value!r}")
            wanted[key] = text
        elif key == "severity":
            if str(value).lower() not in SEVERITIES:
                module.fail_json(
                    msg=f"metadata.severity must be one of {', '.join(SEVERITIES)}, not {value!r}"
                )
            wanted[key] = str(value).lower()
        else:
            allowed = ", ".join((*FLAG_KEYS, "severity"))
            module.fail_json(msg=f"unknown metadata key {key!r}; allowed keys: {allowed}")
    if p["public"] is not None:
        wanted["public"] = bool_to_harbor(p["public"])
    return wanted


def validate(module):
    p = module.params
    if len(p["name"]) > 255 or not NAME.match(p["name"]):
        module.fail_json(
            msg=f"project name {p['name']!r} is not valid in Harbor: use 1 to 255 lowercase "
            "letters and digits, optionally separated by single '.', '_' or '-'"
        )
    limit = p["storage_limit"]
    if limit is not None and not (limit == -1 or 0 < limit <= MAX_STORAGE):
        module.fail_json(
            msg=f"storage_limit must be -1 (unlimited) or 1 to {MAX_STORAGE} bytes, not {limit}"
        )


def read_quota(module, client, project):
    """(quota or None, storage limit or None).

    Without storage_limit, a user that may not read quotas just gets no limit reported.
    """
    try:
        quota = client.get_project_quota(project["project_id"])
    except HarborError as exc:
        if exc.status == 403 and module.params["storage_limit"] is None:
            return None, None
        raise
    if not quota:
        return None, None
    return quota, (quota.get("hard") or {}).get("storage")


def view(project, storage_limit):
    if not project:
        return {}
    metadata = dict(project.get("metadata") or {})
    return {
        "project_id": project.get("project_id"),
        "name": project.get("name"),
        "public": metadata.get("public") == "true",
        "storage_limit": storage_limit,
        "metadata": metadata,
        "owner_name": project.get("owner_name"),
        "repo_count": project.get("repo_count"),
        "creation_time": project.get("creation_time"),
    }


def set_quota(module, client, quota, limit):
    if quota is None:
        module.fail_json(
            msg=f"Harbor keeps no storage quota for project {module.params['name']!r} (are "
            "per-project quotas disabled?), so storage_limit cannot be applied"
        )
    if not module.check_mode:
        client.call("PUT", f"/quotas/{quota['id']}", body={"hard": {"storage": limit}})


def main():
    module = AnsibleModule(
        argument_spec=harbor_argument_spec(
            name=dict(type="str", required=True, aliases=["project_name"]),
            public=dict(type="bool"),
            storage_limit=dict(type="int"),
            metadata=dict(type="dict"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    validate(module)
    p = module.params
    wanted_meta = desired_metadata(module) if p["state"] == "present" else {}
    client = connect(module)
    name = p["name"]
    path = client.project_path(name)
    result = dict(changed=False, project={})

    try:
        project = client.get_project(name)
        quota, limit = read_quota(module, client, project) if project else (None, None)
        before = view(project, limit)

        if p["state"] == "absent":
            if project:
                if not module.check_mode:
                    client.call("DELETE", path, headers=client.NAME_HEADER)
                result["changed"] = True
            result["project"] = before
            after = {}

        elif project is None:
            metadata = {"public": "false"}
            metadata.update(wanted_meta)
            body = {"project_name": name, "metadata": metadata}
            if p["storage_limit"] is not None:
                body["storage_limit"] = p["storage_limit"]
            if module.check_mode:
                after = view({"project_id": None, "name": name, "metadata": metadata},
                             p["storage_limit"])
            else:
                client.call("POST", "/projects", body=body)
                project = client.get_project(name)
                quota, limit = read_quota(module, client, project)
                if p["storage_limit"] is not None and limit != p["storage_limit"]:
                    # Harbor drops the limit of a new project when quotas are off per project.
                    set_quota(module, client, quota, p["storage_limit"])
                    quota, limit = read_quota(module, client, project)
                after = view(project, limit)
            result.update(changed=True, project=after)

        else:
            current_meta = project.get("metadata") or {}
            changes = {k: v for k, v in wanted_meta.items() if current_meta.get(k) != v}
            new_limit = p["storage_limit"]
            limit_changes = new_limit is not None and new_limit != limit
            if changes and not module.check_mode:
                client.call("PUT", path, headers=client.NAME_HEADER, body={"metadata": changes})
            if limit_changes:
                set_quota(module, client, quota, new_limit)
            if (changes or limit_changes) and not module.check_mode:
                project = client.get_project(name)
                quota, limit = read_quota(module, client, project)
                after = view(project, limit)
            else:
                expected = dict(project)
                expected["metadata"] = dict(current_meta, **changes)
                after = view(expected, new_limit if limit_changes else limit)
            result.update(changed=bool(changes or limit_changes), project=after)
    except HarborError as exc:
        fail(module, exc)

    if module._diff:
        result["diff"] = make_diff(before, after, DIFF_KEYS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
