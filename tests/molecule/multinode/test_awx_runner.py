"""playbooks/verify.yml runs the way AWX/Tower runs a job: ansible-runner, a private data
directory, extra variables only, nothing on a terminal.

AWX hands the job's inventory, extra variables and environment to ansible-runner in a private
data directory and runs the project's playbook with its ansible.cfg; a prompt or a path that only
exists on an operator's machine would hang or fail the job. The check: the run succeeds with
stdin closed, every host passed the unit check, and the extra variable was honoured (the
session test is switched off through it and the summary says so).
"""

from __future__ import annotations

import pytest
from conftest import ROOT

ansible_runner = pytest.importorskip("ansible_runner")


def test_verify_runs_under_ansible_runner_with_extra_vars_only(inventory, cluster, tmp_path):
    private = tmp_path / "job"
    (private / "env").mkdir(parents=True)
    result = ansible_runner.run(
        private_data_dir=str(private),
        project_dir=str(ROOT),
        playbook="playbooks/verify.yml",
        inventory=inventory,
        extravars={"verify_session": False},
        envvars={"ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        quiet=True,
        timeout=900,
    )
    stdout = result.stdout.read()
    assert (result.status, result.rc) == ("successful", 0), stdout[-4000:]

    unit_checks = {event["event_data"]["host"] for event in result.events
                   if event["event"] == "runner_on_ok"
                   and event["event_data"].get("task")
                   == "Check that the units this node must run are active"}
    assert sorted(unit_checks) == sorted(cluster.hosts), unit_checks
    assert "Sessions:    not run" in stdout, stdout[-3000:]
    assert (private / "artifacts").is_dir(), "ansible-runner wrote no job artifacts"
