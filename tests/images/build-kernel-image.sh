#!/usr/bin/env bash
# Build the test bed's compute-session (kernel) image and save it as a tarball in the artifacts
# directory, as an air-gapped site carries its kernel images across:
#
#   tests/images/build-kernel-image.sh [ARTIFACTS_DIR]    (default: $BAI_ARTIFACTS_DIR or ./artifacts)
#
# writes ARTIFACTS_DIR/images/kernel-python-3.13-debian13.tar holding
# backendai-testbed/python:3.13-debian13: the node image's Debian trixie rootfs with Python 3 and
# ipykernel (the agent's kernel runner answers `backend.ai run -c CODE` through a Jupyter kernel
# of the image), and the image labels Backend.AI 26.9 reads:
#
#   ai.backend.kernelspec=1                     the only image-spec version the manager accepts
#   ai.backend.features                         batch and query mode, user input, uid matching
#   ai.backend.base-distro=ubuntu24.04          the agent picks its preload library and kernel
#                                               runner by this prefix and knows only ubuntu, centos
#                                               and alpine; glibc 2.41 (trixie) is what it would
#                                               itself detect as ubuntu24.04 without the label
#   ai.backend.runtime-type=python              query and batch mode for Python
#   ai.backend.runtime-path=/usr/bin/python3
#   ai.backend.resource.min.cpu / .mem          the smallest session the scheduler may start
#
# The kernelspec calls /usr/bin/python3 by its full path: the runner's Jupyter client replaces a
# bare `python3` with its own interpreter, which has no ipykernel. Skipped when up to date.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${BAI_ARTIFACTS_DIR:-$HERE/../../artifacts}}
mkdir -p "$OUT/images"
OUT=$(cd "$OUT" && pwd)
TAG=backendai-testbed/python:3.13-debian13
TARBALL=$OUT/images/kernel-python-3.13-debian13.tar
HASH=$(sha256sum "$0" | cut -c1-12)
if [ -f "$TARBALL" ] && [ "$(cat "$TARBALL.stamp" 2>/dev/null)" = "$HASH" ]; then
  echo "$TARBALL up to date"; exit 0
fi
BASE=$("$HERE/build-node-image.sh" trixie | tail -1)
start=$(date +%s)
name=bai-build-kernel-$$
trap 'docker rm -f "$name" >/dev/null 2>&1 || true' EXIT
docker run --name "$name" "$BASE" bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-ipykernel >/dev/null
  mkdir -p /usr/local/share/jupyter/kernels/python3
  cat >/usr/local/share/jupyter/kernels/python3/kernel.json <<JSON
{"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 (Debian)", "language": "python"}
JSON
  /usr/bin/python3 -c "import ipykernel, sys; print(sys.version.split()[0], ipykernel.__version__)"
  # A compute container is not a booted system: no init, no units.
  rm -rf /etc/systemd/system/*.wants /etc/systemd/system/testbed-procsys.service
  apt-get clean; rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*'
docker commit \
  -c 'CMD ["/bin/bash"]' -c 'ENV container= LANG=C.UTF-8' -c 'WORKDIR /home/work' \
  -c 'LABEL ai.backend.kernelspec="1"' \
  -c 'LABEL ai.backend.features="batch query uid-match user-input"' \
  -c 'LABEL ai.backend.base-distro="ubuntu24.04"' \
  -c 'LABEL ai.backend.runtime-type="python"' \
  -c 'LABEL ai.backend.runtime-path="/usr/bin/python3"' \
  -c 'LABEL ai.backend.resource.min.cpu="1"' \
  -c 'LABEL ai.backend.resource.min.mem="256m"' \
  -c 'LABEL org.opencontainers.image.description="Test-bed compute-session image: Debian trixie with Python 3 and ipykernel"' \
  "$name" "$TAG" >/dev/null
docker save "$TAG" -o "$TARBALL"
echo "$HASH" >"$TARBALL.stamp"
echo "built $TAG -> $TARBALL ($(du -h "$TARBALL" | cut -f1)) in $(( $(date +%s) - start ))s"
