# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Connection options and attributes shared by the harbor_* modules."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  harbor_url:
    description:
      - Address of Harbor, for example C(http://10.20.30.10:7080). The API path C(/api/v2.0) is
        added unless the URL already ends with it.
      - If not given, the environment variable E(HARBOR_URL) is used.
      - Redirects are not followed (the credentials must not go elsewhere unasked); use the
        address Harbor redirects to.
    type: str
    required: true
    aliases: [url]
  harbor_username:
    description:
      - Harbor user the module authenticates as (HTTP basic auth). Creating users and projects,
        changing quotas and reading the user list need a Harbor system administrator.
      - If not given, the environment variable E(HARBOR_USERNAME) is used, then C(admin).
    type: str
  harbor_password:
    description:
      - Password of O(harbor_username). It is never logged nor returned.
      - If not given, the environment variable E(HARBOR_PASSWORD) is used.
    type: str
    required: true
  validate_certs:
    description:
      - Verify Harbor's TLS certificate when O(harbor_url) is C(https://).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed Harbor's certificate.
    type: path
  timeout:
    description:
      - Seconds to wait for each answer from Harbor.
    type: int
    default: 30
notes:
  - The connection options can be set once for all three Harbor modules with
    C(module_defaults) and the action group C(group/backendai.cluster.harbor).
  - Before anything else the module checks the credentials with C(GET /api/v2.0/users/current),
    so a wrong password fails with a clear message (HTTP 401) rather than with a confusing
    answer to a later request.
"""

    # The attributes all three modules share; each module adds its check and diff details.
    ATTRIBUTES = r"""
attributes:
  idempotent:
    description: Running the module again after a successful run reports no change.
    support: full
  action:
    support: none
  async:
    support: full
  bypass_host_loop:
    support: none
  action_group:
    support: full
    membership:
      - backendai.cluster.harbor
  platform:
    platforms: posix
"""
