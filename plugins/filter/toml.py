# Copyright: backendai.cluster maintainers
# Apache License 2.0 (see galaxy.yml)
"""TOML filters: ``to_toml`` (a TOML 1.0 writer) and ``from_toml`` (tomllib)."""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

try:  # Python >= 3.11
    import tomllib as _toml_reader
except ImportError:  # pragma: no cover - older controllers
    try:
        import tomli as _toml_reader
    except ImportError:
        _toml_reader = None

# Documentation: to_toml.yml and from_toml.yml next to this file (ansible-doc -t filter).

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _is_mapping(value):
    return isinstance(value, Mapping)


def _is_array(value):
    return isinstance(value, (list, tuple))


def _is_table_array(value):
    """A non-empty list whose items are all mappings: written as [[array.of.tables]]."""
    return _is_array(value) and len(value) > 0 and all(_is_mapping(v) for v in value)


def _quote_string(value):
    out = []
    for ch in value:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _key(key, path):
    if not isinstance(key, str):
        where = _dotted(path) or "the top level"
        raise AnsibleFilterError(f"to_toml: key {key!r} at {where} is not a string")
    key = to_text(key)
    return key if _BARE_KEY.match(key) else _quote_string(key)


def _dotted(path):
    return ".".join(_key(p, []) for p in path)


def _scalar(value, path):
    # bool before int: bool is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(float(value))
        # repr() gives "1e+20" or "1.5": both valid TOML. Make sure it reads back as a float.
        if not any(c in text for c in ".eE"):
            text += ".0"
        return text
    if isinstance(value, str):
        return _quote_string(to_text(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise AnsibleFilterError(
        f"to_toml: value at {_dotted(path)} has type {type(value).__name__}, "
        "which TOML cannot represent"
    )


def _is_scalar(value):
    return not (_is_mapping(value) or _is_array(value))


def _inline_value(value, path):
    """Any value written on one line: scalars, arrays, inline tables."""
    if value is None:
        raise AnsibleFilterError(
            f"to_toml: {_dotted(path)} is None inside an array or inline table; TOML has no null"
        )
    if _is_mapping(value):
        items = [(k, v) for k, v in value.items() if v is not None]
        if not items:
            return "{}"
        return "{ " + ", ".join(_pair(k, v, path) for k, v in items) + " }"
    if _is_array(value):
        return "[" + ", ".join(_inline_value(v, [*path, str(i)]) for i, v in enumerate(value)) + "]"
    return _scalar(value, path)


def _pair(key, value, path):
    return f"{_key(key, path)} = {_inline_value(value, [*path, key])}"


class _Writer:
    def __init__(self, inline_max_keys):
        self.inline_max_keys = inline_max_keys
        self.lines = []

    def _inline_table(self, value):
        if not _is_mapping(value):
            return False
        items = [v for v in value.values() if v is not None]
        if not items:
            return True
        return len(items) <= self.inline_max_keys and all(_is_scalar(v) for v in items)

    def _split(self, table, path, root):
        simple, tables = [], []
        for key, value in table.items():
            _key(key, path)  # validate early, with the path in the message
            if value is None:
                continue
            if _is_mapping(value) and not (not root and self._inline_table(value)):
                tables.append((key, value))
            elif _is_table_array(value):
                tables.append((key, value))
            else:
                simple.append((key, value))
        return simple, tables

    def _blank(self):
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def write_table(self, table, path, header, root=False):
        simple, tables = self._split(table, path, root)
        if header is not None and (simple or not tables):
            self._blank()
            self.lines.append(header)
        for key, value in simple:
            self.lines.append(_pair(key, value, path))
        for key, value in tables:
            self._write_sub(value, [*path, key])

    def _write_sub(self, value, path):
        if _is_mapping(value):
            self.write_table(value, path, f"[{_dotted(path)}]")
            return
        for element in value:
            # Every element of an array of tables gets its header, even an empty one.
            self._blank()
            self.lines.append(f"[[{_dotted(path)}]]")
            e_simple, e_tables = self._split(element, path, False)
            for key, item in e_simple:
                self.lines.append(_pair(key, item, path))
            for key, item in e_tables:
                self._write_sub(item, [*path, key])


def to_toml(data, inline_max_keys=2):
    """Render ``data`` (a mapping) as a TOML 1.0 document ending with a newline."""
    if not _is_mapping(data):
        raise AnsibleFilterError(f"to_toml expects a dict, got {type(data).__name__}")
    try:
        inline_max_keys = int(inline_max_keys)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("to_toml: inline_max_keys must be an integer") from exc
    writer = _Writer(inline_max_keys)
    writer.write_table(data, [], None, root=True)
    while writer.lines and writer.lines[-1] == "":
        writer.lines.pop()
    return "\n".join(writer.lines) + "\n" if writer.lines else ""


def from_toml(text):
    """Parse a TOML document into a dict."""
    if _toml_reader is None:  # pragma: no cover
        raise AnsibleFilterError("from_toml needs Python >= 3.11 (tomllib) or the tomli package")
    try:
        return _toml_reader.loads(to_text(text))
    except Exception as exc:  # tomllib.TOMLDecodeError, or a type error for bad input
        raise AnsibleFilterError(f"from_toml: {exc}") from exc


class FilterModule:
    """TOML filters."""

    def filters(self):
        return {"to_toml": to_toml, "from_toml": from_toml}
