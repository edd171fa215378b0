#!/usr/bin/env bash
# Regenerates the console's screenshots in docs/console/ (referenced from docs/console.md):
# runs the console's browser tests with FLEETGATE_SCREENSHOTS set, so each step they take
# is also written as a PNG. Needs what scripts/setup.sh installs (chromium, chromium-driver).
#   bash scripts/console-screenshots.sh            # every console test
#   bash scripts/console-screenshots.sh sharing    # the tests whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="$PWD/docs/console"
mkdir -p "$out"
FLEETGATE_SCREENSHOTS="$out" cargo test -p tests --test console --test console_support \
    --test console_sharing --test console_access \
    --test console_live --test console_admin --test console_staff \
    --test console_manage --test console_units -- "$@"
ls -1 "$out"/*.png | sed "s|^$PWD/||"
