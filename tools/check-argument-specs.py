#!/usr/bin/env python3
"""Check that every role's defaults/main.yml and meta/argument_specs.yml agree.

For each role under roles/ (internal roles, whose name starts with "_", are skipped):

* every variable in defaults/main.yml must be an option of an entry point in argument_specs;
* every option that has a `default` in argument_specs must be in defaults/main.yml with the
  very same value (the spec's default is documentation only: Ansible takes the value from
  defaults/main.yml, so the two must not drift apart);
* a variable in defaults/main.yml whose option has no `default` in the spec is reported too.

A role with defaults but no argument_specs is an error (with --allow-missing, a warning).

Usage: tools/check-argument-specs.py [--allow-missing] [ROLE_DIR ...]
Exit status: 0 when everything agrees, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's !vault and !unsafe tags as plain strings."""


def _tagged_string(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return loader.construct_scalar(node)


_Loader.add_constructor("!vault", _tagged_string)
_Loader.add_constructor("!unsafe", _tagged_string)


def load_yaml(path: Path):
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def spec_options(specs: dict) -> dict[str, dict]:
    """option name -> option spec, over all entry points (the first entry point wins)."""
    options: dict[str, dict] = {}
    for entry_point in (specs.get("argument_specs") or {}).values():
        for name, option in ((entry_point or {}).get("options") or {}).items():
            options.setdefault(name, option or {})
    return options


def check_role(role: Path, allow_missing: bool) -> tuple[list[str], list[str]]:
    """Return (errors, warnings) for one role directory."""
    errors: list[str] = []
    warnings: list[str] = []
    defaults_file = role / "defaults" / "main.yml"
    specs_file = next(
        (
            role / "meta" / n
            for n in ("argument_specs.yml", "argument_specs.yaml")
            if (role / "meta" / n).is_file()
        ),
        None,
    )
    defaults = (load_yaml(defaults_file) or {}) if defaults_file.is_file() else {}
    if not isinstance(defaults, dict):
        return [f"{defaults_file}: not a mapping of variables"], warnings
    if specs_file is None:
        if defaults:
            message = f"{role.name}: defaults/main.yml but no meta/argument_specs.yml"
            (warnings if allow_missing else errors).append(message)
        return errors, warnings
    options = spec_options(load_yaml(specs_file) or {})

    for name, value in defaults.items():
        if name not in options:
            errors.append(f"{role.name}: {name} is in defaults/main.yml but not in argument_specs")
        elif "default" not in options[name]:
            errors.append(
                f"{role.name}: {name} has a default in defaults/main.yml ({value!r}) but none in "
                "argument_specs"
            )
    for name, option in options.items():
        if "default" not in option:
            continue
        if name not in defaults:
            errors.append(
                f"{role.name}: argument_specs gives {name} the default {option['default']!r}, "
                "but defaults/main.yml does not set it"
            )
        elif option["default"] != defaults[name]:
            errors.append(
                f"{role.name}: {name} defaults to {defaults[name]!r} in defaults/main.yml but to "
                f"{option['default']!r} in argument_specs"
            )
    return errors, warnings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roles", nargs="*", type=Path, help="role directories (default: roles/*)")
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="only warn about roles that have defaults but no argument_specs",
    )
    args = parser.parse_args(argv)
    roles = args.roles or sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir())
    roles = [r for r in roles if not r.name.startswith("_")]

    all_errors: list[str] = []
    for role in roles:
        errors, warnings = check_role(role, args.allow_missing)
        for warning in warnings:
            print(f"warning: {warning}")
        for error in errors:
            print(f"error: {error}")
        all_errors.extend(errors)
    status = "disagree" if all_errors else "agree"
    print(
        f"check-argument-specs: {len(roles)} roles checked, {len(all_errors)} errors: defaults "
        f"and argument_specs {status}"
    )
    return 1 if all_errors else 0


if __name__ == "__main__":
    sys.exit(main())
