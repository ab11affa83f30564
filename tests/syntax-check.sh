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
for inventory in "${inventories[@]}"; do
  for playbook in "${playbooks[@]}"; do
    if output=$(ansible-playbook --syntax-check -i "$inventory" "$playbook" 2>&1); then
      passed=$((passed + 1))
      echo "ok      $playbook  -i $inventory"
    else
      failed=$((failed + 1))
      failures+=("$playbook -i $inventory")
      echo "FAILED  $playbook  -i $inventory"
      printf '%s\n' "$output" | sed 's/^/        /'
    fi
  done
done

total=$((passed + failed))
echo "syntax-check: $passed/$total passed (${#playbooks[@]} playbooks x ${#inventories[@]} inventories)"
if ((failed > 0)); then
  printf 'failed: %s\n' "${failures[@]}"
  exit 1
fi
