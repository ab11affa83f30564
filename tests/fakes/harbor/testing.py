"""What the tests of the Harbor fake and stand-in share: loading the fake, HTTP calls, auth.

Imported by file location through ``load_testing()`` in each test module's own few lines, or as
``tests.fakes.harbor.testing`` with the repository root on ``sys.path``.
"""

from __future__ import annotations

import base64
import importlib.util
import sys
import urllib.error
import urllib.request
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"


def load_server(name: str):
    """The fake's ``server.py`` as a module of its own under ``name``.

    Each test module loads its own copy, so module-level state of one never leaks into another.
    """
    spec = importlib.util.spec_from_file_location(name, SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def call(url: str, headers: dict | None = None, method: str = "GET", data: bytes | None = None,
         timeout: float = 10):
    """(status, headers, body) of one request; an HTTP error status is an answer too."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - test URLs
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


def basic(user: str, password: str) -> dict:
    """The Authorization header of HTTP basic auth."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": "Basic " + token}
