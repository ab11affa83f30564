#!/usr/bin/env bash
# `make test` in two lanes on one machine. Measured on 2 cores: building the node image and the
# artifacts and the module integration tests keep one core busy at most (pip, debootstrap and
# `docker commit` run one process at a time), while the fast tier and the Molecule converge use
# both. So each single-threaded stretch gets a CPU-bound partner:
#
#   1. venv, test dependencies                        (alone)
#   2. node image, artifacts        beside  fast tier (lint, unit, syntax, bad inventories)
#   3. Molecule scenario            beside  module integration
#
# The lane that takes longest streams its output; the other one writes a log under
# tests/output/ that is printed when both are done. The exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
out=tests/output
mkdir -p "$out"

side() {  # side NAME TARGET...: make TARGET... in the background, output to $out/NAME.log;
          # its process id in $side_pid
    local name=$1
    shift
    "$MAKE" --no-print-directory "$@" >"$out/$name.log" 2>&1 &
    side_pid=$!
}

report() {  # report NAME PID: wait for a side lane, print its log, return its status
    local name=$1 pid=$2 rc
    wait "$pid"
    rc=$?
    echo
    echo "======== make $name (ran beside the lane above): exit $rc ========"
    cat "$out/$name.log"
    return "$rc"
}

phase() {  # phase: print a time-stamped heading
    printf '\n======== %s  %s ========\n' "$(date -u +%H:%M:%S)" "$*"
}

start=$(date +%s)
phase "venv and test dependencies"
"$MAKE" --no-print-directory venv deps || exit

phase "node image and artifacts, beside the fast tier"
side test-fast test-fast
"$MAKE" --no-print-directory images artifacts
build=$?
report test-fast "$side_pid"
fast=$?
if [ "$build" -ne 0 ] || [ "$fast" -ne 0 ]; then
    echo "make test: stopped after phase 2 (artifacts: exit $build, fast tier: exit $fast)" >&2
    exit 1
fi

phase "Molecule scenario, beside the module integration tests"
side integration integration
"$MAKE" --no-print-directory test-full
full=$?
report integration "$side_pid"
integration=$?

elapsed=$(( $(date +%s) - start ))
phase "make test: $((elapsed / 60)) min $((elapsed % 60)) s" \
      "(scenario: exit $full, module integration: exit $integration)"
[ "$full" -eq 0 ] && [ "$integration" -eq 0 ]
