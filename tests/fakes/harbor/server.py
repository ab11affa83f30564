#!/usr/bin/env python3
"""A stand-in for Harbor's v2.0 REST API and token service, the Harbor side of the stand-in.

What is real and what is faked: in the test-bed Harbor stand-in (tests/images/harbor-standin)
the registry protocol is real. Image pushes and pulls go, as in Harbor, through nginx to a real
CNCF distribution registry (Debian's docker-registry), which stores the blobs and manifests.
This program fakes the rest, Harbor's own part: the REST API (users, projects, members, quotas,
ping, health, system info, repositories and artifacts), the token service, the registry base
``/v2/`` and the decision nginx asks for before it passes a registry request on.

Every REST request is checked against ``harbor-api-subset.yaml`` (our own description of the
part of Harbor's API that backendai.cluster and Backend.AI's manager use): the path and method,
the path, query and header parameters, and the JSON body (with jsonschema). In strict mode (the
default) a request that does not match is answered with HTTP 400 in Harbor's error shape
``{"errors": [{"code": "BAD_REQUEST", "message": ...}]}``; without strict mode the mismatch is
only logged. Unknown paths get 404 and unknown methods 405, as from Harbor. Answers are checked
against the description too; a mismatch there is a bug of the fake, logged and recorded in
``FakeHarbor.violations``.

Behaviour follows Harbor's handlers where clients can observe it: HTTP basic auth against local
users (the admin's initial password comes from ``--admin-password``; a failed login makes the
request anonymous, optionally after a delay like Harbor's 1.5 s lock), 201 with a Location
header on creation, 409 for existing names, 404 for missing objects, 401/403 for missing rights,
Harbor's password, email, name and quota rules, X-Total-Count and Link headers on lists
(``page``/``page_size``, default page size 10), and X-Request-Id on every answer. Harbor's
default project ``library`` exists from the start, and the creator of a project becomes its
project admin. Deliberate simplifications: only the local database authentication exists, there
are no groups or robots, and the REST permissions are "system admin" or "project admin member"
(other members may read).

The registry side:

* ``GET /v2/`` answers 200 to a token of this fake or to good basic-auth credentials (Harbor
  accepts both; Backend.AI's manager sends basic auth), else 401 with a
  ``Www-Authenticate: Bearer realm=".../service/token",service="harbor-registry"`` challenge.
* ``GET /service/token`` gives a token for valid basic-auth credentials, 401 for wrong ones and
  an anonymous token without credentials.
* ``GET /service/registry-auth`` is the question of nginx's auth_request: may the request in
  X-Original-Method and X-Original-URI, with this Authorization header, go on to the registry?
  (``registry_access``: pull from a public project for everyone, from a private one for its
  members; push for project admins, developers and maintainers; system admins everything; the
  catalog for system admins only.) 200, or the refusal the client gets: 401 with the challenge
  for anonymous callers, 403 with an error body for authenticated ones.
* With ``--registry-url`` the repositories and artifacts endpoints show what that registry
  holds, read through its own API (catalog, tag lists, manifests): repositories of a project,
  artifacts (one per manifest digest that has a tag, with its tags, media types, size and, for
  manifest lists and OCI indexes, the child references). IDs and push times are handed out when
  the fake first sees a repository, artifact or tag (Harbor keeps them in its database); pull
  counts and times, labels, scan reports and accessories do not exist. Without the option there
  are no repositories.

State lives in memory; with ``--state-file`` it is also written to that JSON file after every
change (password hashes only, never passwords) and read back on start, so a restarted fake keeps
its users and projects. As with Harbor, ``--admin-password`` only applies when the state is
created.

Run it as a program::

    python3 tests/fakes/harbor/server.py --host 127.0.0.1 --port 7080 --admin-password Secret123
    python3 -m tests.fakes.harbor --port 7080          # from the repository root

or use it from Python (tests)::

    with FakeHarbor(admin_password="Secret123") as fake:
        ... fake.url ...  fake.state.users ...

Needs Python 3.9+, PyYAML and jsonschema.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jsonschema
import yaml

SPEC_FILE = Path(__file__).resolve().with_name("harbor-api-subset.yaml")
API_PREFIX = "/api/v2.0"
DEFAULT_ADMIN_PASSWORD = "Harbor12345"
FAKE_VERSION = "v2.13.0-fake"
LOG = logging.getLogger("harbor-fake")

ROLES = {1: "projectAdmin", 2: "developer", 3: "guest", 4: "maintainer", 5: "limitedGuest"}
ILLEGAL_NAME_CHARS = ',"~#%$'
PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
EMAIL = re.compile(r"^[^<>()\[\]\\.,;:\s@\"]+(\.[^<>()\[\]\\.,;:\s@\"]+)*@([A-Za-z0-9-]+\.)+"
                   r"[A-Za-z]{2,}$")
MAX_STORAGE = 1024 ** 5
HEALTH_COMPONENTS = ("core", "database", "jobservice", "portal", "redis", "registry",
                     "registryctl")
REGISTRY_BASE = ("/v2", "/v2/")
TOKEN_SERVICE = "/service/token"
# Asked by the reverse proxy (nginx auth_request) before it passes a registry request on; the
# request it decides on comes in X-Original-Method and X-Original-URI.
REGISTRY_AUTH = "/service/registry-auth"
REGISTRY_SERVICE = "harbor-registry"
PULL_METHODS = ("GET", "HEAD")
PUSH_METHODS = ("POST", "PUT", "PATCH", "DELETE")
PUSH_ROLES = (1, 2, 4)  # projectAdmin, developer, maintainer
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REGISTRY_PATH = re.compile(
    rf"^/v2/(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)/"
    r"(?:manifests/[^/]+|blobs/uploads/?[^/]*|blobs/[^/]+|tags/list|referrers/[^/]+)$"
)
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
IMAGE_CONFIG_TYPES = ("application/vnd.docker.container.image.v1+json",
                      "application/vnd.oci.image.config.v1+json")
NEVER = "0001-01-01T00:00:00.000Z"  # Harbor's pull_time of an artifact nobody pulled
TOKEN_LIFETIME = 1800  # seconds, Harbor's default token expiration (30 minutes)
PBKDF2_ROUNDS = 1000  # a test double: quick logins matter more than slow cracking


def now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


class ApiError(Exception):
    """An answer in Harbor's error shape."""

    CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
             405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION",
             500: "UNKNOWN"}

    def __init__(self, status, message=None, code=None):
        super().__init__(message)
        self.status = status
        self.code = code or self.CODES.get(status, "UNKNOWN")
        self.message = message or {
            400: "bad request", 401: "unauthorized", 403: "forbidden",
            404: "resource not found", 409: "resource conflict",
            412: "precondition failed",
        }.get(status, "internal server error")

    def body(self):
        return {"errors": [{"code": self.code, "message": self.message}]}


# ---------------------------------------------------------------------------------------------
# The API description and request validation
# ---------------------------------------------------------------------------------------------


class Operation:
    def __init__(self, method, template, spec, path_item, components):
        self.method = method
        self.template = template
        self.spec = spec
        self.operation_id = spec["operationId"]
        self.components = components
        params = {}
        for raw in list(path_item.get("parameters", [])) + list(spec.get("parameters", [])):
            param = self.resolve(raw)
            params[(param["name"].lower() if param["in"] == "header" else param["name"],
                    param["in"])] = param
        self.params = params
        body = self.resolve(spec["requestBody"]) if "requestBody" in spec else None
        self.body_required = bool(body and body.get("required"))
        self.body_schema = body["content"]["application/json"]["schema"] if body else None
        self.takes_body = body is not None
        self.responses = {code: self.resolve(resp) for code, resp in spec["responses"].items()}
        self.public = spec.get("security") == []

    def resolve(self, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if not ref.startswith("#/components/"):
                raise ValueError(f"unsupported $ref {ref}")
            target = {"components": self.components}
            for part in ref[2:].split("/"):
                target = target[part]
            node = target
        return node


def json_schema_nullable(node):
    """OpenAPI 3.0's ``nullable: true`` in the terms of JSON Schema (a "null" type), in place."""
    if isinstance(node, dict):
        if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            json_schema_nullable(value)
    elif isinstance(node, list):
        for value in node:
            json_schema_nullable(value)
    return node


class ApiSpec:
    """Routes and validators built from the OpenAPI 3 description."""

    def __init__(self, path=SPEC_FILE):
        with open(path, encoding="utf-8") as handle:
            self.doc = json_schema_nullable(yaml.safe_load(handle))
        self.components = self.doc.get("components", {})
        self.routes = []
        for template, item in self.doc["paths"].items():
            pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
            ops = {}
            for method in ("get", "put", "post", "delete", "head", "patch", "options"):
                if method in item:
                    ops[method.upper()] = Operation(method.upper(), template, item[method],
                                                    item, self.components)
            self.routes.append((re.compile(pattern), template, ops))
        self._validators = {}

    def match(self, method, path):
        """(Operation, path parameters); ApiError 404/405 when nothing matches."""
        for pattern, _template, ops in self.routes:
            found = pattern.match(path)
            if not found:
                continue
            if method not in ops:
                allowed = ", ".join(sorted(ops))
                raise ApiError(405, f"method {method} is not allowed, but [{allowed}] are")
            return ops[method], {k: unquote(v) for k, v in found.groupdict().items()}
        raise ApiError(404, f"path {API_PREFIX}{path} was not found")

    def validator(self, schema):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            wrapper = {"allOf": [schema], "components": self.components}
            self._validators[key] = jsonschema.Draft7Validator(wrapper)
        return self._validators[key]

    def errors(self, schema, value, where):
        out = []
        for error in sorted(self.validator(schema).iter_errors(value), key=lambda e: list(e.path)):
            location = where + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}"
                                       for p in error.path)
            out.append(f"{location}: {error.message}")
        return out

    @staticmethod
    def coerce(text, schema):
        """A query/header/path string -> the schema's type (or ValueError)."""
        kind = schema.get("type", "string")
        if kind == "integer":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise ValueError(f"{text!r} is not an integer")
            return int(text)
        if kind == "boolean":
            lowered = text.lower()
            if lowered in ("true", "1", "t"):
                return True
            if lowered in ("false", "0", "f"):
                return False
            raise ValueError(f"{text!r} is not a boolean")
        return text

    def check_request(self, op, path_params, query, headers, body, content_type):
        """(parsed path params, parsed query, parsed headers, parsed body, list of problems)."""
        problems = []
        parsed_path, parsed_query, parsed_headers = {}, {}, {}
        for (name, where), param in op.params.items():
            schema = param.get("schema", {"type": "string"})
            if where == "path":
                raw = [path_params[name]] if name in path_params else []
            elif where == "query":
                raw = query.get(name, [])
            elif where == "header":
                raw = [headers[name]] if name in headers else []
            else:
                continue
            if not raw:
                if param.get("required"):
                    problems.append(f"{where} parameter {param['name']} is required")
                continue
            if len(raw) > 1:
                problems.append(f"{where} parameter {param['name']} is given {len(raw)} times")
                continue
            try:
                value = self.coerce(raw[0], schema)
            except ValueError as exc:
                problems.append(f"{where} parameter {param['name']}: {exc}")
                continue
            problems.extend(self.errors(schema, value, f"{where} parameter {param['name']}"))
            {"path": parsed_path, "query": parsed_query, "header": parsed_headers}[where][
                param["name"]] = value
        declared = {name for (name, where) in op.params if where == "query"}
        for name in sorted(set(query) - declared):
            problems.append(f"query parameter {name} is not part of {op.operation_id}")

        parsed_body = None
        if body:
            if not op.takes_body:
                problems.append(f"{op.operation_id} takes no request body")
            else:
                if content_type.split(";")[0].strip().lower() != "application/json":
                    problems.append(f"Content-Type must be application/json, not {content_type!r}")
                try:
                    parsed_body = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    problems.append(f"request body is not JSON: {exc}")
                else:
                    problems.extend(self.errors(op.body_schema, parsed_body, "body"))
        elif op.body_required:
            problems.append(f"{op.operation_id} requires a JSON request body")
        return parsed_path, parsed_query, parsed_headers, parsed_body, problems

    def check_response(self, op, status, body, headers):
        response = op.responses.get(str(status)) or op.responses.get("default")
        if response is None:
            return [f"{op.operation_id} does not declare status {status}"]
        problems = []
        content = response.get("content") or {}
        if "application/json" in content:
            problems.extend(self.errors(content["application/json"]["schema"], body,
                                        f"{op.operation_id} answer {status}"))
        elif "text/plain" in content:
            if not isinstance(body, str):
                problems.append(f"{op.operation_id} answer {status} must be text")
        elif body is not None:
            problems.append(f"{op.operation_id} answer {status} must have no body")
        for name in response.get("headers") or {}:
            if name in ("Location",) and name not in headers:
                problems.append(f"{op.operation_id} answer {status} lacks the {name} header")
        return problems


# ---------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------


def hash_password(password, salt=None):
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), PBKDF2_ROUNDS)
    return salt, digest.hex()


class HarborState:
    """Users, projects, members and quotas; optionally persisted to a JSON file."""

    def __init__(self, admin_password=DEFAULT_ADMIN_PASSWORD, path=None):
        self.lock = threading.RLock()
        self.path = Path(path) if path else None
        if self.path and self.path.exists():
            self._load()
        else:
            self._init(admin_password)
            self.save()

    def _init(self, admin_password):
        stamp = now()
        self.next_ids = {"user": 2, "project": 2, "member": 2, "quota": 2}
        salt, digest = hash_password(admin_password)
        self.users = {1: {
            "user_id": 1, "username": "admin", "email": "admin@example.com",
            "realname": "system admin", "comment": "admin user", "sysadmin_flag": True,
            "salt": salt, "password_hash": digest, "creation_time": stamp, "update_time": stamp,
        }}
        self.projects = {1: {
            "project_id": 1, "name": "library", "owner_id": 1, "metadata": {"public": "true"},
            "repo_count": 0, "creation_time": stamp, "update_time": stamp,
        }}
        self.members = {1: {"id": 1, "project_id": 1, "entity_id": 1, "entity_type": "u",
                            "role_id": 1}}
        self.quotas = {1: {"id": 1, "project_id": 1, "hard": {"storage": -1},
                           "used": {"storage": 0}, "creation_time": stamp,
                           "update_time": stamp}}

    def _load(self):
        data = json.loads(self.path.read_text(encoding="utf-8"))
        self.next_ids = data["next_ids"]
        self.users = {int(k): v for k, v in data["users"].items()}
        self.projects = {int(k): v for k, v in data["projects"].items()}
        self.members = {int(k): v for k, v in data["members"].items()}
        self.quotas = {int(k): v for k, v in data["quotas"].items()}

    def save(self):
        if not self.path:
            return
        data = {"version": 1, "next_ids": self.next_ids, "users": self.users,
                "projects": self.projects, "members": self.members, "quotas": self.quotas}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=str(self.path.parent), prefix=".harbor-fake-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, self.path)

    def new_id(self, kind):
        value = self.next_ids[kind]
        self.next_ids[kind] = value + 1
        return value

    # -- helpers used by tests and handlers ----------------------------------------------

    def user_by_name(self, name):
        for user in self.users.values():
            if user["username"] == name:
                return user
        return None

    def project_by_name(self, name):
        for project in self.projects.values():
            if project["name"] == name:
                return project
        return None

    def members_of(self, project_id):
        return [m for m in self.members.values() if m["project_id"] == project_id]

    def member_view(self, member):
        user = self.users.get(member["entity_id"], {})
        return {"id": member["id"], "project_id": member["project_id"],
                "entity_name": user.get("username", ""), "entity_id": member["entity_id"],
                "entity_type": member["entity_type"], "role_id": member["role_id"],
                "role_name": ROLES.get(member["role_id"], "")}

    def quota_of(self, project_id):
        for quota in self.quotas.values():
            if quota["project_id"] == project_id:
                return quota
        return None

    def check_password(self, user, password):
        _salt, digest = hash_password(password, user["salt"])
        return hmac.compare_digest(digest, user["password_hash"])

    def set_password(self, user, password):
        user["salt"], user["password_hash"] = hash_password(password)

    def authenticate(self, principal, password):
        """Harbor accepts the user name or the email as principal."""
        for user in self.users.values():
            if principal in (user["username"], user["email"]):
                return user if self.check_password(user, password) else None
        return None


def member_role(state, project, user):
    """The role ID of a user in a project, None when not a member (or anonymous)."""
    if user is None:
        return None
    for member in state.members_of(project["project_id"]):
        if member["entity_type"] == "u" and member["entity_id"] == user["user_id"]:
            return member["role_id"]
    return None


def user_view(user):
    return {key: user[key] for key in ("user_id", "username", "email", "realname", "comment",
                                       "sysadmin_flag", "creation_time", "update_time")} | {
        "admin_role_in_auth": False}


# ---------------------------------------------------------------------------------------------
# Request handling
# ---------------------------------------------------------------------------------------------


class Context:
    def __init__(self, server, op, path_params, query, headers, body, user, raw_path, raw_query):
        self.server = server
        self.state = server.state
        self.op = op
        self.path_params = path_params
        self.query = query
        self.headers = headers
        self.body = body
        self.user = user
        self.raw_path = raw_path
        self.raw_query = raw_query

    # permission checks in Harbor's order of answers
    def require_auth(self):
        if self.user is None:
            raise ApiError(401)

    def require_admin(self):
        self.require_auth()
        if not self.user["sysadmin_flag"]:
            raise ApiError(403, self.user["username"])

    def is_admin(self):
        return self.user is not None and self.user["sysadmin_flag"]

    def role_in(self, project):
        return member_role(self.state, project, self.user)

    def project(self, write=False, name=None):
        """The project of the path (name or ID, see X-Is-Resource-Name) with access checks.

        ``name``: a project name from a path that only takes names (``{project_name}``).
        """
        ref = self.path_params["project_name_or_id"] if name is None else name
        by_name = (name is not None or self.headers.get("X-Is-Resource-Name") is True
                   or not ref.isdigit())
        if by_name and " " in ref:
            raise ApiError(400, f"invalid project name: '{ref}'")
        if by_name:
            project = self.state.project_by_name(ref)
        else:
            project = self.state.projects.get(int(ref))
        if self.is_admin():
            if project is None:
                raise ApiError(404, f"project {ref} not found")
            return project
        role = self.role_in(project) if project else None
        allowed = role == 1 if write else (
            role is not None or (project is not None and project["metadata"].get("public") ==
                                 "true"))
        if not allowed:
            raise ApiError(401 if self.user is None else 403)
        return project

    def paginate(self, items, total=None):
        """(page of items, headers) like Harbor: X-Total-Count and a Link header."""
        page = self.query.get("page", 1)
        size = self.query.get("page_size", 10)
        total = len(items) if total is None else total
        start = (page - 1) * size
        chunk = items[start:start + size]
        links = []
        if page > 1 and (page - 1) * size < total:
            links.append((page - 1, "prev"))
        if page * size < total:
            links.append((page + 1, "next"))
        rendered = []
        for number, rel in links:
            params = [(k, v) for k, v in parse_qs(self.raw_query, keep_blank_values=True).items()
                      if k not in ("page", "page_size")]
            pairs = [(k, value) for k, values in params for value in values]
            pairs += [("page", str(number)), ("page_size", str(size))]
            # Harbor writes the query of these links unescaped.
            rendered.append(f'<{self.raw_path}?{unquote(urlencode(sorted(pairs)))}>; rel="{rel}"')
        headers = {"X-Total-Count": str(total)}
        if rendered:
            headers["Link"] = " , ".join(rendered)
        return chunk, headers


def parse_q(text):
    """Harbor's q=k=v,k=~v (exact and fuzzy matches only)."""
    filters = {}
    if not text:
        return filters
    for part in unquote(text).split(","):
        key, sep, value = part.partition("=")
        if not sep or not key or not value:
            raise ApiError(400, 'the query string must contain "=" and the key/value cannot '
                                "be empty")
        filters[key] = ("fuzzy", value[1:]) if value.startswith("~") else ("exact", value)
    return filters


def matches(value, condition):
    kind, wanted = condition
    value = "" if value is None else str(value)
    return wanted in value if kind == "fuzzy" else value == wanted


def validate_profile(body, create):
    email = body.get("email") or ""
    if not email:
        raise ApiError(400, "email can't be empty")
    if not EMAIL.match(email):
        raise ApiError(400, "email with illegal format")
    realname = body.get("realname") or ""
    if not 1 <= len(realname) <= 255:
        raise ApiError(400, "realname with illegal length")
    if set(realname) & set(ILLEGAL_NAME_CHARS):
        raise ApiError(400, "realname contains illegal characters")
    if len(body.get("comment") or "") > 30:
        raise ApiError(400, "comment with illegal length")
    if create:
        username = body.get("username") or ""
        if not 1 <= len(username) <= 255:
            raise ApiError(400, "username with illegal length")
        if set(username) & set(ILLEGAL_NAME_CHARS):
            raise ApiError(400, "username contains illegal characters")


def validate_secret(password):
    if not (8 <= len(password) <= 128 and re.search("[a-z]", password)
            and re.search("[A-Z]", password) and re.search("[0-9]", password)):
        raise ApiError(400, "the password or secret must be 8-128, inclusively, characters long "
                            "with at least 1 uppercase letter, 1 lowercase letter and 1 number")


def validate_storage(limit):
    if limit <= 0 and limit != -1:
        raise ApiError(400, f"invalid non-positive value for quota limit, value={limit}")
    if limit > MAX_STORAGE:
        raise ApiError(400, f"exceeded 1024TB, which is {MAX_STORAGE} Bytes, value={limit}")


class Handlers:
    """One method per operationId; each returns (status, body, headers)."""

    # -- system ---------------------------------------------------------------------------

    @staticmethod
    def getPing(ctx):
        return 200, "Pong", {}

    @staticmethod
    def getHealth(ctx):
        components = [{"name": name, "status": "healthy"} for name in HEALTH_COMPONENTS]
        return 200, {"status": "healthy", "components": components}, {}

    @staticmethod
    def getSystemInfo(ctx):
        info = {"auth_mode": "db_auth", "primary_auth_mode": False, "self_registration": False,
                "banner_message": "", "oidc_provider_name": "", "harbor_version": FAKE_VERSION,
                "current_time": now()}
        if ctx.user is not None:
            host = ctx.server.public_host
            info.update(registry_url=host, external_url=f"http://{host}",
                        project_creation_restriction="everyone", has_ca_root=False,
                        read_only=False, notification_enable=True,
                        registry_storage_provider_name="filesystem")
        return 200, info, {}

    # -- users ----------------------------------------------------------------------------

    @staticmethod
    def getCurrentUserInfo(ctx):
        ctx.require_auth()
        return 200, user_view(ctx.user), {}

    @staticmethod
    def listUsers(ctx):
        ctx.require_admin()
        filters = parse_q(ctx.query.get("q"))
        users = [u for _, u in sorted(ctx.state.users.items())
                 if all(matches(u.get(k), cond) for k, cond in filters.items()
                        if k in ("username", "email", "realname", "user_id"))]
        page, headers = ctx.paginate([user_view(u) for u in users])
        return 200, page, headers

    @staticmethod
    def searchUsers(ctx):
        ctx.require_auth()
        name = ctx.query["username"]
        found = [{"user_id": u["user_id"], "username": u["username"]}
                 for _, u in sorted(ctx.state.users.items()) if name in u["username"]]
        page, headers = ctx.paginate(found)
        return 200, page, headers

    @staticmethod
    def createUser(ctx):
        ctx.require_admin()
        body = ctx.body or {}
        validate_secret(body.get("password") or "")
        validate_profile(body, create=True)
        for user in ctx.state.users.values():
            if user["username"] == body["username"] or user["email"] == body["email"]:
                raise ApiError(409, f"user {body['username']} or email {body['email']} already "
                                    "exists")
        stamp = now()
        user_id = ctx.state.new_id("user")
        user = {"user_id": user_id, "username": body["username"], "email": body["email"],
                "realname": body["realname"], "comment": body.get("comment") or "",
                "sysadmin_flag": False, "creation_time": stamp, "update_time": stamp}
        ctx.state.set_password(user, body["password"])
        ctx.state.users[user_id] = user
        return 201, None, {"Location": f"{ctx.raw_path.rstrip('/')}/{user_id}"}

    @staticmethod
    def _user(ctx, self_allowed=True):
        user_id = ctx.path_params["user_id"]
        if not (self_allowed and ctx.user is not None and ctx.user["user_id"] == user_id):
            ctx.require_admin()
        user = ctx.state.users.get(user_id)
        if user is None:
            raise ApiError(404, f"user {user_id} not found")
        return user

    @staticmethod
    def getUser(ctx):
        return 200, user_view(Handlers._user(ctx)), {}

    @staticmethod
    def updateUserProfile(ctx):
        user = Handlers._user(ctx)
        body = ctx.body or {}
        validate_profile(body, create=False)
        for other in ctx.state.users.values():
            if other is not user and other["email"] == body["email"]:
                raise ApiError(409, f"email {body['email']} already exists")
        user.update(email=body["email"], realname=body["realname"],
                    comment=body.get("comment") or "", update_time=now())
        return 200, None, {}

    @staticmethod
    def deleteUser(ctx):
        ctx.require_admin()
        user_id = ctx.path_params["user_id"]
        if user_id == ctx.user["user_id"] or user_id == 1:
            raise ApiError(403, f"User with ID {user_id} cannot be deleted")
        if user_id not in ctx.state.users:
            raise ApiError(404, f"user {user_id} not found")
        del ctx.state.users[user_id]
        for member_id in [m["id"] for m in ctx.state.members.values()
                          if m["entity_type"] == "u" and m["entity_id"] == user_id]:
            del ctx.state.members[member_id]
        return 200, None, {}

    @staticmethod
    def updateUserPassword(ctx):
        user_id = ctx.path_params["user_id"]
        own = ctx.user is not None and ctx.user["user_id"] == user_id
        if not own:
            ctx.require_admin()
        body = ctx.body or {}
        if own and not ctx.state.check_password(ctx.user, body.get("old_password") or ""):
            raise ApiError(403, "Current password is incorrect")
        validate_secret(body.get("new_password") or "")
        user = ctx.state.users.get(user_id)
        if user is None:
            raise ApiError(404, f"user {user_id} not found")
        if ctx.state.check_password(user, body["new_password"]):
            raise ApiError(400, "New password is identical to old password")
        ctx.state.set_password(user, body["new_password"])
        user["update_time"] = now()
        return 200, None, {}

    @staticmethod
    def setUserSysAdmin(ctx):
        user = Handlers._user(ctx, self_allowed=False)
        user["sysadmin_flag"] = bool(ctx.body["sysadmin_flag"])
        user["update_time"] = now()
        return 200, None, {}

    # -- projects -------------------------------------------------------------------------

    @staticmethod
    def project_view(ctx, project):
        owner = ctx.state.users.get(project["owner_id"], {})
        role = ctx.role_in(project)
        return {
            "project_id": project["project_id"], "owner_id": project["owner_id"],
            "name": project["name"], "creation_time": project["creation_time"],
            "update_time": project["update_time"], "deleted": False,
            "owner_name": owner.get("username", ""), "togglable": True,
            "current_user_role_id": role or 0,
            "current_user_role_ids": [role] if role else [],
            "repo_count": project["repo_count"], "metadata": dict(project["metadata"]),
            "cve_allowlist": {"id": project["project_id"], "project_id": project["project_id"],
                              "items": [], "creation_time": project["creation_time"],
                              "update_time": project["update_time"]},
        }

    @staticmethod
    def listProjects(ctx):
        filters = parse_q(ctx.query.get("q"))
        out = []
        for _, project in sorted(ctx.state.projects.items()):
            public = project["metadata"].get("public") == "true"
            if not (ctx.is_admin() or public or ctx.role_in(project)):
                continue
            if "name" in ctx.query and ctx.query["name"] not in project["name"]:
                continue
            if "public" in ctx.query and ctx.query["public"] != public:
                continue
            owner = ctx.state.users.get(project["owner_id"], {}).get("username")
            if "owner" in ctx.query and ctx.query["owner"] != owner:
                continue
            if "name" in filters and not matches(project["name"], filters["name"]):
                continue
            out.append(Handlers.project_view(ctx, project))
        page, headers = ctx.paginate(out)
        return 200, page, headers

    @staticmethod
    def headProject(ctx):
        ctx.require_auth()
        if ctx.state.project_by_name(ctx.query["project_name"]) is None:
            raise ApiError(404, f"project {ctx.query['project_name']} not found")
        return 200, None, {}

    @staticmethod
    def createProject(ctx):
        ctx.require_auth()
        body = copy.deepcopy(ctx.body or {})
        if body.get("registry_id") is not None:
            raise ApiError(400, "proxy cache projects are not supported by this fake")
        limit = body.get("storage_limit")
        if limit is None or limit == 0 or not ctx.is_admin():
            limit = -1
        validate_storage(limit)
        metadata = dict(body.get("metadata") or {})
        if body.get("public") is not None and not metadata.get("public"):
            metadata["public"] = "true" if body["public"] else "false"
        metadata.setdefault("public", "false")
        if metadata["public"] not in ("true", "false"):
            raise ApiError(400, "metadata.public should only be 'true' or 'false', but got: "
                                f"'{metadata['public']}'")
        if metadata.get("retention_id"):
            raise ApiError(400, "the retention_id in the request's payload when creating a "
                                "project should be omitted, alternatively passing an empty string")
        for key in ("proxy_speed_kb", "max_upstream_conn", "retention_id"):
            metadata.pop(key, None)
        name = body.get("project_name") or ""
        if not 1 <= len(name) <= 255:
            raise ApiError(400, f"Project name {name} is illegal in length. (greater than 255 or "
                                "less than 1)")
        if not PROJECT_NAME.match(name):
            raise ApiError(400, "project name is not in lower case or contains illegal characters")
        if ctx.state.project_by_name(name) is not None:
            raise ApiError(409, f"The project named {name} already exists")
        stamp = now()
        project_id = ctx.state.new_id("project")
        ctx.state.projects[project_id] = {
            "project_id": project_id, "name": name, "owner_id": ctx.user["user_id"],
            "metadata": metadata, "repo_count": 0, "creation_time": stamp, "update_time": stamp,
        }
        member_id = ctx.state.new_id("member")
        ctx.state.members[member_id] = {"id": member_id, "project_id": project_id,
                                        "entity_id": ctx.user["user_id"], "entity_type": "u",
                                        "role_id": 1}
        quota_id = ctx.state.new_id("quota")
        ctx.state.quotas[quota_id] = {"id": quota_id, "project_id": project_id,
                                      "hard": {"storage": limit}, "used": {"storage": 0},
                                      "creation_time": stamp, "update_time": stamp}
        tail = name if ctx.headers.get("X-Resource-Name-In-Location") else str(project_id)
        return 201, None, {"Location": f"{ctx.raw_path.rstrip('/')}/{tail}"}

    @staticmethod
    def getProject(ctx):
        return 200, Handlers.project_view(ctx, ctx.project()), {}

    @staticmethod
    def updateProject(ctx):
        project = ctx.project(write=True)
        body = ctx.body or {}
        metadata = dict(body.get("metadata") or {})
        for key in ("proxy_speed_kb", "max_upstream_conn"):
            metadata.pop(key, None)
        if "public" in metadata and metadata["public"] not in ("true", "false"):
            raise ApiError(400, "metadata.public should only be 'true' or 'false', but got: "
                                f"'{metadata['public']}'")
        if metadata.get("retention_id") and metadata["retention_id"] != project["metadata"].get(
                "retention_id"):
            raise ApiError(400, "the retention_id in the request's payload when updating a "
                                "project should be omitted, alternatively passing the one that "
                                "has already been associated to this project")
        project["metadata"].update(metadata)
        project["update_time"] = now()
        return 200, None, {}

    @staticmethod
    def deleteProject(ctx):
        project = ctx.project(write=True)
        if project["repo_count"]:
            raise ApiError(412, "the project contains repositories, can not be deleted")
        project_id = project["project_id"]
        del ctx.state.projects[project_id]
        for member in ctx.state.members_of(project_id):
            del ctx.state.members[member["id"]]
        quota = ctx.state.quota_of(project_id)
        if quota:
            del ctx.state.quotas[quota["id"]]
        return 200, None, {}

    # -- members --------------------------------------------------------------------------

    @staticmethod
    def listProjectMembers(ctx):
        project = ctx.project()
        if not ctx.is_admin() and ctx.role_in(project) is None:
            raise ApiError(401 if ctx.user is None else 403)
        members = [ctx.state.member_view(m) for m in ctx.state.members_of(project["project_id"])]
        total = len(members)  # Harbor counts all members, whatever the entityname filter
        if "entityname" in ctx.query:
            members = [m for m in members if m["entity_name"] == ctx.query["entityname"]]
        members.sort(key=lambda m: m["entity_name"])
        page, headers = ctx.paginate(members, total=total)
        return 200, page, headers

    @staticmethod
    def createProjectMember(ctx):
        project = ctx.project(write=True)
        body = ctx.body or {}
        member_user = body.get("member_user") or {}
        if body.get("member_group"):
            raise ApiError(400, "group members are not supported by this fake")
        if not member_user.get("user_id") and not member_user.get("username"):
            raise ApiError(400, "at least one of member_user or member_group must be provided")
        if member_user.get("user_id"):
            user = ctx.state.users.get(member_user["user_id"])
            if user is None:
                raise ApiError(400, f"User {member_user['user_id']} not found")
        else:
            user = ctx.state.user_by_name(member_user["username"])
            if user is None:
                raise ApiError(404, f"user {member_user['username']} is not found")
        for member in ctx.state.members_of(project["project_id"]):
            if member["entity_type"] == "u" and member["entity_id"] == user["user_id"]:
                raise ApiError(409, "The project member specified already exist")
        if body.get("role_id") not in ROLES:
            raise ApiError(400, "Failed to update project member, role is not in 1,2,3")
        member_id = ctx.state.new_id("member")
        ctx.state.members[member_id] = {"id": member_id, "project_id": project["project_id"],
                                        "entity_id": user["user_id"], "entity_type": "u",
                                        "role_id": body["role_id"]}
        ref = ctx.path_params["project_name_or_id"]
        return 201, None, {"Location": f"{API_PREFIX}/projects/{ref}/members/{member_id}"}

    @staticmethod
    def _member(ctx, write):
        project = ctx.project(write=write)
        if not write and not ctx.is_admin() and ctx.role_in(project) is None:
            raise ApiError(401 if ctx.user is None else 403)
        member = ctx.state.members.get(ctx.path_params["mid"])
        if member is None or member["project_id"] != project["project_id"]:
            return project, None
        return project, member

    @staticmethod
    def getProjectMember(ctx):
        if ctx.path_params["mid"] == 0:
            raise ApiError(400, "the member id can not be empty!")
        _project, member = Handlers._member(ctx, write=False)
        if member is None:
            raise ApiError(404, f"project member {ctx.path_params['mid']} not found")
        return 200, ctx.state.member_view(member), {}

    @staticmethod
    def updateProjectMember(ctx):
        if ctx.body is None:
            raise ApiError(400, "role can not be empty")
        if ctx.path_params["mid"] == 0:
            raise ApiError(400, "member id can not be empty")
        _project, member = Handlers._member(ctx, write=True)
        if ctx.body["role_id"] not in ROLES:
            raise ApiError(400, f"role {ctx.body['role_id']} does not exist")
        if member is not None:  # Harbor silently updates nothing for an unknown member ID
            member["role_id"] = ctx.body["role_id"]
        return 200, None, {}

    @staticmethod
    def deleteProjectMember(ctx):
        if ctx.path_params["mid"] == 0:
            raise ApiError(400, "the project member id is required.")
        _project, member = Handlers._member(ctx, write=True)
        if member is not None:  # Harbor silently deletes nothing for an unknown member ID
            del ctx.state.members[member["id"]]
        return 200, None, {}

    # -- quotas ---------------------------------------------------------------------------

    @staticmethod
    def quota_view(ctx, quota):
        project = ctx.state.projects.get(quota["project_id"], {})
        owner = ctx.state.users.get(project.get("owner_id"), {})
        return {"id": quota["id"],
                "ref": {"id": quota["project_id"], "name": project.get("name", ""),
                        "owner_name": owner.get("username", "")},
                "hard": dict(quota["hard"]), "used": dict(quota["used"]),
                "creation_time": quota["creation_time"], "update_time": quota["update_time"]}

    @staticmethod
    def listQuotas(ctx):
        ctx.require_admin()
        out = []
        for _, quota in sorted(ctx.state.quotas.items()):
            if ctx.query.get("reference") not in (None, "", "project"):
                continue
            if ctx.query.get("reference_id") not in (None, "", str(quota["project_id"])):
                continue
            out.append(Handlers.quota_view(ctx, quota))
        page, headers = ctx.paginate(out)
        return 200, page, headers

    @staticmethod
    def getQuota(ctx):
        ctx.require_admin()
        quota = ctx.state.quotas.get(ctx.path_params["id"])
        if quota is None:
            raise ApiError(404, f"quota {ctx.path_params['id']} not found")
        return 200, Handlers.quota_view(ctx, quota), {}

    @staticmethod
    def updateQuota(ctx):
        ctx.require_admin()
        hard = (ctx.body or {}).get("hard") or {}
        if not hard:
            raise ApiError(400, "hard required in body")
        quota = ctx.state.quotas.get(ctx.path_params["id"])
        if quota is None:
            raise ApiError(404, f"quota {ctx.path_params['id']} not found")
        for name, value in hard.items():
            if name != "storage":
                raise ApiError(400, f"resource {name} not support")
            validate_storage(value)
        if "storage" not in hard:
            raise ApiError(400, "resource storage not found")
        quota["hard"] = dict(hard)
        quota["update_time"] = now()
        return 200, None, {}

    # -- repositories and artifacts (read from the registry behind the fake) ---------------

    @staticmethod
    def repository_name(ctx, project):
        """project/repository from the path; Harbor takes a/b encoded once or twice (a%252Fb)."""
        return f"{project['name']}/{unquote(ctx.path_params['repository_name'])}"

    @staticmethod
    def tagged_manifests(ctx, name):
        """{digest: [media type, manifest bytes, tags]} of the tags of a repository."""
        registry = ctx.server.registry
        out = {}
        for tag in registry.tags(name) if registry else []:
            found = registry.manifest(name, tag)
            if found is None:  # deleted since the tag list was read
                continue
            digest, media_type, body = found
            out.setdefault(digest, [media_type, body, []])[2].append(tag)
        return out

    @staticmethod
    def artifact_view(ctx, project, name, digest, media_type, body, tags, with_tag=True):
        server = ctx.server
        repository_id, _ = server.registry_record("repository", name)
        artifact_id, pushed = server.registry_record("artifact", name, digest)
        manifest = json.loads(body)
        references = None
        if media_type in INDEX_TYPES:
            children = manifest.get("manifests") or []
            size = len(body) + sum(int(child.get("size") or 0) for child in children)
            kind, config_type = "IMAGE", media_type
            references = []
            for child in children:
                platform = child.get("platform") or {}
                child_digest = child.get("digest") or ""
                references.append({
                    "parent_id": artifact_id,
                    "child_id": server.registry_record("artifact", name, child_digest)[0],
                    "child_digest": child_digest,
                    "platform": {key: platform[key] for key in ("architecture", "os", "variant")
                                 if key in platform},
                })
        else:
            config = manifest.get("config") or {}
            size = len(body) + int(config.get("size") or 0) + sum(
                int(layer.get("size") or 0) for layer in manifest.get("layers") or [])
            config_type = config.get("mediaType") or media_type
            kind = "IMAGE" if config_type in IMAGE_CONFIG_TYPES else "UNKNOWN"
        view = {
            "id": artifact_id, "type": kind, "media_type": config_type,
            "manifest_media_type": media_type, "project_id": project["project_id"],
            "repository_id": repository_id, "repository_name": name, "digest": digest,
            "size": size, "icon": "", "push_time": pushed, "pull_time": NEVER,
            "references": references, "tags": None,
        }
        if manifest.get("annotations"):
            view["annotations"] = dict(manifest["annotations"])
        if with_tag and tags:
            view["tags"] = []
            for tag in sorted(tags):
                tag_id, tag_pushed = server.registry_record("tag", name, tag, digest)
                view["tags"].append({"id": tag_id, "repository_id": repository_id,
                                     "artifact_id": artifact_id, "name": tag,
                                     "push_time": tag_pushed, "pull_time": NEVER,
                                     "immutable": False})
        return view

    @staticmethod
    def listRepositories(ctx):
        project = ctx.project(name=ctx.path_params["project_name"])
        filters = parse_q(ctx.query.get("q"))
        registry = ctx.server.registry
        prefix = project["name"] + "/"
        names = sorted(name for name in (registry.catalog() if registry else [])
                       if name.startswith(prefix)
                       and ("name" not in filters or matches(name, filters["name"])))
        page, headers = ctx.paginate(names)
        out = []
        for name in page:
            repository_id, created = ctx.server.registry_record("repository", name)
            digests = Handlers.tagged_manifests(ctx, name)
            pushed = [ctx.server.registry_record("artifact", name, d)[1] for d in digests]
            out.append({"id": repository_id, "project_id": project["project_id"], "name": name,
                        "description": "", "artifact_count": len(digests), "pull_count": 0,
                        "creation_time": created, "update_time": max(pushed, default=created)})
        return 200, out, headers

    @staticmethod
    def listArtifacts(ctx):
        project = ctx.project(name=ctx.path_params["project_name"])
        name = Handlers.repository_name(ctx, project)
        # Harbor lists nothing, rather than 404, for a repository that does not exist.
        found = sorted(Handlers.tagged_manifests(ctx, name).items(),
                       key=lambda item: (min(item[1][2]), item[0]))
        page, headers = ctx.paginate(found)
        with_tag = ctx.query.get("with_tag", True)
        return 200, [Handlers.artifact_view(ctx, project, name, digest, media_type, body, tags,
                                            with_tag)
                     for digest, (media_type, body, tags) in page], headers

    @staticmethod
    def getArtifact(ctx):
        project = ctx.project(name=ctx.path_params["project_name"])
        name = Handlers.repository_name(ctx, project)
        reference = unquote(ctx.path_params["reference"])
        registry = ctx.server.registry
        found = registry.manifest(name, reference) if registry else None
        if found is None:
            separator = "@" if ":" in reference else ":"
            raise ApiError(404, f"artifact {name}{separator}{reference} not found")
        digest, media_type, body = found
        tags = Handlers.tagged_manifests(ctx, name).get(digest, [None, None, []])[2]
        view = Handlers.artifact_view(ctx, project, name, digest, media_type, body, tags,
                                      ctx.query.get("with_tag", True))
        return 200, view, {}


# ---------------------------------------------------------------------------------------------
# The registry: who may do what, and what it holds
# ---------------------------------------------------------------------------------------------


def registry_access(state, user, method, uri):
    """Harbor's decision on a request to the registry: (status, error code, message).

    ``user`` is the authenticated user (None: anonymous), ``method`` and ``uri`` those of the
    request the reverse proxy asks about. 200 lets it through; a refusal is 401 for anonymous
    callers (who may still log in) and 403 for authenticated ones. Pulling (GET, HEAD) from a
    public project is open to everyone, from a private one to its members; pushing (POST, PUT,
    PATCH, DELETE) needs the role project admin, developer or maintainer; system administrators
    may do everything, and only they may list the whole catalog. A project that does not exist
    refuses everybody.
    """
    path = urlsplit(uri).path

    def refuse(message):
        return (401, "UNAUTHORIZED", message) if user is None else (403, "DENIED", message)

    allowed = (200, None, None)
    admin = user is not None and bool(user["sysadmin_flag"])
    if path in REGISTRY_BASE:
        return allowed if user is not None else refuse("authentication required")
    if path == "/v2/_catalog":
        return allowed if admin else refuse("only system administrators may list the catalog")
    found = REGISTRY_PATH.match(path)
    if found is None:
        return allowed if admin else refuse(f"{path} is not a repository path")
    name = found["name"]
    action = "pull" if method in PULL_METHODS else "push" if method in PUSH_METHODS else None
    message = f"unauthorized to access repository: {name}, action: {action or method.lower()}"
    project_name, sep, _ = name.partition("/")
    project = state.project_by_name(project_name) if sep else None
    if project is None:
        return refuse(f"project {project_name} not found" if sep else message)
    if action is None:
        return refuse(message)
    if admin:
        return allowed
    role = member_role(state, project, user)
    if action == "pull" and (role is not None or project["metadata"].get("public") == "true"):
        return allowed
    if action == "push" and role in PUSH_ROLES:
        return allowed
    return refuse(message)


class RegistryClient:
    """Reads what the distribution registry behind the fake holds, through its own API."""

    def __init__(self, url, timeout=10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def get(self, path, accept=None):
        """(status, headers, body) of GET <registry>/<path>; error statuses do not raise."""
        request = urllib.request.Request(self.url + path,
                                         headers={"Accept": accept} if accept else {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers, exc.read()

    def _ok(self, status, what):
        if status != 200:
            raise RuntimeError(f"the registry answered HTTP {status} to {what}")

    def catalog(self):
        """All repository names (following the registry's pagination)."""
        names, path = [], "/v2/_catalog?n=1000"
        while path:
            status, headers, body = self.get(path)
            self._ok(status, "the catalog")
            names.extend(json.loads(body).get("repositories") or [])
            link = re.match(r'\s*<([^>]+)>\s*;\s*rel="?next"?', headers.get("Link") or "")
            path = None
            if link:
                target = urlsplit(link.group(1))
                path = target.path + (f"?{target.query}" if target.query else "")
        return names

    def tags(self, name):
        """The tags of a repository ([] for a repository the registry does not know)."""
        status, _headers, body = self.get(f"/v2/{name}/tags/list")
        if status == 404:
            return []
        self._ok(status, f"the tags of {name}")
        return sorted(json.loads(body).get("tags") or [])

    def manifest(self, name, reference):
        """(digest, media type, manifest bytes) of a tag or digest; None when unknown."""
        status, headers, body = self.get(f"/v2/{name}/manifests/{reference}",
                                         ", ".join(MANIFEST_TYPES))
        if status == 404:
            return None
        if status == 400:  # not a tag or digest the registry takes
            raise ApiError(400, f"invalid reference {reference!r}")
        self._ok(status, f"the manifest {name}:{reference}")
        media_type = (headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            media_type = json.loads(body).get("mediaType") or media_type
        digest = headers.get("Docker-Content-Digest") or (
            "sha256:" + hashlib.sha256(body).hexdigest())
        return digest, media_type, body


class RequestHandler(BaseHTTPRequestHandler):
    server_version = "harbor-fake"
    sys_version = ""

    def do_GET(self):
        self.handle_api("GET")

    def do_HEAD(self):
        self.handle_api("HEAD")

    def do_POST(self):
        self.handle_api("POST")

    def do_PUT(self):
        self.handle_api("PUT")

    def do_DELETE(self):
        self.handle_api("DELETE")

    def do_PATCH(self):
        self.handle_api("PATCH")

    def log_message(self, format, *args):
        LOG.info("%s %s", self.address_string(), format % args)

    def authenticate(self):
        """(user or None, whether credentials were sent and rejected)."""
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None, False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, True
        principal, sep, password = decoded.partition(":")
        if not sep:
            return None, True
        with self.server.state.lock:
            user = self.server.state.authenticate(principal, password)
            return (copy.deepcopy(user) if user else None), user is None

    def handle_api(self, method):
        request_id = self.headers.get("X-Request-Id") or str(uuid.uuid4())
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        path = split.path
        op = None
        refused = False  # answered 400 by the validation itself: no handler's answer to check
        if path in REGISTRY_BASE or path == TOKEN_SERVICE:
            self.handle_registry_login(method, path, split.query, request_id)
            return
        if path == REGISTRY_AUTH:
            self.handle_registry_auth(method, request_id)
            return
        try:
            if not path.startswith(API_PREFIX + "/"):
                raise ApiError(404, f"path {path} was not found")
            op, path_params = self.server.spec.match(method, path[len(API_PREFIX):])
            query = parse_qs(split.query, keep_blank_values=True)
            headers = {name.lower(): value for name, value in self.headers.items()}
            parsed = self.server.spec.check_request(
                op, path_params, query, headers, body, self.headers.get("Content-Type", "")
            )
            path_params, query, header_params, parsed_body, problems = parsed
            if problems:
                self.server.record("request", method, self.path, problems)
                if self.server.strict:
                    refused = True
                    raise ApiError(400, "request does not match the API description: "
                                        + "; ".join(problems))
            user, rejected = (None, False) if op.public else self.authenticate()
            if rejected and self.server.auth_failure_delay:
                time.sleep(self.server.auth_failure_delay)
            handler = getattr(Handlers, op.operation_id)
            with self.server.state.lock:
                if user is not None:
                    user = self.server.state.users.get(user["user_id"])
                ctx = Context(self.server, op, path_params, query, header_params, parsed_body,
                              user, path, split.query)
                try:
                    status, payload, extra = handler(ctx)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    if not problems:
                        raise
                    # Without strict mode a request that does not match gets this far.
                    raise ApiError(400, f"malformed request: {exc!r}") from None
                if method not in ("GET", "HEAD") and status < 300:
                    self.server.state.save()
        except ApiError as exc:
            status, payload, extra = exc.status, exc.body(), {}
        except Exception:  # a bug of the fake: answer like Harbor does, log the details
            LOG.exception("handler failed for %s %s", method, self.path)
            status, payload, extra = 500, ApiError(500).body(), {}
        if op is not None and self.server.strict and not refused:
            problems = self.server.spec.check_response(op, status, payload, extra)
            if problems:
                self.server.record("response", method, self.path, problems)
        self.reply(method, status, payload, extra, request_id)

    def registry_identity(self):
        """(user or None, whether credentials were sent and rejected) for the registry side.

        As Harbor, it takes a Bearer token of its token service as well as basic-auth
        credentials; an anonymous token gives an anonymous caller.
        """
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            return self.authenticate()
        known, username = self.server.token_user(header[7:].strip())
        if not known:
            return None, True
        with self.server.state.lock:
            user = self.server.state.user_by_name(username) if username else None
            return (copy.deepcopy(user) if user else None), False

    def challenge(self):
        host = self.headers.get("Host") or self.server.public_host
        return f'Bearer realm="http://{host}{TOKEN_SERVICE}",service="{REGISTRY_SERVICE}"'

    def handle_registry_auth(self, method, request_id):
        """The reverse proxy's question: may this request go on to the registry?

        Answers 200 (yes, no body) or the refusal the client gets: 401 with the token
        challenge, or 403, both with an error body in the registry's shape. The proxy marks its
        two questions with X-Registry-Auth: "check" (before passing a request on: no challenge,
        which nginx would copy to the client) and "refusal" (for the answer the client gets: no
        second stall for wrong credentials).
        """
        distribution = {"Docker-Distribution-Api-Version": "registry/2.0"}
        if method not in ("GET", "HEAD"):
            refusal = ApiError(405, f"method {method} is not allowed, but [GET, HEAD] are")
            self.reply(method, 405, refusal.body(), {}, request_id)
            return
        original_method = (self.headers.get("X-Original-Method") or "GET").upper()
        original_uri = self.headers.get("X-Original-URI") or "/v2/"
        phase = (self.headers.get("X-Registry-Auth") or "").lower()
        user, rejected = self.registry_identity()
        if rejected and self.server.auth_failure_delay and phase != "refusal":
            time.sleep(self.server.auth_failure_delay)
        with self.server.state.lock:
            status, code, message = registry_access(self.server.state, user, original_method,
                                                    original_uri)
        who = user["username"] if user else "anonymous"
        LOG.log(logging.DEBUG if status == 200 else logging.INFO, "registry %s %s by %s: %s",
                original_method, urlsplit(original_uri).path, who, status)
        if status == 200:
            self.reply(method, 200, None, {}, request_id)
            return
        if status == 401 and phase != "check":
            distribution["Www-Authenticate"] = self.challenge()
        self.reply(method, status, {"errors": [{"code": code, "message": message}]},
                   distribution, request_id)

    def handle_registry_login(self, method, path, query, request_id):
        """The part of the registry protocol ``docker login`` uses: ``/v2/`` and the token."""
        distribution = {"Docker-Distribution-Api-Version": "registry/2.0"}
        if method not in ("GET", "HEAD"):
            refusal = ApiError(405, f"method {method} is not allowed, but [GET, HEAD] are")
            self.reply(method, 405, refusal.body(), distribution, request_id)
            return
        if path == TOKEN_SERVICE:
            user, rejected = self.authenticate()
            if rejected:
                if self.server.auth_failure_delay:
                    time.sleep(self.server.auth_failure_delay)
                error = ApiError(401, "invalid authorization credential")
                self.reply(method, 401, error.body(), {}, request_id)
                return
            token = self.server.issue_token(user["username"] if user else None)
            params = parse_qs(query)
            LOG.info("token for %s (service %s)", user["username"] if user else "anonymous",
                     params.get("service", ["-"])[0])
            payload = {"token": token, "access_token": token, "expires_in": TOKEN_LIFETIME,
                       "issued_at": now()}
            self.reply(method, 200, payload, {}, request_id)
            return
        # A token of this fake (anonymous or not) or good basic-auth credentials open the
        # registry base, as with Harbor; clients that send basic auth on every call rely on it.
        bearer = self.headers.get("Authorization", "").lower().startswith("bearer ")
        user, rejected = self.registry_identity()
        if not rejected and (bearer or user is not None):
            self.reply(method, 200, {}, distribution, request_id)
            return
        if rejected and not bearer and self.server.auth_failure_delay:
            time.sleep(self.server.auth_failure_delay)
        error = ApiError(401, "authentication required")
        self.reply(method, 401, error.body(),
                   {**distribution, "Www-Authenticate": self.challenge()}, request_id)

    def reply(self, method, status, payload, extra, request_id):
        if payload is None:
            data, content_type = b"", None
        elif isinstance(payload, str):
            data, content_type = payload.encode(), "text/plain"
        else:
            data = (json.dumps(payload) + "\n").encode()
            content_type = ("application/json; charset=utf-8" if status >= 400
                            else "application/json")
        self.send_response(status)
        self.send_header("X-Request-Id", request_id)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD" and data:
            self.wfile.write(data)


class HarborServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state, spec, strict=True, auth_failure_delay=0.0,
                 registry_url=None):
        super().__init__(address, RequestHandler)
        self.state = state
        self.spec = spec
        self.strict = strict
        self.auth_failure_delay = auth_failure_delay
        self.registry = RegistryClient(registry_url) if registry_url else None
        self.violations = []
        self.tokens = {}  # registry tokens: token -> (user name or None, expiry time)
        # IDs and first-seen times of what the registry holds: Harbor keeps them in its
        # database, the fake hands them out when it first sees a repository, artifact or tag.
        self.registry_records = {}
        host, port = self.server_address[:2]
        self.public_host = f"{host}:{port}"

    def issue_token(self, username):
        token = secrets.token_urlsafe(32)
        with self.state.lock:
            moment = time.time()
            self.tokens = {k: v for k, v in self.tokens.items() if v[1] > moment}
            self.tokens[token] = (username, moment + TOKEN_LIFETIME)
        return token

    def token_valid(self, token):
        return self.token_user(token)[0]

    def token_user(self, token):
        """(whether the token is one of ours and unexpired, its user name or None)."""
        with self.state.lock:
            entry = self.tokens.get(token)
            if entry is None or entry[1] <= time.time():
                return False, None
            return True, entry[0]

    def registry_record(self, kind, *key):
        """(ID, first-seen time) of a repository, artifact or tag of the registry."""
        with self.state.lock:
            record = self.registry_records.get((kind, *key))
            if record is None:
                number = 1 + sum(1 for other in self.registry_records if other[0] == kind)
                record = self.registry_records[(kind, *key)] = (number, now())
            return record

    def record(self, kind, method, path, problems):
        for problem in problems:
            LOG.warning("%s of %s %s does not match the API description: %s",
                        kind, method, path, problem)
        self.violations.append({"kind": kind, "method": method, "path": path,
                                "problems": list(problems)})


class FakeHarbor:
    """The fake in a background thread, for tests::

        with FakeHarbor(admin_password="Secret123") as fake:
            requests.get(fake.url + "/api/v2.0/ping")
    """

    def __init__(self, host="127.0.0.1", port=0, admin_password=DEFAULT_ADMIN_PASSWORD,
                 strict=True, state_file=None, auth_failure_delay=0.0, spec_path=SPEC_FILE,
                 registry_url=None):
        self.state = HarborState(admin_password, state_file)
        self.server = HarborServer((host, port), self.state, ApiSpec(spec_path), strict,
                                   auth_failure_delay, registry_url)
        self._thread = None

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def violations(self):
        return self.server.violations

    @property
    def strict(self):
        return self.server.strict

    @strict.setter
    def strict(self, value):
        self.server.strict = value

    def start(self):
        self._thread = threading.Thread(target=self.server.serve_forever, name="harbor-fake",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        if self._thread:
            self._thread.join(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def pytest_fixture(scope="function", **options):
    """A pytest fixture that yields a running FakeHarbor, e.g. at module level of a test::

        harbor_fake = server.pytest_fixture(admin_password="Secret123")
    """
    import pytest  # only needed by tests

    @pytest.fixture(scope=scope)
    def harbor_fake():
        with FakeHarbor(**options) as fake:
            yield fake

    return harbor_fake


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake Harbor v2.0 API for tests")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on")
    parser.add_argument("--admin-password",
                        default=os.environ.get("HARBOR_ADMIN_PASSWORD", DEFAULT_ADMIN_PASSWORD),
                        help="initial password of admin (default: $HARBOR_ADMIN_PASSWORD or "
                             "Harbor12345)")
    parser.add_argument("--state-file", help="JSON file that keeps the state across restarts")
    parser.add_argument("--strict", dest="strict", action="store_true", default=True,
                        help="answer 400 to requests that do not match the description "
                             "(default)")
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="only log requests that do not match the description")
    parser.add_argument("--auth-failure-delay", type=float, default=0.0,
                        help="seconds to stall a request with wrong credentials (Harbor: 1.5)")
    parser.add_argument("--spec", default=str(SPEC_FILE), help="API description (OpenAPI 3)")
    parser.add_argument("--registry-url",
                        help="base URL of the distribution registry whose repositories and "
                             "artifacts the API shows (e.g. http://127.0.0.1:5000); without it "
                             "there are none")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    fake = FakeHarbor(args.host, args.port, args.admin_password, args.strict, args.state_file,
                      args.auth_failure_delay, args.spec, args.registry_url)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=fake.server.shutdown).start())
    LOG.info("fake Harbor %s listening on %s (strict=%s, state=%s, registry=%s)", FAKE_VERSION,
             fake.url, args.strict, args.state_file or "memory", args.registry_url or "none")
    try:
        fake.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        fake.server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
