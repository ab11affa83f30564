"""A role's tag runs that role.

`site.yml --tags <role>` must run the role's tasks on its nodes (also the roles that core.yml
includes dynamically, whose tags an include without tags would hide), its package install and
the wheelhouse it installs from, and nothing may fail because a task that the tags skip did not
register its result. On the converged cluster each such run changes nothing.
"""

from __future__ import annotations

import re

import pytest
from conftest import run_playbook

# role tag, inventory group, a task header the run must show
CASES = [
    ("storage_proxy", "storage_proxy", "Compare the node with the desired state of storage-proxy"),
    ("webserver", "webserver", "Compare the node with the desired state of webserver"),
    ("appproxy", "appproxy", "Compare the node with the desired state of appproxy-coordinator"),
    ("client", "client", "Compare the node with the desired state of client"),
    # The agents' Docker login to Harbor belongs to the agent's tags too.
    ("agent", "agents", "Log in as the Backend.AI user"),
]


@pytest.mark.parametrize(("tag", "group", "marker"), CASES, ids=[c[0] for c in CASES])
def test_a_role_tag_runs_the_role_and_changes_nothing_on_a_converged_cluster(
        cluster, inventory, tag, group, marker):
    name = cluster.first(group)
    out = run_playbook(inventory, "site.yml", "--tags", tag, "--limit", name)
    assert re.search(rf"^TASK \[[^\]]*{re.escape(marker)}", out, re.M), out[-3000:]
    assert "TASK [Install the packages of" in out, out[-3000:]
    m = re.search(rf"^{re.escape(name)}\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0",
                  out, re.M)
    assert m and m[1] == "0", out[-3000:]
