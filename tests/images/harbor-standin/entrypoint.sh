#!/bin/bash
# Entry point of the test-bed Harbor stand-in's container (its CMD): the distribution registry
# (127.0.0.1:5000) and the Harbor API fake (127.0.0.1:8081), with nginx in front of both on
# port 8080. Arguments go to the fake (server.py), e.g. --state-file.
#
# All three log to the container's output. When one of them stops, the entry point says which
# and with what status, stops the other two and exits non-zero (Compose's restart policy then
# starts the container again). SIGTERM (docker stop) stops all three and exits 0.
set -uo pipefail
HERE=/opt/harbor-fake
API_PORT=8081
REGISTRY_URL=http://127.0.0.1:5000

say() { echo "harbor-standin: $*" >&2; }

declare -A NAMES=()
start() {  # start NAME COMMAND...
  local name=$1
  shift
  "$@" &
  NAMES[$!]=$name
  say "started $name (pid $!)"
}
stop_all() {
  local pid
  for pid in "${!NAMES[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  wait
}
trap 'say "stopping on SIGTERM"; stop_all; say "stopped"; exit 0' TERM INT

mkdir -p /data/registry
nginx -t -q -c "$HERE/nginx.conf" || { say "the nginx configuration is invalid"; exit 1; }

start registry /usr/bin/docker-registry serve "$HERE/registry.yml"
start harbor-api python3 "$HERE/server.py" --host 127.0.0.1 --port "$API_PORT" \
  --registry-url "$REGISTRY_URL" "$@"
start nginx nginx -c "$HERE/nginx.conf" -g "daemon off;"

wait -n -p ended
status=$?
say "${NAMES[$ended]:-a process} exited with status $status; stopping the others"
unset "NAMES[$ended]"
stop_all
exit $(( status == 0 ? 1 : status ))
