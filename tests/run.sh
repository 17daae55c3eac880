#!/usr/bin/env bash
# The test command (README "Set-up"). On a fresh Debian 12 machine as root it installs what the
# tests need (system services and build tools), makes a virtual environment .venv-test (reused
# when present; Debian's python3 is externally managed, PEP 668) with the project and its [dev]
# extra, then runs ruff, the import contracts and the whole pytest suite inside it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(pcscd vsmartcard-vpcd libpcsclite-dev swig gcc python3-dev python3-venv
              mosquitto mosquitto-clients nftables iproute2 openssl systemd
              postgresql rabbitmq-server chromium chromium-driver)
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

. tools/venv.sh
ensure_venv "${IDSTATION_TEST_VENV:-.venv-test}" dev
# The suite runs python3, idstation, ruff and lint-imports as subprocesses: the venv's come first.
# mosquitto and pcscd live in /usr/sbin, which a normal user's PATH lacks on Debian.
VENV_BIN=$(cd "$(dirname "$VENV_PY")" && pwd)
export PATH="$VENV_BIN:$PATH:/usr/sbin:/sbin" VIRTUAL_ENV="${VENV_BIN%/bin}"

python -m ruff check .
lint-imports
exec python -m pytest "$@"
