#!/usr/bin/env bash
# Stage every artifact the roles install from into one directory on the controller, so the
# nodes install with no network at all (what an air-gapped site copies across).
#
#   tools/stage-artifacts.sh [DIR]        (default: ./artifacts)
#
# DIR/wheels/     wheelhouse for all Backend.AI packages (BAI_VERSION) and their dependencies,
#                 built for Python 3.13 inside a Debian trixie container (pip resolves for the
#                 interpreter it runs on; a wrong one silently picks an ancient release), the
#                 one sdist (temporenc) turned into a wheel, plus SHA256SUMS.
# DIR/python/     put cpython-<ver>-<triple>-install_only.tar.gz here for static_python
#                 (python-build-standalone); it cannot be downloaded from here (see README).
# DIR/images/     service image tarballs (tests/images/build-service-images.sh writes them).
# DIR/harbor/     Harbor offline installer archive.
# DIR/licensed/   license server binary and license file.
#
# Re-running is cheap: the wheelhouse is rebuilt only when BAI_VERSION or the package list
# changes (a stamp file records both).
set -euo pipefail
DIR=${1:-artifacts}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
BAI_VERSION=${BAI_VERSION:-26.9.6}
PACKAGES=${BAI_PACKAGES:-"backend.ai-manager backend.ai-agent backend.ai-storage-proxy backend.ai-webserver backend.ai-appproxy-coordinator backend.ai-appproxy-worker backend.ai-client"}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$DIR"/{wheels,python,images,harbor,licensed}

stamp="$BAI_VERSION $PACKAGES"
if [ -f "$DIR/wheels/.stamp" ] && [ "$(cat "$DIR/wheels/.stamp")" = "$stamp" ]; then
  echo "wheelhouse up to date ($(ls "$DIR/wheels" | grep -c '\.whl$') wheels, Backend.AI $BAI_VERSION)"
else
  IMAGE=$("$HERE/../tests/images/build-node-image.sh" trixie | tail -1)
  reqs=""
  for p in $PACKAGES; do reqs="$reqs $p==$BAI_VERSION"; done
  start=$(date +%s)
  mkdir -p "$HERE/../.cache/apt/stage"
  # Behind a TLS-inspecting proxy the host trusts an extra CA; hand the same bundle to pip.
  ca=${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}
  ca_args=()
  [ -f "$ca" ] && ca_args=(-v "$ca:/etc/ssl/host-ca.crt:ro" -e PIP_CERT=/etc/ssl/host-ca.crt)
  docker run --rm "${ca_args[@]}" -v "$DIR/wheels:/wheels" -v "$(cd "$HERE/.." && pwd)/.cache/apt/stage:/var/cache/apt/archives" \
    -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_INDEX_URL "$IMAGE" bash -euc "
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      python3 -m venv /tmp/v
      /tmp/v/bin/pip download -q --progress-bar off -d /wheels $reqs
      for sd in /wheels/*.tar.gz /wheels/*.zip; do
        [ -e \"\$sd\" ] || continue
        /tmp/v/bin/pip wheel -q --no-deps -w /wheels \"\$sd\" && rm -f \"\$sd\"
      done
      cd /wheels && sha256sum *.whl > SHA256SUMS
      chown -R $(id -u):$(id -g) /wheels"
  echo "$stamp" >"$DIR/wheels/.stamp"
  echo "wheelhouse: $(ls "$DIR/wheels" | grep -c '\.whl$') wheels, $(du -sh "$DIR/wheels" | cut -f1), $(( $(date +%s) - start ))s"
fi
ls "$DIR"/python/cpython-*-install_only.tar.gz >/dev/null 2>&1 \
  || echo "note: no standalone Python archive in $DIR/python (static_python_source=system needs none)"
