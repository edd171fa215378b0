#!/usr/bin/env bash
# Runs every fleetgate-sim scenario once with small settings (the ones the end-to-end tests
# in tests/tests/simulator_*.rs use) against one debug gateway, writing each JSON and HTML
# report into OUT_DIR. Used before and after a change to the simulator, then
# `fleetgate-sim compare-reports BEFORE_DIR AFTER_DIR` lists every figure or check that
# the later reports lost (see simulator/README.md).
#
#   CARGO_TARGET_DIR=target simulator/scripts/small-runs.sh /tmp/sim-before
#   GATEWAY_BIN=/tmp/old/fleetgate SIM_BIN=/tmp/old/fleetgate-sim simulator/scripts/small-runs.sh /tmp/sim-before
set -euo pipefail

out=${1:?usage: small-runs.sh OUT_DIR}
target=${CARGO_TARGET_DIR:-target}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/../.."
gateway_bin="${GATEWAY_BIN:-$target/debug/fleetgate}"
sim="${SIM_BIN:-$target/debug/fleetgate-sim}"
data=$(mktemp -d)
trap 'kill "$gateway" 2>/dev/null || true; wait "$gateway" 2>/dev/null || true; rm -rf "$data"' EXIT
RUST_LOG=warn "$gateway_bin" serve --data-dir "$data" --http-addr 127.0.0.1:0 \
  --mqtt-tls-addr 127.0.0.1:0 --mqtt-plain-addr 127.0.0.1:0 >"$out/gateway.log" 2>&1 &
gateway=$!

common=(--data-dir "$data" --quiet --gateway-pid "$gateway")
tls=(--tls-server-name localhost)
status=0
run() {
  local name=$1
  shift
  echo "== $name" >&2
  # Each run writes into its own directory, then its JSON takes the run's name, so that two
  # directories of runs compare file by file whatever the run ids were.
  local code=0
  "$sim" "$@" --report-dir "$out/$name" >"$out/$name.txt" 2>"$out/$name.err" || code=$?
  if [ "$code" -ne 0 ]; then
    echo "   exit status $code (see $out/$name.err)" >&2
    status=1
  fi
  for json in "$out/$name"/*.json; do
    [ -e "$json" ] && cp "$json" "$out/$name.json"
  done
}
run ingest ingest "${common[@]}" "${tls[@]}" --units 10 --rate 10 --duration-s 2 --settle-s 10
run visibility visibility "${common[@]}" "${tls[@]}" --units 4 --grantees 3 --rate 20 --settle-s 1
run support support --data-dir "$data" --quiet --gateway-pid "$gateway" --accounts 3
run keys keys "${common[@]}" "${tls[@]}" --units 4 --short-lived-s 2
run scale scale "${common[@]}" "${tls[@]}" --units 40 --sources 127.0.0.1,127.0.0.2 \
  --hold-s 1 --probes 4 --mosquitto /usr/sbin/mosquitto
run fanout fanout "${common[@]}" "${tls[@]}" --units 3 --grantees 4 --rate 10 --duration-s 2 \
  --history-sample 2 --settle-s 10
run revoke-storm revoke-storm "${common[@]}" "${tls[@]}" --units 4 --grantees 5 --rate 10 \
  --concurrency 8 --settle-s 1
run revoke-storm-bulk revoke-storm "${common[@]}" "${tls[@]}" --units 4 --grantees 5 --rate 10 \
  --concurrency 8 --settle-s 1 --bulk
run soak soak "${common[@]}" "${tls[@]}" --units 4 --rate 5 --duration-s 6 --window-s 2 \
  --admin-rate 4 --max-latency-creep 100 --settle-s 10
exit "$status"
