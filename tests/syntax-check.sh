#!/usr/bin/env bash
# ansible-playbook --syntax-check of every playbook (playbooks/*.yml and site.yml) with every
# example inventory (inventories/*/). Exits non-zero when any combination fails.
#   tests/syntax-check.sh            all inventories
#   tests/syntax-check.sh demo prod  only these
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ -x .venv/bin/ansible-playbook ]]; then
  PATH="$PWD/.venv/bin:$PATH"
fi
export ANSIBLE_CONFIG="${ANSIBLE_CONFIG:-$PWD/ansible.cfg}"
export ANSIBLE_NOCOLOR=1

if (($# > 0)); then
  inventories=()
  for name in "$@"; do inventories+=("inventories/$name"); done
else
  inventories=()
  for dir in inventories/*/; do inventories+=("${dir%/}"); done
fi
playbooks=(site.yml playbooks/*.yml)

passed=0
failed=0
failures=()
# One ansible-playbook per combination, as many at once as there are cores; reported in order.
jobs_max=$(nproc 2>/dev/null || echo 2)
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
n=0
for inventory in "${inventories[@]}"; do
  for playbook in "${playbooks[@]}"; do
    while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
    (
      ansible-playbook --syntax-check -i "$inventory" "$playbook" >"$results/$n.out" 2>&1
      echo $? >"$results/$n.rc"
    ) &
    n=$((n + 1))
  done
done
wait

n=0
for inventory in "${inventories[@]}"; do
  for playbook in "${playbooks[@]}"; do
    if [[ "$(cat "$results/$n.rc")" == 0 ]]; then
      passed=$((passed + 1))
      echo "ok      $playbook  -i $inventory"
    else
      failed=$((failed + 1))
      failures+=("$playbook -i $inventory")
      echo "FAILED  $playbook  -i $inventory"
      sed 's/^/        /' "$results/$n.out"
    fi
    n=$((n + 1))
  done
done

total=$((passed + failed))
echo "syntax-check: $passed/$total passed (${#playbooks[@]} playbooks x ${#inventories[@]} inventories)"
if ((failed > 0)); then
  printf 'failed: %s\n' "${failures[@]}"
  exit 1
fi
