#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Bring rows of the Backend.AI manager database to a declared state."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backendai_fixture
short_description: Declare domains, projects, users and other rows of the Backend.AI manager DB
version_added: "0.1.0"
description:
  - Brings rows of the Backend.AI manager database to a declared state, the way
    C(backend.ai mgr fixture populate) loads fixture files, but idempotently and with an
    accurate C(changed) status.
  - The module first reads the rows that match the declared ones (by primary key, or by a
    unique column such as C(email) or C(name)), then decides per row whether to insert it,
    update the differing columns, or leave it alone, and writes only that difference.
    C(fixture populate) on its own inserts with C(ON CONFLICT DO NOTHING) and silently ignores
    changed values.
  - The writes go through the manager's own fixture loader (C(populate_fixture) from the
    installed C(backend.ai-manager) package, in insert mode for new rows and in update mode
    for changed columns). It hashes passwords exactly like the manager, converts enum, JSON and
    resource-slot columns, and registers the RBAC graph entities that Backend.AI 26.9 needs for
    every row a fixture writes. Plain SQL would skip the last two.
  - A user the manager creates itself gets more than its row (Backend.AI 26.9 and later), namely a
    personal project it alone belongs to (where its own storage folders live) and a place on
    the access graph's roster of each project it joins (what session creation checks). Rows
    a fixture inserts get neither, so the user could log in but neither create a folder nor
    start a session. The module fills both in for the declared users, with the code the
    installed manager ships for rows written outside its creation path (the data migrations
    C(c7a4f1e9b023) and C(dafe06a6c763) of 26.9.0, which also give the users their preset
    roles) plus the roster edge of each project in I(users[].projects) or
    C(association_groups_users). A missing piece counts as a change (and shows in check
    and diff mode); a manager without the access graph skips this step.
  - After writing, the rows are read back and compared again; a row that did not end up as
    declared (for example an insert skipped because another row already holds the same
    unique e-mail address) makes the module fail.
  - Rows are never deleted. Columns that are not declared are left as they are (and get the
    database default on insert).
  - The module runs on the managed node with its system Python (standard library only). The
    database work is done by a short program run with the manager virtualenv's Python; the
    declared rows, including passwords, reach it on stdin, never on the command line.
author:
  - backendai.cluster maintainers
options:
  venv:
    description: Path of the manager virtualenv (with C(backend.ai-manager) installed).
    type: path
    required: true
  config:
    description:
      - How to reach the database. Either the manager's C(manager.toml) (its C([db]) section
        is read with the manager's own loader, so C(BACKEND_DB_*) environment overrides
        apply) or an alembic ini file (its C(sqlalchemy.url)).
    type: path
    required: true
  update_secrets:
    description:
      - When to write passwords (C(users.password)), secret keys (C(keypairs.secret_key)) and
        registry passwords (C(container_registries.password)) of rows that already exist.
      - C(on_create) writes them only when the row is created, so a password an administrator
        has changed since is never reset.
      - C(always) makes them match the declared value. Passwords are compared by verifying
        the declared password against the stored hash, so this stays idempotent.
    type: str
    choices: [on_create, always]
    default: on_create
  connect_timeout:
    description: Seconds to wait for the database connection.
    type: int
    default: 10
  environment:
    description: Extra environment variables for the helper program.
    type: dict
    default: {}
  domains:
    description: Rows of C(domains) (primary key C(name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Domain name., type: str, required: true}
      id: {description: Fixed UUID of the domain (needed to link resource groups to it)., type: str}
      description: {description: Free text., type: str}
      is_active: {description: Whether the domain is active., type: bool}
      total_resource_slots:
        description: >-
          Resource limits, for example C({"cpu": "64"}); C({}) means unlimited.
        type: dict
      allowed_vfolder_hosts:
        description:
          - Map of vfolder host (C(<storage proxy>:<volume>)) to the list of allowed
            permissions (C(create-vfolder), C(modify-vfolder), C(delete-vfolder),
            C(mount-in-session), C(upload-file), C(download-file), C(invite-others),
            C(set-user-specific-permission)).
        type: dict
      allowed_docker_registries:
        description: >-
          Registry host names the domain may use.
        type: list
        elements: str
      integration_id: {description: External integration id., type: str}
      extra: {description: Further columns of the table, as column name to value., type: dict}
  user_resource_policies:
    description: Rows of C(user_resource_policies) (primary key C(name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Policy name., type: str, required: true}
      max_vfolder_count: {description: Maximum vfolders per user (0 = unlimited)., type: int}
      max_quota_scope_size: {description: Quota in bytes (-1 = unlimited)., type: int}
      max_session_count_per_model_session: {description: Sessions per model service., type: int}
      max_customized_image_count: {description: Customized images per user., type: int}
      extra: {description: Further columns of the table., type: dict}
  project_resource_policies:
    description: Rows of C(project_resource_policies) (primary key C(name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Policy name., type: str, required: true}
      max_vfolder_count: {description: Maximum vfolders per project (0 = unlimited)., type: int}
      max_quota_scope_size: {description: Quota in bytes (-1 = unlimited)., type: int}
      max_network_count: {description: Maximum networks per project., type: int}
      extra: {description: Further columns of the table., type: dict}
  keypair_resource_policies:
    description: Rows of C(keypair_resource_policies) (primary key C(name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Policy name., type: str, required: true}
      default_for_unspecified:
        description: >-
          Limit for slots not listed in I(total_resource_slots).
        type: str
        choices: [LIMITED, UNLIMITED]
      total_resource_slots: {description: Resource limits per keypair., type: dict}
      max_session_lifetime: {description: Seconds (0 = unlimited)., type: int}
      max_concurrent_sessions: {description: Concurrent sessions., type: int}
      max_pending_session_count: {description: Pending sessions., type: int}
      max_concurrent_sftp_sessions: {description: Concurrent SFTP sessions., type: int}
      max_containers_per_session: {description: Containers per session., type: int}
      idle_timeout: {description: Seconds., type: int}
      allowed_vfolder_hosts: {description: Same format as for domains., type: dict}
      extra: {description: Further columns of the table., type: dict}
  groups:
    description:
      - Rows of C(groups), which the UI calls projects (primary key C(id); matched by
        C(name) + C(domain_name) when no C(id) is given). Give fixed UUIDs so that other
        rows and playbooks can refer to them.
    type: list
    elements: dict
    suboptions:
      id: {description: Fixed UUID of the project., type: str}
      name: {description: Project name., type: str, required: true}
      domain_name: {description: Domain of the project., type: str, required: true}
      description: {description: Free text., type: str}
      is_active: {description: Whether the project is active., type: bool}
      type: {description: Project type., type: str, choices: [general, model-store]}
      resource_policy: {description: Name of a project resource policy., type: str}
      total_resource_slots: {description: Resource limits., type: dict}
      allowed_vfolder_hosts: {description: Same format as for domains., type: dict}
      integration_id: {description: External integration id., type: str}
      extra: {description: Further columns of the table., type: dict}
  scaling_groups:
    description: Rows of C(scaling_groups), the resource groups (primary key C(name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Resource group name., type: str, required: true}
      id: {description: Fixed UUID (needed to link the group to domains)., type: str}
      description: {description: Free text., type: str}
      is_active: {description: Whether the group takes sessions., type: bool}
      is_public: {description: Whether every user may use the group., type: bool}
      is_default: {description: Whether it is the default group (at most one)., type: bool}
      driver: {description: Agent driver (C(static))., type: str}
      driver_opts: {description: Driver options., type: dict}
      scheduler: {description: Scheduler (C(fifo), C(lifo), C(drf))., type: str}
      scheduler_opts: {description: Scheduler options., type: dict}
      use_host_network: {description: Sessions use the host network., type: bool}
      wsproxy_addr:
        description: >-
          URL of the app-proxy coordinator
        for example C(http://10.20.30.15:10200).: None
        type: str
      wsproxy_api_token:
        description:
          - The coordinator's C([secrets] api_secret). Compared and updated like any other
            column, but never shown.
        type: str
      extra: {description: Further columns of the table., type: dict}
  sgroups_for_domains:
    description:
      - Links between resource groups and domains (unique by C(resource_group_id) +
        C(domain_id)). Name both sides either by UUID or by name; names are looked up among
        the rows declared in the same task first, then in the database.
    type: list
    elements: dict
    suboptions:
      scaling_group: {description: Resource group name., type: str}
      resource_group_id: {description: Resource group UUID., type: str}
      domain: {description: Domain name., type: str}
      domain_id: {description: Domain UUID., type: str}
  users:
    description:
      - Rows of C(users) (primary key C(uuid); matched by C(email) or C(username) when no
        C(uuid) is given). C(domain_id) is filled in from C(domain_name) when omitted.
    type: list
    elements: dict
    suboptions:
      uuid: {description: Fixed UUID of the user., type: str}
      email: {description: E-mail address (login name)., type: str, required: true}
      username: {description: User name (defaults to the e-mail address on insert)., type: str}
      password:
        description: Plain-text password; stored hashed (C(pbkdf2_sha256)). See O(update_secrets).
        type: str
      need_password_change: {description: Ask for a new password at the next login., type: bool}
      full_name: {description: Display name., type: str}
      description: {description: Free text., type: str}
      status:
        description: >-
          Account status.
        type: str
        choices: [active, inactive, before-verification]
      status_info: {description: Free text about the status., type: str}
      domain_name: {description: Domain of the user., type: str}
      domain_id: {description: Domain UUID (looked up from I(domain_name) when omitted)., type: str}
      role: {description: Role., type: str, choices: [superadmin, admin, user, monitor]}
      resource_policy: {description: Name of a user resource policy., type: str}
      projects:
        description:
          - Projects the user is a member of, by UUID or by name (in the user's domain).
            Memberships are added, never removed.
        type: list
        elements: str
      extra: {description: Further columns of the table., type: dict}
  keypairs:
    description:
      - Rows of C(keypairs) (primary key C(access_key)). Every user needs one keypair with
        C(is_default=true), or API requests fail with "Access key not found".
    type: list
    elements: dict
    suboptions:
      access_key:
        description: >-
          Access key (20 characters).
        type: str
        required: true
        no_log: false
      secret_key: {description: Secret key (40 characters). See O(update_secrets)., type: str}
      user: {description: UUID of the owning user., type: str}
      user_email: {description: E-mail address of the owning user (instead of I(user))., type: str}
      is_active: {description: Whether the keypair works., type: bool}
      is_admin: {description: Whether it is an admin keypair., type: bool}
      is_default: {description: Whether it is the user's default keypair., type: bool}
      resource_policy: {description: Name of a keypair resource policy., type: str}
      rate_limit: {description: Requests per 15 minutes., type: int}
      extra: {description: Further columns of the table., type: dict}
  resource_slot_types:
    description:
      - Rows of C(resource_slot_types) (primary key C(slot_name)). C(schema oneshot) creates
        none; agents cannot report their resources without at least C(cpu) (C(count)) and
        C(mem) (C(bytes)), plus C(cuda.device) / C(cuda.shares) on GPU nodes.
    type: list
    elements: dict
    suboptions:
      slot_name: {description: Slot name., type: str, required: true}
      slot_type: {description: Slot type., type: str, choices: [count, bytes, unique-count]}
      display_name: {description: Label in the UI., type: str}
      description: {description: Free text., type: str}
      display_unit: {description: Unit label in the UI., type: str}
      display_icon: {description: Icon name in the UI., type: str}
      rank: {description: Sort order in the UI., type: int}
      extra: {description: Further columns of the table., type: dict}
  resource_presets:
    description: Rows of C(resource_presets), matched by C(name) (+ C(scaling_group_name)).
    type: list
    elements: dict
    suboptions:
      name: {description: Preset name., type: str, required: true}
      id: {description: Fixed UUID., type: str}
      resource_slots:
        description: >-
          Slots, for example C({"cpu": "4", "mem": "8589934592"}).
        type: dict
      shared_memory: {description: Shared memory in bytes (an integer)., type: int}
      scaling_group_name: {description: Restrict the preset to one resource group., type: str}
      extra: {description: Further columns of the table., type: dict}
  container_registries:
    description:
      - Rows of C(container_registries), matched by C(id) or by C(registry_name) +
        C(project).
    type: list
    elements: dict
    suboptions:
      id: {description: Fixed UUID., type: str}
      registry_name:
        description: >-
          Registry host name as images name it
        for example C(cr.backend.ai).: None
        type: str
        required: true
      url: {description: Registry URL., type: str}
      type:
        description: >-
          Registry type.
        type: str
        choices: [docker, harbor, harbor2, github, gitlab, ecr, ecr-public, local, ocp]
      project: {description: Project (Harbor) or namespace., type: str}
      username: {description: Login user., type: str}
      password: {description: Login password. See O(update_secrets)., type: str}
      ssl_verify: {description: Verify the registry's TLS certificate., type: bool}
      is_global: {description: Usable by every domain., type: bool}
      extra: {description: Further columns of the table., type: dict}
  tables:
    description:
      - Any table in the fixture file format, a mapping of table name to a list of rows. Column
        values are given
        as in a C(fixture populate) JSON file (enum names or values, JSON objects, ISO dates).
      - Rows here are handled like the typed options above (which are merged in first) and
        may use any table of the manager's schema, for example C(association_groups_users).
      - Values of C(password), C(secret_key) and C(wsproxy_api_token) columns are masked in the
        output, but the whole option is logged on the node like any free-form option; put
        secrets in the typed options (whose secret fields are C(no_log)) or set C(no_log) on
        the task.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      Reads the database and reports the rows that would be inserted or updated; writes
      nothing.
  diff_mode:
    support: full
    details: Per table, the changed rows before and after; secrets are shown as C(********).
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
  platform:
    platforms: posix
notes:
  - Tables are written in foreign-key order; each table is written in its own transaction
    (as C(fixture populate) does). If a later table fails, the earlier ones stay written and
    a rerun continues from there.
  - Passwords are stored as C(pbkdf2_sha256$600000$<salt hex>$<hash hex>) (Backend.AI's own
    format, not passlib's). The other formats Backend.AI reads (C(pbkdf2_sha3_256),
    C(sha256), C(sha3_256), legacy bcrypt) are verified as well.
  - A secret key stored encrypted (C(bai-enc:...), when C([secret-encryption]) is configured)
    cannot be compared; with O(update_secrets=always) it is left alone and a warning is
    returned.
seealso:
  - module: backendai.cluster.backendai_alembic
"""

EXAMPLES = r"""
# The guide's initial setup: one domain, a default and a model-store project, resource
# policies, presets, the resource group that points at the app-proxy coordinator, the
# superadmin and an example user, each with a default keypair.
- name: Initial data of the manager database
  backendai.cluster.backendai_fixture:
    venv: /opt/backend.ai/manager
    config: /etc/backend.ai/manager.toml
    domains:
      - name: default
        id: 8e32dd28-d319-4e3c-8851-6a3a6f4c6d22
        description: default domain
        is_active: true
        total_resource_slots: {}
        allowed_vfolder_hosts:
          "local:volume1": [create-vfolder, modify-vfolder, delete-vfolder, mount-in-session,
                            upload-file, download-file, invite-others,
                            set-user-specific-permission]
        allowed_docker_registries: [cr.backend.ai]
    user_resource_policies:
      - {name: default, max_vfolder_count: 0, max_quota_scope_size: -1,
         max_session_count_per_model_session: 10}
    project_resource_policies:
      - {name: default, max_vfolder_count: 0, max_quota_scope_size: -1, max_network_count: 3}
    keypair_resource_policies:
      - name: default
        default_for_unspecified: UNLIMITED
        total_resource_slots: {}
        max_session_lifetime: 0
        max_concurrent_sessions: 5
        max_containers_per_session: 1
        idle_timeout: 3600
        allowed_vfolder_hosts:
          "local:volume1": [create-vfolder, modify-vfolder, delete-vfolder, mount-in-session,
                            upload-file, download-file, invite-others,
                            set-user-specific-permission]
    groups:
      - id: 2de2b969-1d04-48a6-af16-0bc8adb3c831
        name: default
        domain_name: default
        description: default project
        resource_policy: default
        type: general
        allowed_vfolder_hosts:
          "local:volume1": [create-vfolder, modify-vfolder, delete-vfolder, mount-in-session,
                            upload-file, download-file]
      - id: 8f0c6b9e-3c51-4d7c-a2a8-2f3f5d1d9b10
        name: model-store
        domain_name: default
        description: model store
        resource_policy: default
        type: model-store
    scaling_groups:
      - name: default
        id: 4d1e9b32-90c7-5b32-8f0e-6f470b8ed24a
        description: default resource group
        is_active: true
        is_default: true
        driver: static
        driver_opts: {}
        scheduler: fifo
        wsproxy_addr: http://10.20.30.15:10200
        wsproxy_api_token: "{{ vault_appproxy_api_secret }}"
    sgroups_for_domains:
      - {scaling_group: default, domain: default}
    resource_slot_types:
      - {slot_name: cpu, slot_type: count, display_name: CPU, rank: 100}
      - {slot_name: mem, slot_type: bytes, display_name: RAM, rank: 200}
      - {slot_name: cuda.device, slot_type: count, display_name: GPU, rank: 300}
    resource_presets:
      - {name: cpu01-small, resource_slots: {cpu: "1", mem: "1073741824"}}
      - {name: gpu01-medium, resource_slots: {cpu: "4", mem: "17179869184", cuda.device: "1"},
         shared_memory: 1073741824}
    users:
      - uuid: f38dea23-50fa-42a0-b5ae-338f5f4693f4
        username: admin
        email: admin@example.com
        password: "{{ vault_superadmin_password }}"
        need_password_change: false
        full_name: Admin
        status: active
        domain_name: default
        role: superadmin
        resource_policy: default
        projects: [default]
      - uuid: 4b9e7a4e-5f7a-4c43-9a55-3c1d8a2f0e11
        username: user
        email: user@example.com
        password: "{{ vault_example_user_password }}"
        need_password_change: true
        status: active
        domain_name: default
        role: user
        resource_policy: default
        projects: [default, model-store]
    keypairs:
      - access_key: "{{ vault_superadmin_access_key }}"
        secret_key: "{{ vault_superadmin_secret_key }}"
        user_email: admin@example.com
        is_active: true
        is_admin: true
        is_default: true
        resource_policy: default
        rate_limit: 30000
      - access_key: "{{ vault_example_user_access_key }}"
        secret_key: "{{ vault_example_user_secret_key }}"
        user_email: user@example.com
        is_active: true
        is_admin: false
        is_default: true
        resource_policy: default
        rate_limit: 30000
  register: bootstrap

- name: Reset a forgotten superadmin password to the one in the vault
  backendai.cluster.backendai_fixture:
    venv: /opt/backend.ai/manager
    config: /etc/backend.ai/manager.toml
    update_secrets: always
    users:
      - email: admin@example.com
        password: "{{ vault_superadmin_password }}"

- name: Any other table, in the fixture file format
  backendai.cluster.backendai_fixture:
    venv: /opt/backend.ai/manager
    config: /etc/backend.ai/alembic.ini
    tables:
      container_registries:
        - id: 6b5c2f0a-7c53-4e0e-9a4e-0b3f8f0c2d11
          registry_name: cr.example.com
          url: https://cr.example.com
          type: harbor2
          project: backendai
"""

RETURN = r"""
changed:
  description: Whether any row was inserted or updated (or would be, in check mode).
  returned: always
  type: bool
tables:
  description: Per table, how many declared rows were inserted, updated or already as declared.
  returned: always
  type: dict
  sample: {"users": {"inserted": 1, "updated": 0, "unchanged": 1}}
changed_keys:
  description: The rows that changed, as C(table[key=value]) (never a secret).
  returned: always
  type: list
  elements: str
  sample: ["domains[name=default]", "users[uuid=f38dea23-50fa-42a0-b5ae-338f5f4693f4]"]
changes:
  description: Per changed row, the table, the key, the action and the changed column names.
  returned: always
  type: list
  elements: dict
  sample:
    - {"table": "users", "key": {"email": "admin@example.com"}, "action": "update",
       "columns": ["password"]}
graph:
  description:
    - The access-graph rows the declared users lacked (and that the module wrote, unless in
      check mode), one line each; empty when nothing was missing.
  returned: always
  type: list
  elements: str
  sample: ["personal project of user user@example.com",
           "user user@example.com on the roster of project default"]
"""

import copy  # noqa: E402 - the documentation strings come first in Ansible modules
import os  # noqa: E402
import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils import (  # noqa: E402
    _fixture_helper,
)
from ansible_collections.backendai.cluster.plugins.module_utils._backendai import (  # noqa: E402
    MASK,
    Scrubber,
    VenvSession,
    json_equal,
    read_ini_option,
    require_executable,
    url_password,
    venv_executable,
    verify_password_hash,
)
from ansible_collections.backendai.cluster.plugins.module_utils._venv_prelude import (  # noqa: E402
    program,
)

# Columns whose values never appear in the output. The first three follow update_secrets.
POLICY_SECRET_COLUMNS = {
    ("users", "password"),
    ("keypairs", "secret_key"),
    ("container_registries", "password"),
}
MASKED_COLUMNS = POLICY_SECRET_COLUMNS | {
    ("scaling_groups", "wsproxy_api_token"),
    ("users", "totp_key"),
    ("keypairs", "ssh_private_key"),
}

# Order in which the typed options are merged (the helper sorts by foreign keys anyway).
TYPED_TABLES = [
    "domains",
    "user_resource_policies",
    "project_resource_policies",
    "keypair_resource_policies",
    "groups",
    "scaling_groups",
    "sgroups_for_domains",
    "resource_slot_types",
    "resource_presets",
    "container_registries",
    "users",
    "keypairs",
]

# Key of a typed row holding values used only when the row is inserted.
INSERT_DEFAULTS = "__insert_defaults__"

_UUID = re.compile(r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")


def ref(table, column, **match):
    """A value the helper resolves: ``column`` of the row of ``table`` matching ``match``."""
    return {"__ref__": {"table": table, "column": column, "match": match}}


def _clean(entry, drop=()):
    row = {k: v for k, v in entry.items() if v is not None and k not in drop and k != "extra"}
    row.update(entry.get("extra") or {})
    return row


def typed_rows(params):
    """Translate the typed options into fixture rows: {table: [row, ...]} in merge order."""
    tables = {}

    def add(table, row):
        tables.setdefault(table, []).append(row)

    for table in TYPED_TABLES:
        for entry in params.get(table) or []:
            if table == "sgroups_for_domains":
                row = {}
                if entry.get("resource_group_id"):
                    row["resource_group_id"] = entry["resource_group_id"]
                elif entry.get("scaling_group"):
                    row["resource_group_id"] = ref(
                        "scaling_groups", "id", name=entry["scaling_group"]
                    )
                if entry.get("domain_id"):
                    row["domain_id"] = entry["domain_id"]
                elif entry.get("domain"):
                    row["domain_id"] = ref("domains", "id", name=entry["domain"])
                add(table, row)
            elif table == "users":
                row = _clean(entry, drop=("projects",))
                if "domain_id" not in row and row.get("domain_name"):
                    row["domain_id"] = ref("domains", "id", name=row["domain_name"])
                if "username" not in row:
                    row[INSERT_DEFAULTS] = {"username": row["email"]}
                add(table, row)
                if entry.get("projects"):
                    user = row.get("uuid") or ref("users", "uuid", email=row["email"])
                    for project in entry["projects"]:
                        if _UUID.match(project):
                            group = project
                        else:
                            if not row.get("domain_name"):
                                raise ValueError(
                                    f"user {row['email']}: give domain_name to name projects "
                                    f"by name ({project!r}), or use the project's UUID"
                                )
                            group = ref(
                                "groups", "id", name=project, domain_name=row["domain_name"]
                            )
                        add("association_groups_users", {"user_id": user, "group_id": group})
            elif table == "keypairs":
                row = _clean(entry, drop=("user_email",))
                if "user" not in row and entry.get("user_email"):
                    row["user"] = ref("users", "uuid", email=entry["user_email"])
                add(table, row)
            else:
                add(table, _clean(entry))
    return tables


def split_insert_defaults(tables):
    """Take the insert-only defaults out of the rows: (rows, {table: [defaults per row]})."""
    clean, defaults = {}, {}
    for table, rows in tables.items():
        for row in rows:
            row = dict(row)
            defaults.setdefault(table, []).append(row.pop(INSERT_DEFAULTS, None) or {})
            clean.setdefault(table, []).append(row)
    return clean, defaults


def merge_tables(typed, generic):
    merged = {table: list(rows) for table, rows in typed.items()}
    for table, rows in (generic or {}).items():
        if table.startswith("__"):
            raise ValueError(f"tables: {table!r} is not a table (fixture modes are not options)")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"tables.{table} must be a list of rows (mappings)")
        merged.setdefault(table, []).extend(copy.deepcopy(rows))
    return merged


def key_label(table, key):
    return "{}[{}]".format(table, ",".join(f"{k}={v}" for k, v in key.items()))


def plan_row(table, info, desired_row, update_secrets):
    """Decide what to do with one declared row.

    ``info`` is the helper's view of the row (exists, current/desired canonical values of the
    ordinary columns, and what it knows about password and secret columns). ``desired_row`` is
    the declared row (with plain-text secrets). Returns (action, columns, warnings) where
    action is "insert", "update" or "none" and columns are the column names to write.
    """
    warnings = []
    if not info["exists"]:
        return "insert", sorted(desired_row), warnings
    desired = info.get("desired") or {}
    current = info.get("current") or {}
    columns = []
    for column in sorted(desired):
        if json_equal(desired[column], current.get(column)):
            continue
        if (table, column) in POLICY_SECRET_COLUMNS and update_secrets != "always":
            continue
        columns.append(column)
    for column, state in sorted((info.get("passwords") or {}).items()):
        if update_secrets != "always":
            continue
        match = state.get("match")
        if match is None:
            match = verify_password_hash(desired_row.get(column), state.get("stored"))
        if match is not True:
            columns.append(column)
    for column, state in sorted((info.get("secrets") or {}).items()):
        if update_secrets != "always":
            continue
        if state.get("state") == "encrypted":
            warnings.append(
                f"{key_label(table, info['key'])}: {column} is stored encrypted and cannot be "
                "compared; left unchanged"
            )
        elif not state.get("match"):
            columns.append(column)
    return ("update" if columns else "none"), sorted(set(columns)), warnings


def masked(table, row):
    return {
        k: (MASK if (table, k) in MASKED_COLUMNS and v is not None else v) for k, v in row.items()
    }


def build_plan(tables, answer, update_secrets, insert_defaults=None):
    """Combine the declared rows and the helper's answer into the write plan and the report."""
    insert_defaults = insert_defaults or {}
    plan = {"insert": {}, "update": {}}
    report = {"tables": {}, "changed_keys": [], "changes": [], "warnings": []}
    diff_before, diff_after = {}, {}
    for table, rows in tables.items():
        infos = answer["tables"][table]["rows"]
        counts = {"inserted": 0, "updated": 0, "unchanged": 0}
        defaults = insert_defaults.get(table) or [{}] * len(rows)
        for desired_row, info, row_defaults in zip(rows, infos, defaults):
            action, columns, warnings = plan_row(table, info, desired_row, update_secrets)
            report["warnings"].extend(warnings)
            label = key_label(table, info["key"])
            if action == "none":
                counts["unchanged"] += 1
                continue
            report["changed_keys"].append(label)
            report["changes"].append(
                {"table": table, "key": info["key"], "action": action, "columns": columns}
            )
            before = {c: (info.get("current") or {}).get(c) for c in columns}
            after = {c: (info.get("desired") or {}).get(c, desired_row.get(c)) for c in columns}
            if action == "insert":
                counts["inserted"] += 1
                plan["insert"].setdefault(table, []).append({**row_defaults, **desired_row})
                diff_before.setdefault(table, {})[label] = None
            else:
                counts["updated"] += 1
                update_row = dict(info["pk"])
                update_row.update({c: desired_row[c] for c in columns})
                plan["update"].setdefault(table, []).append(update_row)
                diff_before.setdefault(table, {})[label] = masked(table, before)
            after = masked(table, after)
            for column in columns:
                if (table, column) in MASKED_COLUMNS or column in (info.get("passwords") or {}):
                    after[column] = MASK + " (new value)"
                    if action == "update":
                        diff_before[table][label][column] = MASK
            diff_after.setdefault(table, {})[label] = after
        report["tables"][table] = counts
    return plan, report, {"before": diff_before, "after": diff_after}


def graph_changes(gaps):
    """The graph rows the helper found missing, one line each."""
    gaps = gaps or {}
    lines = ["personal project of user " + email for email in gaps.get("personal_projects", [])]
    lines += [
        "user {} on the roster of project {}".format(edge["user"], edge["project"])
        for edge in gaps.get("rosters", [])
    ]
    return lines


def _toml_db_password(path):
    """Best effort: the [db] password of a manager.toml, to keep it out of any output."""
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        tomllib = None
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    if tomllib is not None:
        try:
            return ((tomllib.loads(raw.decode("utf-8")).get("db") or {}).get("password"))
        except (ValueError, UnicodeDecodeError):
            return None
    match = re.search(r'^\s*password\s*=\s*"([^"]*)"', raw.decode("utf-8", "replace"), re.M)
    return match.group(1) if match else None


def _collect_secrets(tables):
    values = []
    for table, rows in tables.items():
        for row in rows:
            for column, value in row.items():
                if (table, column) in MASKED_COLUMNS and isinstance(value, str):
                    values.append(value)
    return values


def main():
    secret_sub = {"type": "str", "no_log": True}
    common = {"extra": {"type": "dict"}}

    def spec(**fields):
        out = dict(common)
        out.update(fields)
        return {"type": "list", "elements": "dict", "options": out}

    s = {"type": "str"}
    i = {"type": "int"}
    b = {"type": "bool"}
    d = {"type": "dict"}
    req = {"type": "str", "required": True}
    module = AnsibleModule(
        argument_spec={
            "venv": {"type": "path", "required": True},
            "config": {"type": "path", "required": True},
            "update_secrets": {
                "type": "str",
                "default": "on_create",
                "choices": ["on_create", "always"],
            },
            "connect_timeout": {"type": "int", "default": 10},
            "environment": {"type": "dict", "default": {}},
            "domains": spec(
                name=req, id=s, description=s, is_active=b, total_resource_slots=d,
                allowed_vfolder_hosts=d,
                allowed_docker_registries={"type": "list", "elements": "str"},
                integration_id=s,
            ),
            "user_resource_policies": spec(
                name=req, max_vfolder_count=i, max_quota_scope_size=i,
                max_session_count_per_model_session=i, max_customized_image_count=i,
            ),
            "project_resource_policies": spec(
                name=req, max_vfolder_count=i, max_quota_scope_size=i, max_network_count=i,
            ),
            "keypair_resource_policies": spec(
                name=req,
                default_for_unspecified={"type": "str", "choices": ["LIMITED", "UNLIMITED"]},
                total_resource_slots=d, max_session_lifetime=i, max_concurrent_sessions=i,
                max_pending_session_count=i, max_concurrent_sftp_sessions=i,
                max_containers_per_session=i, idle_timeout=i, allowed_vfolder_hosts=d,
            ),
            "groups": spec(
                id=s, name=req, domain_name=req, description=s, is_active=b,
                type={"type": "str", "choices": ["general", "model-store"]},
                resource_policy=s, total_resource_slots=d, allowed_vfolder_hosts=d,
                integration_id=s,
            ),
            "scaling_groups": spec(
                name=req, id=s, description=s, is_active=b, is_public=b, is_default=b,
                driver=s, driver_opts=d, scheduler=s, scheduler_opts=d, use_host_network=b,
                wsproxy_addr=s, wsproxy_api_token=secret_sub,
            ),
            "sgroups_for_domains": {
                "type": "list",
                "elements": "dict",
                "options": {
                    "scaling_group": s, "resource_group_id": s, "domain": s, "domain_id": s,
                },
                "required_one_of": [["scaling_group", "resource_group_id"],
                                    ["domain", "domain_id"]],
            },
            "users": spec(
                uuid=s, email=req, username=s, password=secret_sub, need_password_change=b,
                full_name=s, description=s,
                status={"type": "str", "choices": ["active", "inactive", "before-verification"]},
                status_info=s, domain_name=s, domain_id=s,
                role={"type": "str", "choices": ["superadmin", "admin", "user", "monitor"]},
                resource_policy=s, projects={"type": "list", "elements": "str"},
            ),
            "keypairs": spec(
                access_key={"type": "str", "required": True, "no_log": False},
                secret_key=secret_sub, user=s, user_email=s, is_active=b, is_admin=b,
                is_default=b, resource_policy=s, rate_limit=i,
            ),
            "resource_slot_types": spec(
                slot_name=req,
                slot_type={"type": "str", "choices": ["count", "bytes", "unique-count"]},
                display_name=s, description=s, display_unit=s, display_icon=s, rank=i,
            ),
            "resource_presets": spec(
                name=req, id=s, resource_slots=d, shared_memory=i, scaling_group_name=s,
            ),
            "container_registries": spec(
                id=s, registry_name=req, url=s,
                type={"type": "str", "choices": ["docker", "harbor", "harbor2", "github",
                                                 "gitlab", "ecr", "ecr-public", "local", "ocp"]},
                project=s, username=s, password=secret_sub, ssl_verify=b, is_global=b,
            ),
            "tables": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        tables, insert_defaults = split_insert_defaults(merge_tables(typed_rows(p), p["tables"]))
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    for table, rows in tables.items():
        for row in rows:
            if table == "keypairs" and "user" not in row:
                module.fail_json(msg=f"keypairs[{row.get('access_key')}]: give user or user_email")

    scrubber = Scrubber()
    config = os.path.abspath(p["config"])
    if not os.path.isfile(config):
        module.fail_json(msg=f"config file not found: {config}")
    if config.endswith(".ini"):
        db_password = url_password(read_ini_option(config, "alembic", "sqlalchemy.url"))
    else:
        db_password = _toml_db_password(config)
    for value in [db_password, *_collect_secrets(tables)]:
        if value:
            scrubber.add(value)
            if len(str(value)) >= 4:
                module.no_log_values.add(value)

    result = {"changed": False, "tables": {}, "changed_keys": [], "changes": [], "graph": []}
    if not tables:
        module.exit_json(**result)

    python = require_executable(module, venv_executable(p["venv"], "python"), "python")
    environ = {str(k): str(v) for k, v in (p["environment"] or {}).items()}
    session = VenvSession(
        module, python, program(_fixture_helper), scrubber,
        cwd=os.path.dirname(config), environ=environ,
    )
    try:
        converge(module, session, p, config, tables, insert_defaults, result)
    finally:
        session.close()


def converge(module, session, p, config, tables, insert_defaults, result):
    base = {"config": config, "timeout": p["connect_timeout"], "tables": tables}
    answer = session.request(dict(base, op="read"))
    plan, report, diff = build_plan(tables, answer, p["update_secrets"], insert_defaults)
    graph = graph_changes(answer.get("graph"))
    result.update(
        changed=bool(report["changed_keys"] or graph),
        tables=report["tables"],
        changed_keys=report["changed_keys"],
        changes=report["changes"],
        graph=graph,
    )
    for warning in report["warnings"]:
        module.warn(warning)
    if module._diff:
        if graph:
            diff["before"]["access graph"] = []
            diff["after"]["access graph"] = graph
        result["diff"] = diff
    if not result["changed"] or module.check_mode:
        module.exit_json(**result)

    after = session.request(dict(base, op="write", graph=bool(graph), **plan))
    left = graph_changes(after.get("graph"))
    if left:
        module.fail_json(
            msg="the access graph is still incomplete after the write: " + "; ".join(left),
            **result,
        )
    # Everything written must now be as declared (secrets follow update_secrets).
    _, check, _ = build_plan(tables, after, p["update_secrets"])
    if check["changed_keys"]:
        module.fail_json(
            msg="rows were written but do not match the declaration afterwards: "  # noqa: S608
            + "; ".join(
                f"{key_label(c['table'], c['key'])} ({c['action']}: {', '.join(c['columns'])})"
                for c in check["changes"]
            )
            + ". An insert is skipped silently when another row already holds one of its "
            "unique values (for example the same e-mail, user name or UUID).",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
