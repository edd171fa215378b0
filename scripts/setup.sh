#!/usr/bin/env bash
# Installs what the tests, the benchmarks and the README's examples need beyond the Rust
# toolchain, on Debian, as root (through sudo when not root). The one list of packages:
#   mosquitto-clients  mosquitto_pub/sub, the stock MQTT clients the interop test uses
#   mosquitto          the broker, a side-by-side baseline for benchmarks; installed, never
#                      left running or enabled as a service
#   python3-paho-mqtt  paho, the Python MQTT client a test uses; it is Debian's python3's
#                      (/usr/bin/python3): a pyenv or venv python3 earlier in PATH lacks it
#   chromium           the browser the console's end-to-end tests drive, headless
#   chromium-driver    chromedriver, the WebDriver server those tests start per test
# and, from PyPI into /opt/fleetgate-tools/schemathesis (a virtualenv), schemathesis, which
# the OpenAPI test runs against a test gateway.
# Safe to run again; does nothing and prints nothing when everything is present.
# scripts/test.sh (the README's test command) calls it.
set -euo pipefail

# package|check that succeeds when it is present
PACKAGES=(
  'mosquitto-clients|command -v mosquitto_pub && command -v mosquitto_sub'
  'mosquitto|test -x /usr/sbin/mosquitto || command -v mosquitto'
  'python3-paho-mqtt|/usr/bin/python3 -c "import paho.mqtt.client"'
  'chromium|command -v chromium'
  'chromium-driver|command -v chromedriver'
)

if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); else SUDO=(); fi
as_root() { "${SUDO[@]}" "$@"; }

missing=()
for entry in "${PACKAGES[@]}"; do
  if ! bash -c "${entry#*|}" >/dev/null 2>&1; then
    missing+=("${entry%%|*}")
  fi
done

# With systemd running, the broker must be neither running nor enabled: benchmarks start
# their own on a port of their choosing.
quiet_broker_service() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    if systemctl is-enabled --quiet mosquitto 2>/dev/null \
      || systemctl is-active --quiet mosquitto 2>/dev/null; then
      as_root systemctl disable --now --quiet mosquitto >/dev/null 2>&1 || true
    fi
  fi
}

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  # Debian starts a service as its package installs unless policy-rc.d says no (exit 101);
  # put one in place for the install when there is none, and remove it after.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    trap 'as_root rm -f "$policy"' EXIT
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ ! -d /run/systemd/system ] && [ -x /etc/init.d/mosquitto ]; then
    # Without systemd: not at boot, and not now in case something started it anyway.
    as_root update-rc.d mosquitto disable >/dev/null 2>&1 || true
    as_root /etc/init.d/mosquitto stop >/dev/null 2>&1 || true
  fi
fi
quiet_broker_service

# schemathesis (PyPI), which the OpenAPI test (tests/tests/openapi.rs) runs against a test
# gateway, in a virtualenv of its own: Debian's python3 refuses pip installs outside one
# (PEP 668), and a pinned version keeps the test's verdicts the same on every machine.
SCHEMATHESIS_VERSION=4.32.5
TOOLS=${FLEETGATE_TOOLS_DIR:-/opt/fleetgate-tools}
venv="$TOOLS/schemathesis"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "setup: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
  as_root mkdir -p "$TOOLS"
  if ! as_root python3 -m venv --clear "$venv" >/dev/null 2>&1; then
    # Debian ships venv's pip bootstrap separately.
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    as_root python3 -m venv --clear "$venv"
  fi
  as_root "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION"
fi
