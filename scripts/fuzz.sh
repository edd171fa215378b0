#!/usr/bin/env bash
# Runs every fuzz target for longer than CI does (bounded: CASES per target).
# The targets are proptest tests because cargo-fuzz needs a nightly toolchain; see
# docs/fuzzing.md. Usage: scripts/fuzz.sh [CASES]   (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-200000}
PROPTEST_CASES=$cases cargo test --release -p storage --test fuzz_decoders
PROPTEST_CASES=$((cases / 10)) cargo test --release -p gateway --test fuzz_inputs
