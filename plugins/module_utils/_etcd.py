# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""etcd v3 JSON-gateway client and Backend.AI key-layout helpers (stdlib only on the node)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json

try:  # the node may run this outside Ansible in unit tests
    from ansible.module_utils.six.moves.urllib.parse import quote
    from ansible.module_utils.urls import open_url
except ImportError:  # pragma: no cover
    from urllib.parse import quote

    open_url = None

ROOT = "/sorna"
# etcd's default --max-txn-ops; larger change sets are split into several transactions.
MAX_TXN_OPS = 128
SECRET_WORDS = ("password", "secret", "token", "key")

# The options of every backendai_etcd* module that say how to reach etcd (doc fragment
# backendai.cluster.etcd).
CONNECTION_ARGUMENT_SPEC = dict(
    endpoints=dict(type="list", elements="str", required=True, aliases=["endpoint"]),
    ca_path=dict(type="path"),
    client_cert=dict(type="path"),
    client_key=dict(type="path"),
    validate_certs=dict(type="bool", default=True),
    timeout=dict(type="int", default=10),
)


def etcd_argument_spec(**options):
    """The connection options plus the module's own options."""
    spec = {name: dict(value) for name, value in CONNECTION_ARGUMENT_SPEC.items()}
    spec.update(options)
    return spec


class EtcdError(Exception):
    """A failure talking to etcd, with a message fit for fail_json."""


def b64e(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def b64d(text):
    return base64.b64decode(text.encode("ascii")).decode("utf-8")


def range_end(prefix):
    """The range_end that selects every key starting with ``prefix`` (last byte plus one)."""
    raw = bytearray(prefix.encode("utf-8"))
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw).decode("utf-8", "surrogateescape")
        raw.pop()
    return "\0"


def scope_prefix(scope, scope_name=None):
    """Path piece that selects a configuration scope, as Backend.AI lays them out."""
    if scope in (None, "", "global"):
        return ""
    if not scope_name:
        raise ValueError("scope '%s' needs scope_name" % scope)
    name = quote(scope_name, safe="")
    if scope == "sgroup":
        return "sgroup/%s/" % name
    if scope == "node":
        return "nodes/agents/%s/" % name
    if scope == "storage_node":
        return "nodes/storage/%s/" % name
    raise ValueError("unknown scope '%s'" % scope)


def mangle(namespace, key, scope="global", scope_name=None):
    """Full etcd key: /sorna/<namespace>/<scope prefix><key>, a leading '/' of key dropped."""
    if not namespace:
        raise ValueError("namespace must not be empty")
    return "%s/%s/%s%s" % (ROOT, namespace, scope_prefix(scope, scope_name), key.lstrip("/"))


def to_text(value):
    """How `backend.ai mgr etcd put-json` stores a leaf: Python's str() of the JSON value."""
    if isinstance(value, str):
        return value
    return str(value)


def flatten(prefix, document):
    """Flatten a nested dict under ``prefix`` exactly as the manager CLI's put-json does.

    Object keys are URL-quoted with nothing kept safe; an empty key stores its value at the
    enclosing prefix itself; leaves are stored as Python str(); an empty object writes nothing.
    """
    out = {}

    def walk(path, node):
        if isinstance(node, dict):
            for k, v in node.items():
                piece = quote(str(k), safe="")
                walk(path + "/" + piece if piece else path, v)
        else:
            out[path] = to_text(node)

    if not isinstance(document, dict):
        out[prefix] = to_text(document)
    else:
        walk(prefix, document)
    return out


def in_subtree(key, base):
    return key == base or key.startswith(base + "/")


def unflatten(base, kvs):
    """Nested dict of the keys below ``base`` (values stay strings; a key that is both a value
    and a parent keeps its value under ``""``, as `mgr etcd get --prefix` shows it)."""
    tree = {}
    for key in sorted(kvs):
        if not in_subtree(key, base):
            continue
        rest = key[len(base):].lstrip("/")
        parts = [p for p in rest.split("/") if p] if rest else []
        node = tree
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last:
                if isinstance(node.get(part), dict):
                    node[part][""] = kvs[key]
                else:
                    node[part] = kvs[key]
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {} if child is None else {"": child}
                    node[part] = child
                node = child
        if not parts:
            tree[""] = kvs[key]
    return tree


def compute_diff(current, desired, exclusive=False, base=None):
    """Return (added, changed, removed) key lists turning ``current`` into ``desired``."""
    added = sorted(k for k in desired if k not in current)
    changed = sorted(k for k in desired if k in current and current[k] != desired[k])
    removed = []
    if exclusive:
        removed = sorted(k for k in current
                         if k not in desired and (base is None or in_subtree(k, base)))
    return added, changed, removed


def is_secret_key(key):
    last = key.rstrip("/").rsplit("/", 1)[-1].lower()
    return any(word in last for word in SECRET_WORDS)


def render(kvs, show_secrets=False, strip=""):
    lines = []
    for key in sorted(kvs):
        value = kvs[key]
        if not show_secrets and is_secret_key(key):
            value = "********"
        shown = key[len(strip):] if strip and key.startswith(strip) else key
        lines.append("%s = %s" % (shown, value))
    return "\n".join(lines) + ("\n" if lines else "")


class Gateway:
    """Minimal client of etcd's v3 JSON gateway (POST /v3/kv/*)."""

    def __init__(self, endpoints, user=None, password=None, ca_path=None, client_cert=None,
                 client_key=None, validate_certs=True, timeout=10, opener=None):
        if isinstance(endpoints, str):
            endpoints = [endpoints]
        self.endpoints = [self._normalize(e) for e in endpoints if e]
        if not self.endpoints:
            raise EtcdError("no etcd endpoint given")
        self.user = user
        self.password = password
        self.ca_path = ca_path
        self.client_cert = client_cert
        self.client_key = client_key
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.opener = opener or open_url
        self.token = None

    @staticmethod
    def _normalize(endpoint):
        endpoint = endpoint.strip().rstrip("/")
        if "://" not in endpoint:
            endpoint = "http://" + endpoint
        return endpoint

    def _post(self, path, body, auth=True):
        """POST to the first endpoint that answers. Returns ``(answer, None)``, or
        ``(None, (endpoint, HTTP code, etcd's JSON error or {}, exception))`` when etcd answered
        with an error status. Raises EtcdError when no endpoint answers at all."""
        headers = {"Content-Type": "application/json"}
        if auth and self.token:
            headers["Authorization"] = self.token
        errors = []
        for endpoint in self.endpoints:
            try:
                resp = self.opener(
                    endpoint + path, data=json.dumps(body), headers=headers, method="POST",
                    timeout=self.timeout, validate_certs=self.validate_certs,
                    ca_path=self.ca_path, client_cert=self.client_cert,
                    client_key=self.client_key)
                return json.loads(resp.read() or b"{}"), None
            except Exception as exc:  # noqa: BLE001 - every failure becomes one message
                code = getattr(exc, "code", None)
                if code is not None:
                    answer = {}
                    try:
                        answer = json.loads(exc.read() or b"{}")
                    except Exception:  # noqa: BLE001, S110
                        pass
                    return None, (endpoint, code, answer, exc)
                errors.append("%s: %s" % (endpoint, getattr(exc, "reason", exc)))
        raise EtcdError("cannot reach etcd (%s)" % "; ".join(errors))

    def _raw(self, path, body, auth=True):
        answer, failure = self._post(path, body, auth)
        if failure is None:
            return answer
        endpoint, code, error, exc = failure
        detail = error.get("message", "")
        if code == 401 or "authentication failed" in detail or \
                "invalid auth token" in detail or "user name is empty" in detail:
            raise EtcdError("etcd at %s refused the credentials (HTTP %s: %s)"
                            % (endpoint, code, detail or "unauthorized"))
        raise EtcdError("etcd at %s answered HTTP %s on %s: %s"
                        % (endpoint, code, path, detail or exc))

    def request(self, path, body, auth=True):
        """POST ``body`` to ``path``; return ``(answer, None)``, or ``(None, message)`` when etcd
        answered with an error (HTTP status >= 400 carrying etcd's JSON error). Connection
        failures still raise EtcdError."""
        answer, failure = self._post(path, body, auth)
        if failure is None:
            return answer, None
        _endpoint, code, error, _exc = failure
        return None, error.get("message") or error.get("error") or "HTTP %s" % code

    def authenticate(self):
        if not self.user:
            return
        result = self._raw("/v3/auth/authenticate",
                           {"name": self.user, "password": self.password or ""}, auth=False)
        self.token = result.get("token")
        if not self.token:
            raise EtcdError("etcd did not return an auth token for user '%s'" % self.user)

    def call(self, path, body):
        if self.user and not self.token:
            self.authenticate()
        return self._raw(path, body)

    def range(self, key, prefix=False, end=None):
        body = {"key": b64e(key)}
        if prefix or end:
            body["range_end"] = b64e(end or range_end(key))
        result = self.call("/v3/kv/range", body)
        return {b64d(kv["key"]): b64d(kv.get("value", "")) for kv in result.get("kvs", [])}

    def subtree(self, base, include_base=True):
        """Every key equal to ``base`` or below ``base/`` (one request). Without ``base`` itself
        the range starts at ``base/``: a user whose role is limited to a namespace may read
        ``/sorna/<ns>/...`` but not ``/sorna/<ns>``."""
        start = base if include_base else base + "/"
        kvs = self.range(start, end=range_end(base + "/"))
        return {k: v for k, v in kvs.items() if in_subtree(k, base)}

    def txn(self, puts, deletes):
        ops = [{"requestPut": {"key": b64e(k), "value": b64e(v)}} for k, v in sorted(puts.items())]
        ops += [{"requestDeleteRange": {"key": b64e(k)}} for k in sorted(deletes)]
        for start in range(0, len(ops), MAX_TXN_OPS):
            result = self.call("/v3/kv/txn", {"success": ops[start:start + MAX_TXN_OPS]})
            if result.get("succeeded") is False:
                raise EtcdError("etcd rejected the transaction")
        return len(ops)

    def version(self):
        return self.call_get("/version")

    def call_get(self, path):
        errors = []
        for endpoint in self.endpoints:
            try:
                resp = self.opener(endpoint + path, method="GET", timeout=self.timeout,
                                   validate_certs=self.validate_certs, ca_path=self.ca_path,
                                   client_cert=self.client_cert, client_key=self.client_key)
                return json.loads(resp.read() or b"{}")
            except Exception as exc:  # noqa: BLE001
                errors.append("%s: %s" % (endpoint, getattr(exc, "reason", exc)))
        raise EtcdError("cannot reach etcd (%s)" % "; ".join(errors))
