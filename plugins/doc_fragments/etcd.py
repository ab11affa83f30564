# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""How the backendai_etcd* modules reach etcd: the endpoints and the TLS options."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  endpoints:
    description:
      - etcd client URL(s), for example V(http://10.20.30.10:8120). Several members are tried
        in order until one answers. A bare C(host:port) means C(http://host:port).
    type: list
    elements: str
    required: true
    aliases: [endpoint]
  ca_path:
    description: CA bundle to verify an HTTPS endpoint.
    type: path
  client_cert:
    description: Client certificate for mutual TLS.
    type: path
  client_key:
    description: Private key of O(client_cert).
    type: path
  validate_certs:
    description: Verify the endpoint's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each request.
    type: int
    default: 10
notes:
  - The modules talk to etcd's v3 JSON gateway (C(POST /v3/...)) with the Python standard
    library only, so the node needs neither C(etcdctl) nor an etcd Python package.
  - The connection options can be set once for both modules with C(module_defaults) and the
    action group C(group/backendai.cluster.etcd).
"""
