#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: backendai_etcd
short_description: Manage Backend.AI configuration keys in etcd
version_added: "0.1.0"
description:
  - Reads, writes and deletes keys in the etcd namespace layout Backend.AI uses
    (C(/sorna/<namespace>/<scope>/<key>)), the job of C(backend.ai mgr etcd put), C(put-json),
    C(get) and C(delete) in the install guide.
  - Talks to etcd's v3 JSON gateway over HTTP(S) with the Python standard library only, so the
    node needs no gRPC library and no Backend.AI virtualenv.
  - Reads the current keys with one range request, computes the difference and writes only that
    difference in one transaction (split only above etcd's 128 operations per transaction).
  - A nested O(document) is flattened with exactly the semantics of the manager CLI's
    C(etcd put-json) - object keys are URL-quoted, an empty key stores its value at the prefix
    itself, leaves are stored as Python C(str()) (C(true) becomes C(True), lists become
    C(['a', 'b'])). Write strings (C("false")) when the exact text matters.
author:
  - backendai.cluster contributors
extends_documentation_fragment:
  - backendai.cluster.etcd
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads etcd and reports what would change; writes nothing.
  diff_mode:
    support: full
    details: Shows the keys before and after as C(key = value) lines; values of keys whose
      last segment contains password, secret, token or key are masked unless O(diff_show_secrets).
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
    details: Only keys whose value differs are written.
  platform:
    platforms: posix
options:
  namespace:
    description: Backend.AI's etcd namespace (C([etcd] namespace) in manager.toml).
    type: str
    default: local
  scope:
    description:
      - Configuration scope. V(global) has no extra prefix, V(sgroup) is C(sgroup/<scope_name>/),
        V(node) is an agent's C(nodes/agents/<scope_name>/) and V(storage_node) a storage
        proxy's C(nodes/storage/<scope_name>/).
    type: str
    choices: [global, sgroup, node, storage_node]
    default: global
  scope_name:
    description: Resource group, agent id or storage node id for O(scope) other than V(global).
    type: str
  key:
    description:
      - Key or prefix under the namespace (and scope), for example V(config/redis). Used as
        given, like the CLI's KEY argument; quote pieces that contain C(/) yourself.
      - An empty key (V("")) stands for the whole namespace (or scope). It is accepted only to
        read (V(get)) and to merge a O(document) whose top-level keys are the roots
        (C(config), C(volumes)), like C(put-json "" FILE); deleting, O(exclusive) and single
        values are refused.
    type: str
    required: true
  value:
    description: Value of the single key O(key). Mutually exclusive with O(document).
    type: raw
  document:
    description:
      - Nested dictionary flattened under O(key) with C(put-json) semantics.
      - Mutually exclusive with O(value).
    type: dict
  exclusive:
    description:
      - With O(document) - also delete keys below O(key) that the document does not contain
        (substitute instead of merge). The CLI's put-json only merges.
    type: bool
    default: false
  state:
    description:
      - V(present) writes O(value) or O(document).
      - V(absent) deletes O(key), and with O(prefix) everything below it.
      - V(get) only reads and returns the value (single key) or the nested document (O(prefix)).
    type: str
    choices: [present, absent, get]
    default: present
  prefix:
    description: With V(absent) or V(get), act on O(key) and every key below C(<key>/).
    type: bool
    default: false
  user:
    description: etcd user when client authentication is enabled.
    type: str
  password:
    description: Password of O(user).
    type: str
  diff_show_secrets:
    description: Show secret-looking values in the diff instead of masking them.
    type: bool
    default: false
notes:
  - Values are plain UTF-8 strings in etcd; O(value) is converted with Python's C(str()), so
    V(true) is stored as C(True) just like the CLI stores it.
  - The manager reads C(volumes/proxies/*) only at startup; restart it after changing them.
seealso:
  - name: Backend.AI configuration in etcd
    description: The verified key layout is summarised in the collection's README.
    link: https://github.com/lablup/backend.ai
"""

EXAMPLES = r"""
- name: Point every Backend.AI service at Redis
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    key: config/redis
    document:
      addr: 10.20.30.10:8110
      password: "{{ bai_redis_password }}"
  no_log: true

- name: Register the storage proxy and its volume (what `put-json volumes` does in the guide)
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    key: volumes
    document:
      _types: {user: "", group: ""}
      default_host: sp1:nas
      exposed_volume_info: percentage
      proxies:
        sp1:
          client_api: http://10.20.30.12:6021
          manager_api: http://10.20.30.12:6022
          secret: "{{ bai_storage_proxy_manager_token }}"
          ssl_verify: "false"
  no_log: true

- name: Write config and volumes keys in one transaction (like put-json "" FILE)
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    key: ""
    document:
      config:
        redis: {addr: "10.20.30.10:8110", password: "{{ bai_redis_password }}"}
        docker: {image: {auto_pull: tag}}
      volumes:
        _types: {user: "", group: ""}
        default_host: sp1:nas
  no_log: true

- name: Pull images automatically in resource group gpu only
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    scope: sgroup
    scope_name: gpu
    key: config/docker/image/auto_pull
    value: digest

- name: Read the whole volumes subtree
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    key: volumes
    state: get
    prefix: true
  register: volumes

- name: Remove an obsolete subtree
  backendai.cluster.backendai_etcd:
    endpoints: http://10.20.30.10:8120
    key: config/docker/registry
    state: absent
    prefix: true
"""

RETURN = r"""
keys_added:
  description: Keys (relative to the namespace and scope) that were or would be created.
  returned: state is present
  type: list
  elements: str
  sample: [volumes/default_host]
keys_changed:
  description: Keys whose value was or would be replaced.
  returned: state is present
  type: list
  elements: str
keys_removed:
  description: Keys that were or would be deleted.
  returned: state is absent, or present with exclusive
  type: list
  elements: str
value:
  description: Value of O(key) (V(get) without O(prefix)); null when the key does not exist.
  returned: state is get and prefix is false
  type: str
document:
  description: Nested dictionary of the keys below O(key), values as strings.
  returned: state is get and prefix is true
  type: dict
  sample: {_types: {group: "", user: ""}, default_host: "sp1:nas"}
exists:
  description: Whether O(key) (or anything below it, with O(prefix)) exists.
  returned: state is get
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.backendai.cluster.plugins.module_utils._etcd import (
    EtcdError,
    Gateway,
    compute_diff,
    etcd_argument_spec,
    flatten,
    in_subtree,
    is_secret_key,
    mangle,
    render,
    to_text,
    unflatten,
)


def main():
    module = AnsibleModule(
        argument_spec=etcd_argument_spec(
            namespace=dict(type="str", default="local"),
            scope=dict(type="str", default="global",
                       choices=["global", "sgroup", "node", "storage_node"]),
            scope_name=dict(type="str"),
            key=dict(type="str", required=True, no_log=False),
            value=dict(type="raw"),
            document=dict(type="dict"),
            exclusive=dict(type="bool", default=False),
            state=dict(type="str", default="present", choices=["present", "absent", "get"]),
            prefix=dict(type="bool", default=False),
            user=dict(type="str"),
            password=dict(type="str", no_log=True),
            diff_show_secrets=dict(type="bool", default=False),
        ),
        mutually_exclusive=[["value", "document"]],
        required_if=[["scope", "sgroup", ["scope_name"]], ["scope", "node", ["scope_name"]],
                     ["scope", "storage_node", ["scope_name"]]],
        required_by={"password": "user"},
        supports_check_mode=True,
    )
    p = module.params
    state = p["state"]
    if state == "present" and p["value"] is None and p["document"] is None:
        module.fail_json(msg="state=present needs value (one key) or document (a nested dict)")
    if state != "present" and (p["value"] is not None or p["document"] is not None):
        module.fail_json(msg="value and document are only used with state=present")
    if p["exclusive"] and p["document"] is None:
        module.fail_json(msg="exclusive=true needs document")
    # An empty key means the whole namespace (or scope). Reading it, and merging a document
    # into it (the CLI's `put-json "" FILE`), are safe; deleting or replacing it is refused.
    whole = not p["key"].strip("/")
    if whole and (state == "absent" or p["value"] is not None or p["exclusive"]):
        module.fail_json(msg="key must not be empty: refusing to write or delete the whole "
                             "namespace '%s' (only a document merged into it is allowed)"
                         % p["namespace"])

    try:
        base = mangle(p["namespace"], p["key"], p["scope"], p["scope_name"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if whole:
        base = base.rstrip("/")

    # Values of secret-looking keys (password, secret, token, key) are masked wherever Ansible
    # prints this task, as if they had been no_log options.
    leaves = flatten(base, p["document"]) if p["document"] is not None else (
        {base: to_text(p["value"])} if p["value"] is not None else {})
    for leaf_key, leaf_value in leaves.items():
        if is_secret_key(leaf_key) and len(leaf_value) >= 3:
            module.no_log_values.add(leaf_value)
    strip = base + "/" if whole else base[: len(base) - len(p["key"].lstrip("/"))]

    def rel(keys):
        return [k[len(strip):] for k in keys]

    gw = Gateway(p["endpoints"], user=p["user"], password=p["password"], ca_path=p["ca_path"],
                 client_cert=p["client_cert"], client_key=p["client_key"],
                 validate_certs=p["validate_certs"], timeout=p["timeout"])
    try:
        subtree = (state in ("get", "absent") and p["prefix"]) \
            or p["document"] is not None
        current = gw.subtree(base, include_base=not whole) if subtree else gw.range(base)

        if state == "get":
            if p["prefix"]:
                module.exit_json(changed=False, exists=bool(current),
                                 document=unflatten(base, current))
            module.exit_json(changed=False, exists=base in current, value=current.get(base))

        if state == "absent":
            removed = sorted(current) if p["prefix"] else sorted(k for k in current if k == base)
            result = dict(changed=bool(removed), keys_removed=rel(removed))
            if module._diff:
                result["diff"] = dict(
                    before=render(current, p["diff_show_secrets"], strip),
                    after=render({k: v for k, v in current.items() if k not in removed},
                                 p["diff_show_secrets"], strip))
            if removed and not module.check_mode:
                gw.txn({}, removed)
            module.exit_json(**result)

        if p["document"] is not None:
            desired = flatten(base, p["document"])
        else:
            desired = {base: to_text(p["value"])}
        added, changed, removed = compute_diff(current, desired, p["exclusive"], base)
        after = dict(current)
        after.update(desired)
        for k in removed:
            after.pop(k, None)
        result = dict(changed=bool(added or changed or removed), keys_added=rel(added),
                      keys_changed=rel(changed), keys_removed=rel(removed))
        if module._diff:
            scope = {k: v for k, v in current.items() if in_subtree(k, base)}
            result["diff"] = dict(
                before=render(scope, p["diff_show_secrets"], strip),
                after=render({k: v for k, v in after.items() if in_subtree(k, base)},
                             p["diff_show_secrets"], strip))
        if result["changed"] and not module.check_mode:
            gw.txn({k: desired[k] for k in added + changed}, removed)
        module.exit_json(**result)
    except EtcdError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
