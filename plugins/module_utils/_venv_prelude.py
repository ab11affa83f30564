# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""The prelude of the programs the modules run inside a Backend.AI service's virtualenv.

A program is the source of ``_scrub``, of this file and of one helper module (``_fixture_helper``,
``_alembic_probe``), followed by ``run(main)`` (see ``program``). It defines PAYLOAD (the current
request), SECRETS (strings to scrub from every answer), emit(), fail(), engine_for(url) and
describe_db_error(exc, url), and answers one JSON request per line of stdin until stdin closes.

Standard library only at import time, and no ``from __future__`` import (the sources are
concatenated). The modules import this file and the helpers only so that Ansible ships them and
lint and the unit tests see real code; a helper takes the prelude's names from an import that
fails inside the virtualenv, where the prelude's source stands before the helper's.
"""

import asyncio
import inspect
import json
import logging
import sys
import traceback
import warnings

try:  # in a module; inside the virtualenv the source of _scrub comes first instead
    from ansible_collections.backendai.cluster.plugins.module_utils._scrub import scrub_text
except ImportError:
    pass

RESULT_MARKER = "@@BACKENDAI-RESULT@@"

PAYLOAD = {}
SECRETS = set()


def _scrub(text):
    return scrub_text(text, SECRETS)


def _scrub_obj(obj):
    if isinstance(obj, str):
        return _scrub(obj)
    if isinstance(obj, dict):
        return {k: _scrub_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_scrub_obj(v) for v in obj]
    return obj


def emit(obj):
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


class Failure(Exception):
    pass


def fail(msg):
    raise Failure(msg)


def add_url_secret(url):
    from urllib.parse import unquote, urlsplit
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        SECRETS.add(password)
        SECRETS.add(unquote(password))


def engine_for(url, timeout=10):
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool
    if url.startswith("postgresql://"):
        url = "postgresql+asyncpg://" + url[len("postgresql://"):]
    add_url_secret(url)
    return create_async_engine(url, poolclass=NullPool, connect_args={"timeout": timeout})


def where_of(url):
    # host:port/database. A URL for several servers (manager.toml [db] addrs) has no host of
    # its own and lists them in its query: ?host=h1,h2&port=p1,p2 (or repeated parameters).
    try:
        from sqlalchemy.engine import make_url
        u = make_url(url)

        def listed(name):
            value = u.query.get(name) or ()
            values = [value] if isinstance(value, str) else list(value)
            return [piece for v in values for piece in v.split(",") if piece]

        if u.host:
            pairs = [(u.host, u.port or 5432)]
        else:
            hosts, ports = listed("host") or ["localhost"], listed("port")
            pairs = [(host, ports[i] if i < len(ports) else (ports[-1] if ports else 5432))
                     for i, host in enumerate(hosts)]
        return "{}/{}".format(",".join("{}:{}".format(h, p) for h, p in pairs),
                              u.database or "")
    except Exception:
        return "(unparsable URL)"


_CONNECT_ERRORS = (
    "InvalidPasswordError", "InvalidAuthorizationSpecificationError", "InvalidCatalogNameError",
    "ConnectionRefusedError", "TimeoutError", "CancelledError", "OSError", "gaierror",
    "CannotConnectNowError", "ConnectionDoesNotExistError", "ClientConfigurationError",
)


def describe_db_error(exc, url):
    name = type(exc).__name__
    text = str(exc).strip()
    orig = getattr(exc, "orig", None)
    if orig is not None and str(orig).strip():
        text = str(orig).strip()
        name = type(orig).__name__
    text = text.splitlines()[0] if text else "(no message)"
    if name in _CONNECT_ERRORS or isinstance(exc, (OSError, asyncio.TimeoutError)):
        return "cannot connect to the database at {}: {}: {}".format(where_of(url), name, text)
    return "{}: {}".format(name, text)


def _answer(main):
    try:
        result = main(PAYLOAD)
    except Failure as exc:
        emit({"error": _scrub(exc)})
    except BaseException as exc:  # report in one line; the traceback goes to stderr only
        url = str(PAYLOAD.get("url") or "")
        if url:
            msg = describe_db_error(exc, url)
        else:
            msg = "{}: {}".format(type(exc).__name__, exc)
        sys.stderr.write(_scrub(traceback.format_exc()))
        emit({"error": _scrub(msg)})
    else:
        emit(_scrub_obj(result))


def run(main):
    # Answer one request per line of stdin until stdin is closed.
    global PAYLOAD
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        PAYLOAD = json.loads(line)
        _answer(main)


def program(*helpers):
    """The text of a virtualenv program: _scrub, this prelude and the helpers, then run(main)."""
    modules = [sys.modules[scrub_text.__module__], sys.modules[__name__], *helpers]
    return "\n\n".join(inspect.getsource(m) for m in modules) + "\n\nrun(main)\n"
