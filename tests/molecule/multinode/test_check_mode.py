"""Check mode on the converged cluster predicts no change.

`site.yml --check --diff` on the cluster the scenario just converged (twice) must report
changed=0 on every host: a task that reports a change here would either change the cluster on
every real run or lie in check mode. The JSON report names every task that did. No generated
secret may appear in the output either (--diff shows file contents).
"""

from __future__ import annotations

import json

import yaml
from conftest import ROOT, run_playbook

CATALOG = yaml.safe_load((ROOT / "roles/precheck/vars/main.yml").read_text())["_precheck_secrets"]
SECRETS = [s["name"] for s in CATALOG if s["kind"] != "uuid"]


def test_check_mode_on_the_converged_cluster_changes_nothing(cluster, inventory):
    out = run_playbook(inventory, "site.yml", "--check", "--diff",
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
                            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer"})
    report, _ = json.JSONDecoder().raw_decode(out, out.index("{"))
    changed = [
        (play["play"]["name"], task["task"]["name"], host)
        for play in report["plays"]
        for task in play["tasks"]
        for host, result in task["hosts"].items()
        if result.get("changed")
    ]
    assert report["stats"], "the check run touched no host"
    assert not changed, changed
    assert all(s.get("changed", 0) == 0 and s.get("failures", 0) == 0
               for s in report["stats"].values()), report["stats"]
    for name in SECRETS:
        value = cluster.vars.get(name)
        if value and len(str(value)) >= 8:
            assert str(value) not in out, f"the value of {name} is in the check-mode output"
