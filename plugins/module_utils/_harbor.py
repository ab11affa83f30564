# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""A small client of Harbor's v2.0 REST API, shared by the harbor_* modules.

It runs wherever the module runs (usually the controller or the registry node) on Python 3.9
or later with the standard library and ``ansible.module_utils.urls`` only.

* Every request authenticates with HTTP basic auth (Harbor's local database users).
* JSON in, JSON out; Harbor's error body ``{"errors": [{"code": ..., "message": ...}]}`` is
  turned into one readable sentence that names the request, the HTTP status, Harbor's code and
  message and the request ID (for Harbor's core log).
* Lists are read page by page (``page``/``page_size``) until Harbor has no further page.
* Passwords are never part of a URL, a message or a return value.
"""

from __future__ import annotations

import json
import re
import socket
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError
from ansible_collections.backendai.cluster.plugins.module_utils._scrub import MASK, scrub_text

API_PREFIX = "/api/v2.0"
MAX_PAGE_SIZE = 100  # Harbor refuses larger pages

# Project member roles: Harbor's role IDs and the names Harbor reports in role_name.
ROLES = {
    "projectAdmin": 1,
    "developer": 2,
    "guest": 3,
    "maintainer": 4,
    "limitedGuest": 5,
}
ROLE_NAMES = {value: key for key, value in ROLES.items()}

# Harbor's rule for passwords of local users (the same rule applies to CLI secrets).
COMPLEXITY_RULE = (
    "8 to 128 characters with at least one uppercase letter, one lowercase letter and one digit"
)

HARBOR_ARGUMENT_SPEC = dict(
    harbor_url=dict(
        type="str", required=True, aliases=["url"], fallback=(env_fallback, ["HARBOR_URL"])
    ),
    harbor_username=dict(type="str", fallback=(env_fallback, ["HARBOR_USERNAME"])),
    harbor_password=dict(
        type="str", required=True, no_log=True, fallback=(env_fallback, ["HARBOR_PASSWORD"])
    ),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    timeout=dict(type="int", default=30),
)
DEFAULT_HARBOR_USERNAME = "admin"


def harbor_argument_spec(**options):
    """The connection options of every harbor_* module, plus the module's own options."""
    spec = {name: dict(value) for name, value in HARBOR_ARGUMENT_SPEC.items()}
    spec.update(options)
    return spec


def password_is_acceptable(password):
    """Whether Harbor accepts this password (length 8-128, upper, lower and digit)."""
    return (
        8 <= len(password) <= 128
        and re.search(r"[a-z]", password) is not None
        and re.search(r"[A-Z]", password) is not None
        and re.search(r"[0-9]", password) is not None
    )


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit tested)
# ---------------------------------------------------------------------------------------------


def normalize_url(url):
    """``http://host:port`` or ``.../api/v2.0`` -> ``http://host:port/api/v2.0``.

    Raises ValueError with a readable reason for anything that is not an http(s) URL.
    """
    if not isinstance(url, str) or not url.strip():
        raise ValueError("harbor_url is empty")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(
            f"harbor_url must start with http:// or https:// (got {scrub_url(url)!r})"
        )
    if not parts.hostname:
        raise ValueError(f"harbor_url has no host name (got {scrub_url(url)!r})")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "harbor_url must not contain credentials; use harbor_username and harbor_password"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"harbor_url must not have a query or fragment (got {scrub_url(url)!r})")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"harbor_url has an invalid port: {exc}") from None
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def scrub_url(url):
    """The URL without any user:password@ part."""
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return str(url)
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, MASK + "@" + host, parts.path, parts.query, parts.fragment))


_QUERY_UNSAFE = re.compile(r"[+,%=\s]")
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,<]+)*)")
_LINK_PARAM = re.compile(r";\s*([^=;\s]+)\s*=\s*\"?([^\";]*)\"?")


def parse_link_header(value):
    """Parse an RFC 8288 ``Link`` header into ``{rel: url}``.

    Harbor writes ``<url>; rel="prev" , <url>; rel="next"`` with relative URLs whose query is
    not escaped (so a URL may contain commas); a link without rel is ignored.
    """
    links = {}
    for match in _LINK.finditer(value or ""):
        url, params = match.group(1), match.group(2)
        for name, param in _LINK_PARAM.findall(params):
            if name.lower() == "rel":
                for rel in param.split():
                    links.setdefault(rel.lower(), url)
    return links


def parse_error_body(body):
    """Harbor's ``{"errors": [{"code", "message"}]}`` -> (code, message); tolerant of junk."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = (body or "").strip()
    if not text:
        return None, None
    try:
        data = json.loads(text)
    except ValueError:
        return None, _shorten(text)
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors:
        codes, messages = [], []
        for item in errors:
            if not isinstance(item, dict):
                continue
            if item.get("code"):
                codes.append(str(item["code"]))
            if item.get("message"):
                messages.append(str(item["message"]))
        return ("; ".join(codes) or None), ("; ".join(messages) or None)
    if isinstance(data, dict) and data.get("message"):
        return data.get("code"), str(data["message"])
    return None, _shorten(text)


def _shorten(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def describe_http_error(method, path, status, code=None, message=None, request_id=None,
                        username=None, location=None):
    """One sentence for a failed request: what failed, why, and what to check."""
    what = f"{method} {API_PREFIX}{path}"
    if status is not None and 300 <= status < 400:
        return (
            f"Harbor answered {what} with a redirect (HTTP {status}) to {scrub_url(location)}; "
            "set harbor_url to the address Harbor redirects to."
        )
    detail = f"HTTP {status}"
    if status in _STATUS_TEXT:
        detail += " " + _STATUS_TEXT[status]
    said = ": ".join(x for x in (code, message) if x)
    if said:
        detail += f", Harbor said {said}"
    if request_id:
        detail += f"; request ID {request_id}"
    who = f"user {username!r}" if username else "the user"
    if status == 401:
        return (
            f"Harbor rejected the credentials of {who} ({what}: {detail}). "
            "Check harbor_username and harbor_password."
        )
    if status == 403:
        return (
            f"Harbor refused {what} for {who} ({detail}). The account needs Harbor system "
            "administrator rights (or the project role) for this change."
        )
    if status == 404:
        return f"Harbor has no such resource: {what} ({detail})."
    if status == 409:
        return f"Harbor reports a conflict for {what} ({detail})."
    if status in (400, 422):
        return f"Harbor refused {what} as invalid ({detail})."
    if status == 412:
        return f"Harbor cannot do {what} now ({detail})."
    if status is not None and status >= 500:
        return (
            f"Harbor failed internally on {what} ({detail}). See the log of harbor-core"
            + (" for the request ID." if request_id else ".")
        )
    return f"Harbor answered {what} with {detail}."


def describe_unreachable(url, reason):
    return (
        f"Cannot reach Harbor at {scrub_url(url)}: {reason}. Check harbor_url, that Harbor is "
        "running and that this host can connect to it."
    )


def changed_fields(current, desired):
    """Keys of ``desired`` (ignoring None values) whose value differs in ``current``."""
    current = current or {}
    return sorted(
        key for key, value in desired.items() if value is not None and current.get(key) != value
    )


def make_diff(before, after, keys=None):
    """Ansible's diff dict; with ``keys``, only those keys of each side are shown."""

    def pick(side):
        if not side:
            return {}
        if keys is None:
            return dict(side)
        return {key: side.get(key) for key in keys if key in side}

    return {"before": pick(before), "after": pick(after)}


def bool_to_harbor(value):
    """Harbor keeps project flags as the strings "true" and "false"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------


class HarborError(Exception):
    """A failed Harbor request; ``str()`` is a complete, secret-free message."""

    def __init__(self, message, status=None, code=None, harbor_message=None, request_id=None,
                 method=None, path=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.harbor_message = harbor_message
        self.request_id = request_id
        self.method = method
        self.path = path

    def __str__(self):
        return self.message

    def details(self):
        """Extra keys for fail_json."""
        out = {"status": self.status}
        if self.code:
            out["harbor_code"] = self.code
        if self.harbor_message:
            out["harbor_message"] = self.harbor_message
        if self.request_id:
            out["request_id"] = self.request_id
        return out


class HarborResponse:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data

    def header(self, name, default=None):
        for key, value in (self.headers or {}).items():
            if key.lower() == name.lower():
                return value
        return default


class HarborClient:
    """Talks to one Harbor as one user."""

    def __init__(self, url, username, password, validate_certs=True, ca_path=None, timeout=30):
        self.base_url = normalize_url(url)
        self.username = username or DEFAULT_HARBOR_USERNAME
        self.password = password
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self._secrets = set()
        self.add_secret(password)

    def add_secret(self, value):
        if value and len(str(value)) >= 4:
            self._secrets.add(str(value))

    def scrub(self, text):
        return scrub_text(text, self._secrets)

    # -- transport ------------------------------------------------------------------------

    def url_for(self, path, query=None):
        url = self.base_url + path
        if query:
            pairs = [(key, value) for key, value in query.items() if value is not None]
            if pairs:
                url += "?" + urlencode(pairs, quote_via=quote, safe="")
        return url

    def call(self, method, path, query=None, body=None, headers=None, auth=None):
        """One request; returns a HarborResponse for 2xx and raises HarborError otherwise.

        ``auth`` is an optional (username, password) that replaces the client's own.
        """
        username, password = auth if auth else (self.username, self.password)
        url = self.url_for(path, query)
        send = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            send["Content-Type"] = "application/json"
        send.update(headers or {})
        # Basic auth goes with the first request (Harbor's API sends no challenge). Redirects
        # are not followed: the credentials must not travel to another address unasked.
        request = Request(
            validate_certs=self.validate_certs,
            ca_path=self.ca_path,
            timeout=self.timeout,
            url_username=username,
            url_password=password,
            force_basic_auth=True,
            use_netrc=False,
            follow_redirects="none",
        )
        try:
            response = request.open(method, url, data=data, headers=send)
            status = response.getcode()
            raw = response.read()
            response_headers = dict(response.headers.items())
        except HTTPError as exc:
            try:
                raw = exc.read()
            except Exception:  # the body of an error is optional
                raw = b""
            response_headers = dict(exc.headers.items()) if exc.headers else {}
            code, message = parse_error_body(raw)
            request_id = _header(response_headers, "X-Request-Id")
            text = describe_http_error(
                method, path, exc.code, code, self.scrub(message), request_id, username,
                location=_header(response_headers, "Location"),
            )
            raise HarborError(
                self.scrub(text), status=exc.code, code=code, harbor_message=self.scrub(message),
                request_id=request_id, method=method, path=path,
            ) from None
        except SSLValidationError as exc:
            raise HarborError(
                describe_unreachable(self.base_url, "TLS certificate validation failed ("
                                     + _shorten(self.scrub(exc), 200)
                                     + "); set ca_path or validate_certs"),
                method=method, path=path,
            ) from None
        except (URLError, UrlsConnectionError, socket.timeout, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise HarborError(
                describe_unreachable(self.base_url, self.scrub(reason)), method=method, path=path
            ) from None
        return HarborResponse(status, response_headers, self._decode(raw, method, path))

    def _decode(self, raw, method, path):
        if not raw:
            return None
        text = raw.decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            if path == "/ping":
                return text
            raise HarborError(
                f"Harbor answered {method} {API_PREFIX}{path} with something that is not JSON: "
                f"{_shorten(self.scrub(text), 200)!r}. Is harbor_url really Harbor?",
                method=method, path=path,
            ) from None

    def get(self, path, query=None, headers=None):
        return self.call("GET", path, query=query, headers=headers).data

    def get_all(self, path, query=None, headers=None, page_size=MAX_PAGE_SIZE, max_pages=10000,
                key="id"):
        """Every item of a paginated list.

        Reads pages until Harbor stops announcing a next page (Link rel="next"), a page comes
        back empty or short, X-Total-Count items were read, or a page repeats items already seen
        (a safeguard for endpoints that ignore ``page``).
        """
        items = []
        seen = set()
        query = dict(query or {})
        for page in range(1, max_pages + 1):
            query.update(page=page, page_size=page_size)
            response = self.call("GET", path, query=query, headers=headers)
            batch = response.data or []
            if not isinstance(batch, list):
                raise HarborError(
                    f"Harbor answered GET {API_PREFIX}{path} with a {type(batch).__name__}, "
                    "not a list.", method="GET", path=path,
                )
            fresh = []
            for item in batch:
                ident = item.get(key) if isinstance(item, dict) else None
                if ident is not None:
                    if ident in seen:
                        continue
                    seen.add(ident)
                fresh.append(item)
            items.extend(fresh)
            if not next_page_expected(response, len(batch), len(fresh), page_size, len(items)):
                break
        return items

    # -- users ----------------------------------------------------------------------------

    def current_user(self):
        """The authenticated user (also the check that the credentials work)."""
        return self.get("/users/current")

    def can_login(self, username, password):
        """Whether Harbor accepts this username and password (True/False).

        Harbor cannot compare a password otherwise. A failed login makes Harbor lock that
        user name for 1.5 seconds.
        """
        try:
            self.call("GET", "/users/current", auth=(username, password))
        except HarborError as exc:
            if exc.status == 401:
                return False
            raise
        return True

    def find_user(self, username):
        """The user (Harbor's UserResp) by exact name, or None. Needs system admin rights."""
        if _QUERY_UNSAFE.search(username) or username[:1] in "~[{(":
            # Harbor decodes q twice and treats these characters as syntax: list everyone.
            users = self.get_all("/users", key="user_id")
        else:
            users = self.get_all("/users", {"q": f"username={username}"}, key="user_id")
        for user in users:
            if user.get("username") == username:
                return user
        return None

    # -- projects -------------------------------------------------------------------------

    @staticmethod
    def project_path(name):
        return "/projects/" + quote(str(name), safe="")

    NAME_HEADER = {"X-Is-Resource-Name": "true"}

    def get_project(self, name):
        """The project by name, or None."""
        try:
            return self.get(self.project_path(name), headers=self.NAME_HEADER)
        except HarborError as exc:
            if exc.status == 404:
                return None
            raise

    def get_project_quota(self, project_id):
        """The project's quota (Harbor's Quota), or None. Needs system admin rights."""
        quotas = self.get_all(
            "/quotas", {"reference": "project", "reference_id": str(project_id)}
        )
        for quota in quotas:
            ref = quota.get("ref") or {}
            if str(ref.get("id", project_id)) == str(project_id):
                return quota
        return None

    def find_member(self, project, username):
        """The user member of the project by exact user name, or None."""
        members = self.get_all(
            self.project_path(project) + "/members", {"entityname": username},
            headers=self.NAME_HEADER,
        )
        for member in members:
            if member.get("entity_name") == username and member.get("entity_type", "u") == "u":
                return member
        return None


def next_page_expected(response, batch_len, fresh_len, page_size, total_read):
    """Whether another page should be read after this one (see HarborClient.get_all)."""
    if batch_len == 0 or fresh_len == 0 or batch_len < page_size:
        return False
    total = response.header("X-Total-Count")
    if total is not None:
        try:
            if total_read >= int(total):
                return False
        except ValueError:
            pass
    link = response.header("Link")
    if link is not None and link.strip():
        return "next" in parse_link_header(link)
    # No Link header at all: rely on the count and the page size.
    return total is not None


def _header(headers, name):
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def location_id(location):
    """The trailing numeric ID of a Location header (``/api/v2.0/users/7`` -> 7), or None."""
    match = re.search(r"/(\d+)/?$", location or "")
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------
# Module glue
# ---------------------------------------------------------------------------------------------


def fail(module, error, **extra):
    """fail_json with a HarborError (or any message) and no traceback."""
    if isinstance(error, HarborError):
        extra.update(error.details())
    module.fail_json(msg=str(error), **extra)


def connect(module, check_login=True):
    """A HarborClient from the module's connection options; fails the module on bad input.

    With ``check_login`` the credentials are tried once (GET /users/current) so that a wrong
    password is reported as such before anything else is read.
    """
    params = module.params
    if params["timeout"] is not None and params["timeout"] <= 0:
        module.fail_json(
            msg=f"timeout must be a positive number of seconds, not {params['timeout']}"
        )
    try:
        client = HarborClient(
            params["harbor_url"],
            params["harbor_username"] or DEFAULT_HARBOR_USERNAME,
            params["harbor_password"],
            validate_certs=params["validate_certs"],
            ca_path=params["ca_path"],
            timeout=params["timeout"],
        )
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if check_login:
        try:
            client.me = client.current_user()
        except HarborError as exc:
            fail(module, exc)
    return client
