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
# Harbor cannot be downloaded here. The bundled image runs the collection's Harbor API fake
# (tests/fakes/harbor, with Debian's python3-yaml and python3-jsonschema) on the port harbor.yml
# sets, keeping its state under data_volume. Skipped when the archive is up to date.
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

# The image: the node image, PyYAML and jsonschema, the fake and the prepare step.
mkdir -p "$WORK/opt"
cp "$FAKE"/server.py "$FAKE"/harbor-api-subset.yaml "$FAKE"/README.md "$SRC/prepare.py" "$WORK/opt/"
docker run --name "$name" -v "$WORK/opt:/tmp/harbor-fake:ro" "$BASE" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-yaml python3-jsonschema >/dev/null
  mkdir -p /opt/harbor-fake /data
  cp /tmp/harbor-fake/* /opt/harbor-fake/
  python3 /opt/harbor-fake/server.py --help >/dev/null
  apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'
docker commit \
  -c "ENV HARBOR_STANDIN_IMAGE=$TAG" -c 'WORKDIR /opt/harbor-fake' -c 'ENTRYPOINT []' \
  -c 'CMD ["python3", "/opt/harbor-fake/server.py", "--host", "0.0.0.0", "--port", "8080"]' \
  -c 'LABEL org.opencontainers.image.description="Test-bed stand-in for Harbor: the Harbor API fake of backendai.cluster"' \
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
echo "$HASH" >"$ARCHIVE.stamp"
echo "built $TAG -> $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1)) in $(( $(date +%s) - start ))s"
