#!/usr/bin/env bash
# Build the test-bed stand-in for Harbor's offline installer:
#
#   tests/images/build-harbor-standin.sh [ARTIFACTS_DIR]    (default: $BAI_ARTIFACTS_DIR or ./artifacts)
#
# writes ARTIFACTS_DIR/harbor/harbor-offline-installer-<version>.tgz (version: v2.13.2-standin,
# or $HARBOR_STANDIN_VERSION) with the layout of Harbor's own archive:
#
#   harbor/install.sh  harbor/prepare  harbor/common.sh  harbor/harbor.yml.tmpl  harbor/LICENSE
#   harbor/harbor.<version>.tar.gz     (the image bundle that install.sh loads with docker load)
#
# Harbor cannot be downloaded here. The bundled image is built from the local node image
# (Debian) and runs, like Harbor, a real distribution registry (Debian's docker-registry) behind
# nginx on the port harbor.yml sets; the Harbor side, the REST API and the token service, is the
# collection's Harbor API fake (tests/fakes/harbor, with Debian's python3-yaml and
# python3-jsonschema), which also tells nginx who may pull and push. Registry content and the
# fake's state live under data_volume. Skipped when the archive is up to date; the ID of the
# bundled image is written next to the archive (<archive>.image-id).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-${BAI_ARTIFACTS_DIR:-$ROOT/artifacts}}
VERSION=${HARBOR_STANDIN_VERSION:-v2.13.2-standin}
SRC=$HERE/harbor-standin
FAKE=$ROOT/tests/fakes/harbor
mkdir -p "$OUT/harbor"
OUT=$(cd "$OUT" && pwd)
ARCHIVE=$OUT/harbor/harbor-offline-installer-$VERSION.tgz
HASH=$( (echo "$VERSION"; cat "$0" "$SRC"/* "$FAKE"/*.py "$FAKE"/*.yaml) | sha256sum | cut -c1-12)
if [ -f "$ARCHIVE" ] && [ "$(cat "$ARCHIVE.stamp" 2>/dev/null)" = "$HASH" ]; then
  echo "$ARCHIVE up to date"; exit 0
fi
BASE=$("$HERE/build-node-image.sh" trixie | tail -1)
TAG=backendai-testbed/harbor-standin:$VERSION
start=$(date +%s)
name=bai-build-harbor-$$
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"; docker rm -f "$name" >/dev/null 2>&1 || true' EXIT

# The image: the node image, the registry, nginx, PyYAML and jsonschema, the fake, the entry
# point that starts the three and the prepare step.
mkdir -p "$WORK/opt"
cp "$FAKE"/server.py "$FAKE"/harbor-api-subset.yaml "$FAKE"/README.md "$SRC/prepare.py" \
  "$SRC/entrypoint.sh" "$SRC/nginx.conf" "$SRC/registry.yml" "$WORK/opt/"
docker run --name "$name" -v "$WORK/opt:/tmp/harbor-fake:ro" "$BASE" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-yaml python3-jsonschema \
    docker-registry nginx >/dev/null
  rm -f /usr/sbin/policy-rc.d
  nginx -V 2>&1 | grep -q -- --with-http_auth_request_module
  mkdir -p /opt/harbor-fake /data
  cp /tmp/harbor-fake/* /opt/harbor-fake/
  chmod 0755 /opt/harbor-fake/entrypoint.sh
  python3 /opt/harbor-fake/server.py --help >/dev/null
  nginx -t -q -c /opt/harbor-fake/nginx.conf
  /usr/bin/docker-registry --version
  apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'
docker commit \
  -c "ENV HARBOR_STANDIN_IMAGE=$TAG" -c 'WORKDIR /opt/harbor-fake' -c 'ENTRYPOINT []' \
  -c 'CMD ["/opt/harbor-fake/entrypoint.sh"]' -c 'EXPOSE 8080' \
  -c 'LABEL org.opencontainers.image.description="Test-bed stand-in for Harbor: a distribution registry behind nginx and the Harbor API fake of backendai.cluster"' \
  "$name" "$TAG" >/dev/null
docker rm -f "$name" >/dev/null

# The archive, laid out like Harbor's offline installer.
mkdir -p "$WORK/harbor"
install -m 0755 "$SRC/install.sh" "$WORK/harbor/install.sh"
sed "s|@HARBOR_STANDIN_IMAGE@|$TAG|" "$SRC/prepare" >"$WORK/harbor/prepare"
chmod 0755 "$WORK/harbor/prepare"
install -m 0644 "$SRC/common.sh" "$SRC/harbor.yml.tmpl" "$SRC/LICENSE" "$WORK/harbor/"
docker save "$TAG" | gzip -1 >"$WORK/harbor/harbor.$VERSION.tar.gz"
tar -C "$WORK" --owner=0 --group=0 -czf "$ARCHIVE.tmp" harbor
mv "$ARCHIVE.tmp" "$ARCHIVE"
docker image inspect -f '{{.Id}}' "$TAG" >"$ARCHIVE.image-id"
echo "$HASH" >"$ARCHIVE.stamp"
echo "built $TAG -> $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) in $(( $(date +%s) - start ))s"
