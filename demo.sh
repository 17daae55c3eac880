#!/usr/bin/env bash
# The README's demo command: install idstation into ./.venv (made on first use; Debian 12's system
# Python is externally managed) and run `idstation demo` on simulated hardware. Arguments go to
# the demo, e.g. ./demo.sh --taps 5 --json
set -euo pipefail
cd "$(dirname "$0")"
. tools/venv.sh
ensure_venv "${IDSTATION_VENV:-.venv}" demo
exec "$(dirname "$VENV_PY")/idstation" demo "$@"
