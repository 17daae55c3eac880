#!/usr/bin/env bash
# The test command (README "Run the tests"). On a fresh Debian 12 machine as root it installs
# what the tests need (system services and Python packages), then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig mosquitto mosquitto-clients
              nftables iproute2 openssl systemd)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "missing system packages (need root to install): ${missing[*]}" >&2
  fi
fi

PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e ".[dev]"

"$PY" -m ruff check .
exec "$PY" -m pytest "$@"
