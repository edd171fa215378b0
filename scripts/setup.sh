#!/usr/bin/env bash
# Installs what the tests and the README's examples need beyond the Rust toolchain:
# mosquitto-clients (mosquitto_pub/sub, the stock MQTT clients the interop test uses).
# Safe to run again; does nothing when everything is present.
set -euo pipefail
if ! command -v mosquitto_pub >/dev/null 2>&1 || ! command -v mosquitto_sub >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto-clients >/dev/null
fi
