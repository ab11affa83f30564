"""backup.yml and restore.yml read the halfstack roles' settings (playbooks/vars/halfstack.yml)
from the inventory and fall back to literal values where the inventory does not set them (a
playbook cannot see another role's defaults). Those literals must be the roles' defaults, or a
default cluster would be backed up from, or restored into, a container or directory that does
not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
FALLBACK = re.compile(r"(halfstack_(?:postgres|etcd)_\w+) \| default\(((?:[^()]|\([^()]*\))*)\)")


def role_default(name: str) -> str:
    role = "halfstack_postgres" if name.startswith("halfstack_postgres") else "halfstack_etcd"
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text())[name]


def as_template(expr: str) -> str:
    """The fallback expression written as the roles write their defaults."""
    expr = expr.strip()
    if re.fullmatch(r"'[^']*'", expr):
        return expr[1:-1]
    var, _, rest = expr.partition(" ~ ")
    assert re.fullmatch(r"'[^']*'", rest.strip()), expr
    return "{{ %s }}%s" % (var.strip(), rest.strip()[1:-1])


def test_fallbacks_equal_the_roles_defaults():
    found = FALLBACK.findall((REPO / "playbooks/vars/halfstack.yml").read_text())
    assert len(found) == 4, found
    for name, expr in found:
        assert as_template(expr) == role_default(name), (name, expr)


@pytest.mark.parametrize("playbook", ["playbooks/backup.yml", "playbooks/restore.yml"])
def test_the_playbooks_take_them_from_the_shared_file(playbook):
    text = (REPO / playbook).read_text()
    assert "- vars/halfstack.yml" in text
    assert not FALLBACK.search(text), f"{playbook} repeats a fallback of vars/halfstack.yml"
