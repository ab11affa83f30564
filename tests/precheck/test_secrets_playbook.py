"""playbooks/secrets.yml: generates every secret, never overwrites one, replaces placeholders,
keeps the rest of the file, writes mode 0600 (or ansible-vault encrypted), and a second run
changes nothing. Precheck then accepts the example production inventory as it is."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess

import pytest
import yaml
from conftest import CATALOG, REPO, VENV_BIN, ansible_env, recap, run_playbook

FORMATS = {
    "password": r"^[A-Za-z0-9]{32}$",
    "db_password": r"^[A-Za-z0-9]{32}$",
    "secret": r"^[A-Za-z0-9]{50,64}$",
    "access_key": r"^AKIA[A-Z0-9]{16}$",
    "secret_key": r"^[A-Za-z0-9/+]{40}$",
    "uuid": r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
}


def changed(output: str) -> int:
    return sum(c for c, _ in recap(output).values())


@pytest.fixture
def prod_copy(tmp_path):
    """A copy of the example production inventory (without any vault.yml)."""
    inventory = tmp_path / "mysite"
    shutil.copytree(REPO / "inventories/prod", inventory)
    (inventory / "group_vars/all/vault.yml").unlink(missing_ok=True)
    return inventory


def vault_file(inventory):
    return inventory / "group_vars/all/vault.yml"


def test_generates_every_secret_once_and_precheck_accepts_them(prod_copy):
    rc, out = run_playbook("playbooks/secrets.yml", prod_copy)
    assert rc == 0, out
    assert changed(out) >= 1
    path = vault_file(prod_copy)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    values = yaml.safe_load(first)
    for entry in CATALOG:
        value = values[entry["name"]]
        pattern = FORMATS[entry["kind"]]
        if entry.get("special"):
            pattern = r"^[A-Za-z0-9_.-]{32}$"
            assert re.search(r"[_.-]", value), entry["name"]
        assert re.match(pattern, value), f"{entry['name']} has the wrong format"
        if entry["kind"] in ("password", "db_password"):
            assert re.search("[A-Z]", value) and re.search("[a-z]", value)
            assert re.search("[0-9]", value)
    assert len(set(values.values())) == len(values), "two secrets are equal"
    # The values never appear in the output.
    for value in values.values():
        assert value not in out

    rc, out = run_playbook("playbooks/secrets.yml", prod_copy)
    assert rc == 0, out
    assert changed(out) == 0, out
    assert path.read_text() == first

    rc, out = run_playbook("playbooks/precheck.yml", prod_copy)
    assert rc == 0, out
    assert "Precheck passed for 7 host(s)" in out


def test_keeps_values_and_comments_and_replaces_placeholders(tmp_path):
    inventory = tmp_path / "site"
    shutil.copytree(REPO / "inventories/demo", inventory)
    path = vault_file(inventory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "---\n"
        "# chosen by the site\n"
        'bai_postgres_password: "KeepThisOne4242xyz"\n'
        'bai_redis_password: "<your-strong-redis-password>"\n'
        "bai_superadmin_password: change-me\n"
        "site_note: 42\n"
    )
    path.chmod(0o644)
    rc, out = run_playbook("playbooks/secrets.yml", inventory)
    assert rc == 0, out
    text = path.read_text()
    values = yaml.safe_load(text)
    assert text.startswith("---\n# chosen by the site\n")
    assert values["bai_postgres_password"] == "KeepThisOne4242xyz"
    assert values["site_note"] == 42
    assert re.match(FORMATS["db_password"], values["bai_redis_password"])
    assert re.match(FORMATS["password"], values["bai_superadmin_password"])
    assert set(values) == {e["name"] for e in CATALOG} | {"site_note"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    report = re.search(r"generated ([a-z_, ]+)\.", out)
    assert report, out
    generated = report[1].split(", ")
    assert "bai_redis_password" in generated
    assert "bai_superadmin_password" in generated
    assert "bai_postgres_password" not in generated

    rc, out = run_playbook("playbooks/secrets.yml", inventory)
    assert rc == 0, out
    assert changed(out) == 0, out
    assert path.read_text() == text


def test_encrypts_with_ansible_vault_and_reads_it_back(prod_copy, tmp_path):
    password_file = tmp_path / "vault-pass"
    password_file.write_text("a-test-vault-password\n")
    env = ansible_env()
    env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(password_file)
    path = vault_file(prod_copy)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('bai_user_password: "ChosenByHand2024abc"\n')

    rc, out = run_playbook("playbooks/secrets.yml", prod_copy, env=env)
    assert rc == 0, out
    encrypted = path.read_text()
    assert encrypted.startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    plain = subprocess.run(
        [
            str(VENV_BIN / "ansible-vault"),
            "view",
            "--vault-password-file",
            str(password_file),
            str(path),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    values = yaml.safe_load(plain)
    assert values["bai_user_password"] == "ChosenByHand2024abc"
    assert set(values) == {e["name"] for e in CATALOG}

    rc, out = run_playbook("playbooks/secrets.yml", prod_copy, env=env)
    assert rc == 0, out
    assert changed(out) == 0, out
    assert path.read_text() == encrypted

    rc, out = run_playbook("playbooks/precheck.yml", prod_copy, env=env)
    assert rc == 0, out


def test_check_mode_writes_nothing(prod_copy):
    rc, out = run_playbook("playbooks/secrets.yml", prod_copy, "--check")
    assert rc == 0, out
    assert not vault_file(prod_copy).exists()
