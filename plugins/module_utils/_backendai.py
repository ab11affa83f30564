# Copyright: backendai.cluster contributors
# Apache License 2.0 (see galaxy.yml)
"""Private helpers shared by the backendai.cluster modules.

Everything here runs on the managed node under its system python3 (3.9 or later) with the
standard library only. Database work is delegated to the Backend.AI service virtualenv: a
small program is passed to ``<venv>/bin/python -c`` and its input (which may hold passwords)
travels on stdin, never on the command line. The program answers with one JSON document on
a line that starts with ``RESULT_MARKER``, so log lines printed by imported libraries cannot
be mistaken for the answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import tempfile
from configparser import ConfigParser, RawConfigParser
from configparser import Error as ConfigParserError
from urllib.parse import unquote, urlsplit

from ansible_collections.backendai.cluster.plugins.module_utils._scrub import (
    MASK,
    URL_CREDENTIALS,
    scrub_text,
)
from ansible_collections.backendai.cluster.plugins.module_utils._venv_prelude import (
    RESULT_MARKER,
)

# A line naming an exception, e.g. "asyncpg.exceptions.InvalidPasswordError: password ...".
_EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Failure|Exit|Abort)\b.*"
)


class Scrubber:
    """Remove known secret strings (and URL credentials) from text and data structures."""

    def __init__(self, secrets=()):
        self._secrets = set()
        for value in secrets:
            self.add(value)

    def add(self, value):
        if value is None:
            return
        value = str(value)
        # Very short values would mask unrelated text; they are not meaningful secrets anyway.
        if len(value) < 4:
            return
        self._secrets.add(value)
        for variant in (unquote(value), value.replace("%%", "%")):
            if len(variant) >= 4:
                self._secrets.add(variant)

    @property
    def secrets(self):
        return frozenset(self._secrets)

    def text(self, value):
        return scrub_text(value, self._secrets)

    def data(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                self.text(k) if isinstance(k, str) else k: self.data(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value


def last_error_line(text, default="no error message"):
    """The most telling line of a program's error output, without the traceback around it."""
    lines = [line.rstrip() for line in (text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        stripped = line.strip()
        if _EXCEPTION_LINE.match(stripped):
            return stripped
    for line in reversed(lines):
        stripped = line.strip()
        if not stripped.startswith(("File ", "Traceback", "^", "~")):
            return stripped
    return default


def venv_executable(venv, name):
    return os.path.join(venv, "bin", name)


def require_executable(module, path, what):
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        module.fail_json(msg=f"{what} not found or not executable: {path}")
    return path


def run_command(module, argv, scrubber, cwd=None, environ=None, data=None):
    """Run a command; return (rc, stdout, stderr) with secrets removed from the output."""
    kwargs = {"check_rc": False, "environ_update": dict(environ or {})}
    if cwd:
        kwargs["cwd"] = cwd
    if data is not None:
        kwargs["data"] = data
        kwargs["binary_data"] = True
    try:
        rc, out, err = module.run_command(argv, **kwargs)
    except Exception as exc:  # reported to the user without a traceback
        module.fail_json(msg=f"could not run {argv[0]}: {scrubber.text(exc)}")
    return rc, scrubber.text(out), scrubber.text(err)


# The command line of the helper process: it reads its program from the first line of stdin,
# so neither the program text nor any secret shows up in the process list.
HELPER_BOOT = (
    "import json, sys; "
    "exec(compile(json.loads(sys.stdin.readline()), '<backendai-helper>', 'exec'))"
)


class VenvSession:
    """A helper program kept running in the virtualenv's interpreter for several requests.

    The program (built on ``VENV_PRELUDE``) is sent as the first line of stdin; each request is
    one JSON line, and each answer one ``RESULT_MARKER`` line on stdout. Reusing the process
    saves the import of the Backend.AI packages (seconds of CPU) for every further request.
    Its stderr goes to a temporary file, so a chatty library can never block the pipe.
    """

    def __init__(self, module, python, program, scrubber, cwd=None, environ=None):
        self.module = module
        self.python = python
        self.scrubber = scrubber
        env = dict(os.environ)
        env.update(environ or {})
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [python, "-c", HELPER_BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                cwd=cwd or None,
                env=env,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            module.fail_json(msg=f"could not start {python}: {scrubber.text(exc)}")
        self._send(program)

    def _send(self, obj):
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died()

    def _stderr_text(self):
        self._stderr.seek(0)
        return self.scrubber.text(self._stderr.read().decode("utf-8", "replace"))

    def _died(self):
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.module.fail_json(
            msg=f"the helper program run by {self.python} failed (rc={rc}): "
            f"{last_error_line(self._stderr_text())}",
            rc=rc,
        )

    def request(self, payload):
        """Send one request; return the answer, or fail the module with a clean message."""
        self._send(payload)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self._died()
            if line.startswith(RESULT_MARKER):
                break
        try:
            answer = json.loads(line[len(RESULT_MARKER):])
        except ValueError:
            self.close()
            self.module.fail_json(msg="the helper program sent an unreadable answer")
        if answer.get("error"):
            self.close()
            details = self.scrubber.data(answer.get("details") or {})
            self.module.fail_json(msg=self.scrubber.text(answer["error"]), **details)
        return self.scrubber.data(answer)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def run_venv_program(module, python, program, payload, scrubber, cwd=None, environ=None):
    """Run ``program`` for a single request; return its JSON answer (see VenvSession)."""
    session = VenvSession(module, python, program, scrubber, cwd=cwd, environ=environ)
    try:
        return session.request(payload)
    finally:
        session.close()


def read_ini_option(path, section, option):
    """Read one option of an ini file the way alembic does (``%(here)s`` is supported)."""
    here = os.path.dirname(os.path.abspath(path))
    for parser in (ConfigParser(defaults={"here": here}), RawConfigParser()):
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
            if parser.has_option(section, option):
                return parser.get(section, option)
            return None
        except (ConfigParserError, ValueError):
            continue
    return None


def url_password(url):
    """The password inside a database URL (as written and URL-decoded), or None."""
    if not url:
        return None
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password is None:
        match = re.search(r"://[^:/@]*:([^@]*)@", url)
        password = match.group(1) if match else None
    return password


def redact_url(url):
    return URL_CREDENTIALS.sub(r"\g<pre>" + MASK + "@", url or "")


# ---------------------------------------------------------------------------------------------
# Password hashes as Backend.AI stores them in users.password:
#   <algorithm>$<rounds>$<salt>$<hash>   (salt and hash in lowercase hex)
# with algorithm pbkdf2_sha256 (the default, 600000 rounds, 32-byte salt), pbkdf2_sha3_256,
# sha256 or sha3_256 (salted, iterated digests), or a legacy bcrypt string ($2b$...).
# ---------------------------------------------------------------------------------------------

def parse_password_hash(stored):
    """Split a stored hash into (algorithm, rounds, salt, digest); None if it is not ours."""
    if not isinstance(stored, str):
        return None
    if stored.startswith("$2"):
        return ("bcrypt", None, None, stored)
    parts = stored.split("$")
    if len(parts) != 4:
        return None
    algorithm, rounds, salt, digest = parts
    try:
        rounds = int(rounds)
    except ValueError:
        return None
    return (algorithm, rounds, salt, digest)


def verify_password_hash(password, stored):
    """True/False when ``password`` does/does not match ``stored``; None when undecidable here.

    None covers bcrypt (not in the standard library) and unknown formats; callers treat it as
    "cannot tell" and ask the virtualenv instead.
    """
    parsed = parse_password_hash(stored)
    if parsed is None or password is None:
        return None
    algorithm, rounds, salt, digest = parsed
    data = password.encode("utf-8")
    if algorithm in ("pbkdf2_sha256", "pbkdf2_sha3_256"):
        try:
            salt_bytes = bytes.fromhex(salt)
        except ValueError:
            return False
        name = "sha256" if algorithm == "pbkdf2_sha256" else "sha3_256"
        computed = hashlib.pbkdf2_hmac(name, data, salt_bytes, rounds).hex()
    elif algorithm in ("sha256", "sha3_256"):
        computed = password
        for _ in range(rounds):
            computed = hashlib.new(algorithm, f"{salt}{computed}".encode()).hexdigest()
    else:
        return None
    return hmac.compare_digest(computed, digest)


def make_password_hash(password, rounds=600000, salt=None):
    """A pbkdf2_sha256 hash in Backend.AI's format (used by the tests and for documentation)."""
    salt = salt if salt is not None else os.urandom(32)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, rounds).hex()
    return f"pbkdf2_sha256${rounds}${salt.hex()}${digest}"


# ---------------------------------------------------------------------------------------------
# JSON helpers
# ---------------------------------------------------------------------------------------------

def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def json_equal(left, right):
    return canonical_json(left) == canonical_json(right)
