#!/usr/bin/env bash
# Build the stand-in service image for the test bed and save it as a tarball in the artifacts
# directory, as an air-gapped site would carry the official images across.
#
#   tests/images/build-service-images.sh [ARTIFACTS_DIR]     (default: $BAI_ARTIFACTS_DIR or ./artifacts)
#
# The official images (postgres:16-alpine, quay.io/coreos/etcd:v3.5, redis:7-alpine) cannot be
# pulled here. One image built from Debian trixie packages (PostgreSQL 17, etcd 3.5, Redis 8)
# offers the same interface: the environment variables, data paths, ports and binaries the
# guide's compose files use (postgres, pg_isready, /usr/local/bin/etcd, etcdctl, redis-server,
# redis-cli). The roles get it through their image variables; they never depend on which image
# they get.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${BAI_ARTIFACTS_DIR:-$HERE/../../artifacts}}
mkdir -p "$OUT/images"
OUT=$(cd "$OUT" && pwd)
HASH=$(cat "$0" "$HERE/halfstack/entrypoint.sh" | sha256sum | cut -c1-12)
TAG=backendai-testbed/halfstack:trixie
TARBALL=$OUT/images/halfstack-trixie.tar
if [ -f "$TARBALL" ] && [ "$(cat "$TARBALL.stamp" 2>/dev/null)" = "$HASH" ]; then
  echo "$TARBALL up to date"; exit 0
fi
BASE=$("$HERE/build-node-image.sh" trixie | tail -1)
start=$(date +%s)
name=bai-build-halfstack-$$
docker rm -f "$name" >/dev/null 2>&1 || true
docker run --name "$name" -v "$HERE/halfstack/entrypoint.sh:/tmp/entrypoint.sh:ro" "$BASE" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql-17 postgresql-client-17 etcd-server etcd-client redis-server >/dev/null
  install -m 0755 /tmp/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
  ln -sf /usr/bin/etcd /usr/local/bin/etcd
  for b in /usr/lib/postgresql/17/bin/*; do ln -sf "$b" /usr/local/bin/; done
  mkdir -p /var/lib/postgresql/data /etcd-data /data
  apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'
docker commit \
  -c 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' -c 'CMD ["bash"]' \
  -c 'ENV PGDATA=/var/lib/postgresql/data ETCDCTL_API=3' -c 'WORKDIR /data' \
  -c 'LABEL org.opencontainers.image.description="Test-bed stand-in for the postgres etcd and redis images built from Debian trixie packages"' \
  "$name" "$TAG" >/dev/null
docker rm -f "$name" >/dev/null
docker save "$TAG" -o "$TARBALL"
echo "$HASH" >"$TARBALL.stamp"
echo "built $TAG -> $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $(( $(date +%s) - start ))s"
