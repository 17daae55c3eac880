# Sourced by ./demo.sh and tests/run.sh: make (or reuse) a virtual environment and install the
# project into it. Debian 12's /usr/bin/python3 is externally managed (PEP 668): pip refuses to
# install into it, so every install goes into a venv of our own.
#   ensure_venv DIR EXTRAS   -> sets VENV_PY to DIR/bin/python; the project is installed editable,
#   so the checkout's code is what runs; reinstalled when pyproject.toml or setup.py change.
ensure_venv() {
  local dir=$1 extras=$2
  local base=${PYTHON:-python3}
  if [ ! -x "$dir/bin/python" ]; then
    if ! "$base" -c 'import ensurepip, venv' 2>/dev/null; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      else
        echo "idstation: $base cannot make a virtual environment: install python3-venv" \
             "(sudo apt-get install python3-venv), then run this again" >&2
        return 1
      fi
    fi
    rm -rf "$dir"
    "$base" -m venv "$dir"
  fi
  VENV_PY="$dir/bin/python"
  local stamp="$dir/.idstation-installed" want
  want="$extras $(cat pyproject.toml setup.py | cksum)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$VENV_PY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    "$VENV_PY" -m pip install -q --disable-pip-version-check -e ".[$extras]"
    echo "$want" >"$stamp"
  fi
}
