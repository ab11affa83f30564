"""tools/junit-summary.py names each failed or errored test of a report, and only those."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[3] / "tools" / "junit-summary.py"

REPORT = """<testsuites><testsuite name="pytest">
<testcase classname="tests.a" name="test_fails"><failure message="assert 41 == 42">long trace
E   assert 41 == 42</failure></testcase>
<testcase classname="tests.a" name="test_passes"/>
<testcase classname="tests.b" name="test_errors">
<error message="fixture broke">setup</error></testcase>
<testcase classname="tests.b" name="test_skipped"><skipped message="no gpu"/></testcase>
</testsuite></testsuites>"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          check=False)


def test_lists_failures_and_errors_only(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text(REPORT)
    proc = run(str(report))
    assert proc.returncode == 0
    assert "2 failed test(s)" in proc.stdout
    assert "FAILURE tests.a::test_fails" in proc.stdout
    assert "E   assert 41 == 42" in proc.stdout
    assert "ERROR tests.b::test_errors" in proc.stdout
    assert "test_passes" not in proc.stdout and "test_skipped" not in proc.stdout


def test_a_missing_report_is_said(tmp_path):
    proc = run(str(tmp_path / "none.xml"))
    assert proc.returncode == 0
    assert "no report" in proc.stdout
