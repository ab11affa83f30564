#!/usr/bin/python
# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Bring a Backend.AI database schema to the head revision of the installed package."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: backendai_alembic
short_description: Create or upgrade the database schema of a Backend.AI service
version_added: "0.1.0"
description:
  - Reads the schema revision of the database of the Backend.AI manager or of the app-proxy
    coordinator and compares it with the migration scripts shipped in the installed package.
  - An empty database gets the whole schema in one step with the service's own
    C(schema oneshot) command, which creates every table and stamps the head revision.
    Plain C(alembic upgrade head) is never run on an empty manager database, because the old
    migrations in the chain fail there.
  - A database behind the head revision is upgraded with C(alembic upgrade head).
  - A database already at the head revision is left alone (C(changed=false)).
  - A database stamped with a revision the installed scripts do not know (usually because a
    newer Backend.AI package migrated it and an older one is installed now), a database with
    tables but no revision stamp, and a script directory with several heads are refused with a
    message naming the revisions.
  - The revision is read by a short program run with the virtualenv's own Python and alembic
    API (C(MigrationContext) for the database, C(ScriptDirectory) for the scripts). That gives
    the exact list of pending revisions and tells "unknown revision" apart from "behind",
    which the text output of C(alembic current) or C(backend.ai mgr schema show) does not.
  - The database URL, including its password, is read from the alembic ini file only. The
    password never appears in the module's output or error messages.
  - The module runs on the managed node with its system Python (standard library only); the
    service virtualenv provides alembic, SQLAlchemy and asyncpg.
author:
  - backendai.cluster maintainers
options:
  venv:
    description:
      - Path of the service virtualenv (the one holding C(bin/backend.ai), C(bin/alembic) and
        C(bin/python)).
    type: path
    required: true
  config:
    description:
      - Path of the alembic ini file. Its C([alembic]) section must set C(script_location) and
        C(sqlalchemy.url).
      - For the manager C(script_location) is C(ai.backend.manager.models:alembic); for the
        app-proxy coordinator it is C(ai.backend.appproxy.coordinator.models:alembic). A
        file pointing at the other service is refused.
    type: path
    required: true
  service:
    description:
      - Which service owns the database. Selects the CLI group used for C(schema oneshot)
        (C(backend.ai mgr) or C(backend.ai app-proxy-coordinator)) and the expected
        C(script_location).
    type: str
    choices: [manager, appproxy_coordinator]
    default: manager
  state:
    description:
      - C(latest) creates or upgrades the schema up to the head revision.
      - C(current) only reports the revisions and what would be done; it never writes.
    type: str
    choices: [current, latest]
    default: latest
  chdir:
    description:
      - Working directory for the commands. Defaults to the directory of O(config).
    type: path
  environment:
    description:
      - Extra environment variables for the commands (for example C(BACKEND_CONFIG_FILE)).
    type: dict
    default: {}
  connect_timeout:
    description:
      - Seconds to wait for the database connection before giving up.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the revisions and reports the action and pending revisions without running them.
  diff_mode:
    support: full
    details: Shows the database revision before and after.
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
  platform:
    platforms: posix
notes:
  - The database itself (and its owner role) must exist; see C(community.postgresql).
  - A failed C(schema oneshot) or upgrade is reported with the last error line of the command;
    the full (password-free) error output is returned in RV(stderr).
seealso:
  - module: backendai.cluster.backendai_fixture
"""

EXAMPLES = r"""
- name: Create or upgrade the manager schema
  backendai.cluster.backendai_alembic:
    venv: /opt/backend.ai/manager
    config: /etc/backend.ai/alembic.ini
    service: manager
  register: manager_schema

- name: Create or upgrade the app-proxy coordinator schema
  backendai.cluster.backendai_alembic:
    venv: /opt/backend.ai/appproxy-coordinator
    config: /etc/backend.ai/alembic-appproxy.ini
    service: appproxy_coordinator

- name: Only report whether an upgrade is pending (for example before a maintenance window)
  backendai.cluster.backendai_alembic:
    venv: /opt/backend.ai/manager
    config: /etc/backend.ai/alembic.ini
    state: current
  register: schema
- name: Show the pending revisions
  ansible.builtin.debug:
    msg: "{{ schema.revision_before }} -> {{ schema.head }}: {{ schema.pending | length }} pending"
"""

RETURN = r"""
changed:
  description: Whether the schema was created or upgraded (or would be, in check mode).
  returned: always
  type: bool
action:
  description: What was done (or would be done in check mode or with O(state=current)).
  returned: always
  type: str
  choices: [none, oneshot, upgrade]
  sample: oneshot
revision_before:
  description: Revision stamped in the database before the run; null for an empty database.
  returned: always
  type: str
  sample: null
revision_after:
  description:
    - Revision stamped in the database after the run. Equal to RV(revision_before) when
      nothing ran (check mode, O(state=current), or already at head).
  returned: always
  type: str
  sample: d1117da8d8bd
head:
  description: Head revision of the migration scripts installed in the virtualenv.
  returned: always
  type: str
  sample: d1117da8d8bd
pending:
  description:
    - Revisions between the database and the head, oldest first. Empty for an empty database
      (C(schema oneshot) creates the head schema directly) and for a database at head.
  returned: always
  type: list
  elements: str
  sample: [a91c4e7d0b35, d17b4e9c25a8, d1117da8d8bd]
database:
  description: Host, port and name of the database, without credentials.
  returned: always
  type: str
  sample: 127.0.0.1:5432/backend
stdout:
  description: Output of the command that ran (passwords removed).
  returned: when a command ran
  type: str
stderr:
  description: Error output of the command that ran (passwords removed).
  returned: when a command ran
  type: str
"""

import os  # noqa: E402 - the documentation strings come first in Ansible modules

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.backendai.cluster.plugins.module_utils import (  # noqa: E402
    _alembic_probe,
)
from ansible_collections.backendai.cluster.plugins.module_utils._backendai import (  # noqa: E402
    Scrubber,
    VenvSession,
    last_error_line,
    read_ini_option,
    require_executable,
    run_command,
    url_password,
    venv_executable,
)
from ansible_collections.backendai.cluster.plugins.module_utils._venv_prelude import (  # noqa: E402
    program,
)

SERVICES = {
    "manager": {
        "cli": ["mgr"],
        "script_location": "ai.backend.manager.models:alembic",
    },
    "appproxy_coordinator": {
        "cli": ["app-proxy-coordinator"],
        "script_location": "ai.backend.appproxy.coordinator.models:alembic",
    },
}

def main():
    module = AnsibleModule(
        argument_spec={
            "venv": {"type": "path", "required": True},
            "config": {"type": "path", "required": True},
            "service": {
                "type": "str",
                "default": "manager",
                "choices": list(SERVICES),
            },
            "state": {"type": "str", "default": "latest", "choices": ["current", "latest"]},
            "chdir": {"type": "path"},
            "environment": {"type": "dict", "default": {}},
            "connect_timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    service = SERVICES[params["service"]]
    config = os.path.abspath(params["config"])
    params["config"] = config
    if not os.path.isfile(config):
        module.fail_json(msg=f"alembic config file not found: {config}")
    cwd = params["chdir"] or os.path.dirname(config)
    environ = {str(k): str(v) for k, v in (params["environment"] or {}).items()}

    scrubber = Scrubber()
    url = read_ini_option(config, "alembic", "sqlalchemy.url")
    password = url_password(url)
    if password:
        scrubber.add(password)
        module.no_log_values.add(password)
    location = read_ini_option(config, "alembic", "script_location")
    if location and location.strip() != service["script_location"]:
        module.fail_json(
            msg=f"{config} sets script_location = {location.strip()}, but service="
            f"{params['service']} expects {service['script_location']}; "
            "is this the ini file of another service?"
        )

    python = require_executable(module, venv_executable(params["venv"], "python"), "python")
    request = {"config": config, "timeout": params["connect_timeout"],
               "check_mode": module.check_mode}
    session = VenvSession(
        module, python, program(_alembic_probe), scrubber, cwd=cwd, environ=environ
    )
    try:
        converge(module, session, request, params, service, scrubber, cwd, environ)
    finally:
        session.close()


def converge(module, session, request, params, service, scrubber, cwd, environ):
    config = request["config"]
    before = session.request(request)
    heads = before["heads"]
    current = before["current"]
    result = {
        "changed": False,
        "action": "none",
        "revision_before": current[0] if len(current) == 1 else (current or None),
        "head": heads[0] if len(heads) == 1 else heads,
        "pending": before["pending"],
        "database": before["database"],
    }
    result["revision_after"] = result["revision_before"]

    if len(heads) != 1:
        module.fail_json(
            msg=f"the migration scripts in {params['venv']} have {len(heads)} heads "
            f"({', '.join(heads) or 'none'}); refusing to choose one",
            **result,
        )
    head = heads[0]
    if before["unknown"]:
        module.fail_json(
            msg=f"the database {before['database']} is at revision "
            f"{', '.join(before['unknown'])}, which the migration scripts installed in "
            f"{params['venv']} (head {head}) do not know. A newer Backend.AI package has "
            "probably migrated this database (an older package is installed now, i.e. a "
            "downgrade), or the ini file points at another service's database. Install the "
            "package version that matches the database; never downgrade the schema by hand.",
            **result,
        )
    if len(current) > 1:
        module.fail_json(
            msg=f"the database {before['database']} is stamped with several revisions "
            f"({', '.join(current)}); resolve this with alembic by hand",
            **result,
        )
    if not current and before["tables"]:
        module.fail_json(
            msg=f"the database {before['database']} has {before['tables']} tables but no "
            "alembic revision stamp; refusing to create the schema over existing tables "
            f"(stamp the matching revision with alembic, then rerun; head is {head})",
            **result,
        )

    if not current:
        action = "oneshot"
    elif current[0] != head:
        action = "upgrade"
    else:
        action = "none"

    result["action"] = action
    if params["state"] == "current":
        result["msg"] = "at head" if action == "none" else f"{action} needed to reach {head}"
        module.exit_json(**result)
    if action == "none":
        module.exit_json(**result)

    result["changed"] = True
    result["diff"] = {
        "before": {"revision": result["revision_before"]},
        "after": {"revision": head},
    }
    if module.check_mode:
        module.exit_json(**result)

    if action == "oneshot":
        backend_ai = require_executable(
            module, venv_executable(params["venv"], "backend.ai"), "backend.ai CLI"
        )
        argv = [backend_ai, *service["cli"], "schema", "oneshot", "-f", config]
    else:
        alembic = require_executable(module, venv_executable(params["venv"], "alembic"), "alembic")
        argv = [alembic, "-c", config, "upgrade", "head"]
    rc, out, err = run_command(module, argv, scrubber, cwd=cwd, environ=environ, data=b"")
    result["stdout"] = out
    result["stderr"] = err
    if rc != 0:
        module.fail_json(
            msg=f"{' '.join(argv[1:4]) if action == 'oneshot' else 'alembic upgrade head'} "
            f"failed (rc={rc}): {last_error_line(err or out)}",
            rc=rc,
            **result,
        )
    after = session.request(dict(request, light=True))
    result["revision_after"] = after["current"][0] if len(after["current"]) == 1 else (
        after["current"] or None
    )
    if after["current"] != [head]:
        module.fail_json(
            msg=f"{action} finished (rc=0) but the database is at "
            f"{result['revision_after']} instead of {head}: {last_error_line(err or out)}",
            **result,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
