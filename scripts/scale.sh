#!/usr/bin/env bash
# The scale run of docs/benchmarks.md: a release gateway on loopback and `fleetgate-sim scale`
# holding UNITS idle mutual-TLS sessions from SOURCES loopback source addresses.
#
# Each session is a file descriptor on both sides, so the script raises the open-file limit
# first (this needs root, or a hard limit already high enough). Each loopback source
# address has its own ephemeral port range (~28,000 ports with Linux defaults), which is why
# 50,000 sessions need at least two sources.
#
#   scripts/scale.sh                  # 50,000 units from 127.0.0.1-4, 30 s hold
#   UNITS=20000 SOURCES=2 scripts/scale.sh
set -euo pipefail

UNITS=${UNITS:-50000}
SOURCES=${SOURCES:-4}
HOLD_S=${HOLD_S:-30}
CONNECT_PARALLELISM=${CONNECT_PARALLELISM:-64}
REPORT_DIR=${REPORT_DIR:-reports}
FILES=$((UNITS * 2 + 10000))

cd "$(dirname "$0")/.."
ulimit -Hn "$FILES" 2>/dev/null || true
ulimit -n "$FILES" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-file limit: $(ulimit -n)" >&2

cargo build --release -q -p gateway -p simulator
data=$(mktemp -d)
trap 'kill "$gateway" 2>/dev/null || true; wait "$gateway" 2>/dev/null || true; rm -rf "$data" "$data.log"' EXIT
RUST_LOG=warn,rumqttd=error target/release/fleetgate serve --data-dir "$data" \
  --http-addr 127.0.0.1:0 --mqtt-tls-addr 127.0.0.1:0 >"$data.log" 2>&1 &
gateway=$!

sources=$(seq -s, -f '127.0.0.%g' 1 "$SOURCES")
target/release/fleetgate-sim scale --data-dir "$data" --tls-server-name localhost \
  --units "$UNITS" --sources "$sources" --hold-s "$HOLD_S" --parallelism 64 --connect-parallelism "$CONNECT_PARALLELISM" \
  --gateway-pid "$gateway" --report-dir "$REPORT_DIR"
