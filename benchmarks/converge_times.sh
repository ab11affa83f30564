#!/usr/bin/env bash
# Benchmark: fresh converge and no-op re-run of site.yml on the test bed, per tier.
# Prints one line per measurement; it asserts nothing (the Molecule idempotence step does that).
#
#   benchmarks/converge_times.sh [INVENTORY] [--tags TAGS]
#
# Destroys and recreates the test-bed containers first, so the first run is a true fresh
# converge (the node image and the artifacts are reused).
set -euo pipefail
cd "$(dirname "$0")/.."
INV=${1:-inventories/demo}; shift || true
export PATH=$PWD/.venv/bin:$PATH ANSIBLE_CONFIG=$PWD/ansible.cfg
t() { local s e; s=$(date +%s.%N); "$@" >/tmp/bai-bench.$$.log 2>&1 || { tail -40 /tmp/bai-bench.$$.log; exit 1; }
      e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.1f}')"; }
echo "inventory: $INV  nodes: $(ansible-inventory -i "$INV" --list | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["_meta"]["hostvars"]))')  extra: ${*:-none}"
echo "recreate test bed:     $(t ansible-playbook tests/testbed/destroy.yml -i "$INV"; t ansible-playbook tests/testbed/create.yml -i "$INV") s"
ansible-playbook playbooks/secrets.yml -i "$INV" >/dev/null
echo "fresh converge:        $(t ansible-playbook site.yml -i "$INV" "$@") s"
echo "no-op re-run:          $(t ansible-playbook site.yml -i "$INV" "$@") s"
grep -E '^[a-z0-9]+ +: ok=' /tmp/bai-bench.$$.log | sed 's/^/  /'
echo "check mode (--check):  $(t ansible-playbook site.yml -i "$INV" --check "$@") s"
rm -f /tmp/bai-bench.$$.log
