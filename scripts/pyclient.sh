#!/usr/bin/env bash
# Makes sure the Python client (clients/python) and its test tools are installed in a cached
# virtualenv, and prints that venv's python on stdout. Idempotent: the venv and its packages
# (pika, pytest, setuptools) are fetched from PyPI once; the client itself is reinstalled from
# the working tree whenever its source differs from the installed one (no network:
# --no-build-isolation), so tests and the demo run the code of this checkout.
#
#   PYCLIENT_VENV   where the venv lives (default ${XDG_CACHE_HOME:-~/.cache}/spark-orchestrator/venv)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[pyclient] %s\n' "$*" >&2; }
venv=${PYCLIENT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/spark-orchestrator/venv}
py="$venv/bin/python"

# One install at a time: the demo and the tests of several checkouts may share the venv.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock -w 300 9 || { log "another install holds $venv.lock"; exit 1; }

if [ ! -x "$py" ]; then
  log "creating the virtualenv $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv for ensurepip.
    command -v apt-get >/dev/null || { log "python3 -m venv failed and apt-get is missing"; exit 1; }
    log "installing python3-venv (apt-get)"
    rm -rf "$venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
      || { apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
    python3 -m venv "$venv"
  fi
fi
pip() { "$py" -m pip --disable-pip-version-check -q "$@"; }
if ! "$py" -c 'import pika, pytest, setuptools' 2>/dev/null; then
  log "installing pika, pytest and setuptools into $venv (pip)"
  pip install 'pika>=1.3,<2' 'pytest>=7' 'setuptools>=68'
fi
# Reinstall the client when its source differs from what is installed.
digest=$(find clients/python/pyproject.toml clients/python/src -type f ! -path '*/__pycache__/*' \
  ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
stamp="$venv/.spark-orchestrator-client.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ] || ! "$py" -c 'import spark_orchestrator' 2>/dev/null; then
  # The build goes to a temporary copy so the checkout gets no build/ or *.egg-info.
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  cp -r clients/python/pyproject.toml clients/python/README.md clients/python/src "$build/"
  rm -rf "$build"/src/*.egg-info
  pip install --no-build-isolation --no-deps --force-reinstall "$build" >/dev/null
  echo "$digest" >"$stamp"
fi
echo "$py"
