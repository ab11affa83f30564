#!/usr/bin/env bash
# Build the test-bed node image locally: a Debian rootfs made with debootstrap, imported into
# Docker with systemd as PID 1. No registry is needed (air-gapped sites and CI hosts alike).
#
#   tests/images/build-node-image.sh [SUITE]      (default SUITE: trixie)
#
# The image is tagged backendai-testbed/node:<SUITE>-<hash>, where <hash> covers this script, so
# an unchanged script reuses the image already loaded, and also tagged :<SUITE> for convenience.
# Set NODE_IMAGE_TARBALL_DIR to keep/reuse a saved tarball of the rootfs (CI caches).
set -euo pipefail
SUITE=${1:-trixie}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HERE=$(cd "$(dirname "$0")" && pwd)
HASH=$(sha256sum "$0" | cut -c1-12)
TAG="backendai-testbed/node:${SUITE}-${HASH}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  docker tag "$TAG" "backendai-testbed/node:${SUITE}"
  echo "$TAG"
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }

# A fresh minimal server: systemd, Python for Ansible, sudo, apt tooling. Everything a role
# needs beyond this (curl, Docker, Python 3.13 venv, ...) the roles install themselves.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,iproute2,procps,ca-certificates,iputils-ping,gnupg,locales,kmod

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -30 "$WORK/debootstrap.log" >&2; exit 1; }

R=$WORK/rootfs
# Units that cannot work in a container (no kernel modules, no consoles) are masked; everything
# else boots as on a real server.
for unit in systemd-modules-load.service getty@tty1.service console-getty.service \
            systemd-firstboot.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-remount-fs.service sys-kernel-config.mount sys-kernel-debug.mount \
            sys-kernel-tracing.mount systemd-sysusers.service; do
  ln -sf /dev/null "$R/etc/systemd/system/$unit"
done
# Docker mounts /proc/sys read-only in unprivileged containers; a VM's is writable. Remount it
# early so systemd-sysctl and the roles see what they would see on a real server.
cat >"$R/etc/systemd/system/testbed-procsys.service" <<'UNIT'
[Unit]
Description=Make /proc/sys writable (test-bed node)
DefaultDependencies=no
Before=systemd-sysctl.service sysinit.target
ConditionPathIsReadWrite=!/proc/sys

[Service]
Type=oneshot
ExecStart=/bin/mount -o remount,rw,bind /proc/sys

[Install]
WantedBy=sysinit.target
UNIT
ln -sf /etc/systemd/system/testbed-procsys.service "$R/etc/systemd/system/sysinit.target.wants/testbed-procsys.service"
echo "deb $MIRROR $SUITE main" >"$R/etc/apt/sources.list"
echo "deb $MIRROR ${SUITE}-updates main" >>"$R/etc/apt/sources.list"
# Keep downloaded .debs so a shared cache directory can be mounted over it.
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$R/etc/apt/apt.conf.d/01keep-debs"
rm -f "$R/etc/apt/apt.conf.d/docker-clean"
echo 'en_US.UTF-8 UTF-8' >"$R/etc/locale.gen"
chroot "$R" locale-gen >/dev/null 2>&1 || true
: >"$R/etc/machine-id"
rm -rf "$R/var/lib/apt/lists/"* "$R/var/cache/apt/archives/"*.deb

tar -C "$R" -c . | docker import \
  -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' \
  - "$TAG" >/dev/null
docker tag "$TAG" "backendai-testbed/node:${SUITE}"
echo "built $TAG in $(( $(date +%s) - start ))s" >&2
echo "$TAG"
