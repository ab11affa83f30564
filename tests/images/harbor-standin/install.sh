#!/bin/bash
# Test-bed stand-in for Harbor's offline installer: same entry point and steps (check Docker
# and Compose, load the bundled images, generate the configuration from harbor.yml with
# ./prepare, replace a running instance, start it with Compose). The "Harbor" it starts is one
# container: a real distribution registry behind nginx, and the collection's fake of Harbor's
# REST API and token service, which also decides who may pull and push.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$DIR/common.sh"

for arg in "$@"; do
  case "$arg" in
    --help)
      echo "usage: ./install.sh [--with-trivy]   (set hostname and the other settings in harbor.yml first)"
      exit 0 ;;
    --with-trivy) echo "note: this stand-in has no Trivy scanner; --with-trivy is accepted and ignored" ;;
    *) fail "unknown option $arg (see --help)" ;;
  esac
done

cd "$DIR"
[ -f harbor.yml ] || fail "no harbor.yml in $DIR: copy harbor.yml.tmpl to harbor.yml and edit it."

say "Step 1: checking Docker"
check_docker
say "Step 2: checking Docker Compose"
check_compose

shopt -s nullglob
bundles=(harbor*.tar.gz)
if [ "${#bundles[@]}" -gt 0 ]; then
  say "Step 3: loading the Harbor images"
  docker load -i "${bundles[0]}"
fi

say "Step 4: preparing the configuration"
./prepare

say "Step 5: stopping an existing instance"
$DOCKER_COMPOSE down -v

say "Step 6: starting Harbor"
$DOCKER_COMPOSE up -d
echo "Harbor (test-bed stand-in) is installed and started."
