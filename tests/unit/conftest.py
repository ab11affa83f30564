"""Make the collection importable as ansible_collections.backendai.cluster in unit tests."""

import json
import os
import pathlib
import subprocess
import sys

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_COLLECTIONS = _ROOT / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


def ansible_doc_json(plugin_type: str, names) -> dict:
    """What `ansible-doc --json -t <type> <names>` shows users (doc fragments merged)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(_ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(_COLLECTIONS))
    ansible_doc = pathlib.Path(sys.executable).parent / "ansible-doc"
    proc = subprocess.run([str(ansible_doc), "--json", "-t", plugin_type, *names],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)
