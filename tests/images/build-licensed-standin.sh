#!/usr/bin/env bash
# Build the test-bed stand-ins for the license server artifacts (guide 6.2):
#
#   tests/images/build-licensed-standin.sh [ARTIFACTS_DIR]   (default: $BAI_ARTIFACTS_DIR or ./artifacts)
#
# writes ARTIFACTS_DIR/licensed/licensed.linux.amd64.bin (an executable Python script with the
# binary's interface: --port, --license-file, --print-hwinfo) and a dummy license file
# backendai-testbed.lic. Skipped when both are up to date.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${BAI_ARTIFACTS_DIR:-$HERE/../../artifacts}}
mkdir -p "$OUT/licensed"
OUT=$(cd "$OUT" && pwd)/licensed
BIN=$OUT/licensed.linux.amd64.bin
LIC=$OUT/backendai-testbed.lic
HASH=$(cat "$0" "$HERE/licensed-standin/licensed.py" | sha256sum | cut -c1-12)
if [ -f "$BIN" ] && [ -f "$LIC" ] && [ "$(cat "$BIN.stamp" 2>/dev/null)" = "$HASH" ]; then
  echo "$BIN up to date"; exit 0
fi
install -m 0755 "$HERE/licensed-standin/licensed.py" "$BIN"
cat >"$LIC" <<'LIC'
# Backend.AI license for the test bed (a stand-in: no real license, no real signature).
licensee = Backend.AI test bed
edition = enterprise
max_agents = 8
expires = 2099-12-31
LIC
chmod 0644 "$LIC"
echo "$HASH" >"$BIN.stamp"
echo "built $BIN and $LIC"
