#!/usr/bin/env bash
# The README's test command: installs what the tests need when it is missing (Debian, as
# root or through sudo; scripts/setup.sh holds the one list of packages), then runs
# `cargo test --workspace` with any arguments given:
#   bash scripts/test.sh                              # every test of the workspace
#   bash scripts/test.sh certificates                 # the workspace's tests matching a name
#   bash scripts/test.sh -p storage certificates      # one crate: --workspace is left out
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# cargo ignores -p next to --workspace, so a package selection replaces it.
scope=(--workspace)
for arg in "$@"; do
  case "$arg" in
    --) break ;;
    -p | -p?* | --package | --package=*) scope=() ;;
  esac
done
exec cargo test "${scope[@]}" "$@"
