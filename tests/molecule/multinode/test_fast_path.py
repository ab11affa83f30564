"""The fast path of the prepare roles (roles/_common/tasks/fast_path.yml).

On a converged node os_prep costs one question to the node, and none of its own tasks run. A file
of the role edited on the node makes the next run take the full path: check mode reports the
change without making it (and without recording anything), the real run puts the file right and
records the state again, and the run after that is fast again.
"""

from __future__ import annotations

import re

from conftest import run_playbook

LIMITS_TASK = ("TASK [backendai.cluster.os_prep : "
               "Write the resource limits for root and the service account]")


def _changed(out: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)}\s+: ok=\d+\s+changed=(\d+)", out, re.M)
    assert m, out[-3000:]
    return int(m[1])


def test_drift_takes_the_full_path_once_and_a_converged_node_skips_the_role(cluster, inventory):
    name = cluster.first("webserver")
    node = cluster.node(name)
    limits = cluster.get("os_prep_limits_file", "/etc/security/limits.d/99-backend-ai.conf",
                         host=name)
    run = ("site.yml", "--limit", name, "--tags", "os_prep")
    with node.sudo():
        original = node.file(limits).content_string

    out = run_playbook(inventory, *run)
    assert LIMITS_TASK not in out and _changed(out, name) == 0, out[-3000:]

    with node.sudo():
        node.check_output(f"echo '* soft nofile 1024' >> {limits}")
    try:
        out = run_playbook(inventory, *run, "--check", "--diff")
        assert LIMITS_TASK in out and _changed(out, name) == 1, out[-3000:]
        with node.sudo():
            assert node.file(limits).content_string != original, "check mode changed the file"

        out = run_playbook(inventory, *run)
        assert LIMITS_TASK in out and _changed(out, name) == 1, out[-3000:]
    finally:
        with node.sudo():
            fixed = node.file(limits).content_string
            if fixed != original:
                node.check_output(f"sed -i '$d' {limits}")
    assert fixed == original

    out = run_playbook(inventory, *run)
    assert LIMITS_TASK not in out and _changed(out, name) == 0, out[-3000:]
