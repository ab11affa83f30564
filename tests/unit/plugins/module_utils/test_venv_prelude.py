"""The virtualenv programs are built from real files and run on their own.

``_venv_prelude.program`` concatenates the sources of ``_scrub``, the prelude and a helper; the
result must compile, answer requests over stdin the way ``VenvSession`` speaks to it, and scrub
secrets with the same function the modules use.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ansible_collections.backendai.cluster.plugins.module_utils import (
    _alembic_probe,
    _fixture_helper,
    _venv_prelude,
)
from ansible_collections.backendai.cluster.plugins.module_utils._backendai import (
    HELPER_BOOT,
    RESULT_MARKER,
    Scrubber,
)
from ansible_collections.backendai.cluster.plugins.module_utils._scrub import MASK, scrub_text

ECHO = '''
def main(p):
    if p.get("fail"):
        fail("cannot do it with " + p["fail"])
    add_url_secret(p["url"])
    return {"echo": p["url"], "also": "the password is hunter2-secret"}
'''


@pytest.mark.parametrize("helper", [_fixture_helper, _alembic_probe])
def test_programs_compile_with_one_main_and_the_scrubber(helper):
    text = _venv_prelude.program(helper)
    compile(text, "<program>", "exec")
    assert text.count("\ndef main(") == 1
    assert "def scrub_text(" in text and text.rstrip().endswith("run(main)")


def _run(program: str, *requests: dict) -> list[dict]:
    stdin = json.dumps(program) + "\n" + "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.run([sys.executable, "-c", HELPER_BOOT], input=stdin, text=True,
                          capture_output=True, timeout=60, check=True)
    return [json.loads(line[len(RESULT_MARKER):]) for line in proc.stdout.splitlines()
            if line.startswith(RESULT_MARKER)]


def test_a_program_answers_each_request_and_scrubs_url_passwords(tmp_path, monkeypatch):
    (tmp_path / "echo_helper.py").write_text(ECHO)
    monkeypatch.syspath_prepend(str(tmp_path))
    import echo_helper

    program = _venv_prelude.program(echo_helper)
    url = "postgresql://bai:hunter2-secret@10.0.0.1:8100/backend"
    first, second = _run(program, {"url": url}, {"url": url, "fail": "hunter2-secret"})
    assert first == {"echo": f"postgresql://bai:{MASK}@10.0.0.1:8100/backend",
                     "also": f"the password is {MASK}"}
    assert second == {"error": f"cannot do it with {MASK}"}


def test_the_modules_scrub_the_same_way():
    text = "see https://a:pw-1234@host/ and s3cr3t-value"
    assert Scrubber(["s3cr3t-value"]).text(text) == scrub_text(text, ["s3cr3t-value"])
    assert "pw-1234" not in scrub_text(text) and "s3cr3t" not in scrub_text(text, ["s3cr3t-value"])
    assert scrub_text("abc", ["abc"]) == "abc", "values under 4 characters are not masked"
