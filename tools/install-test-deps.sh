#!/usr/bin/env bash
# Install the system packages the test suite needs on the controller (Debian/Ubuntu):
#   debootstrap       builds the test-bed node image
#   etcd-server/-client  real etcd for the backendai_etcd integration tests
# Only what is missing is installed, so a prepared machine pays nothing.
set -euo pipefail
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v docker >/dev/null || { echo "Docker Engine is required (the test bed runs nodes as containers)" >&2; exit 1; }
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "installed: ${need[*]}"
fi
# The Debian etcd package starts a system etcd on 2379; the tests start their own instances.
if systemctl is-active --quiet etcd 2>/dev/null; then
  ${SUDO:-} systemctl disable --now etcd >/dev/null 2>&1 || true
fi
