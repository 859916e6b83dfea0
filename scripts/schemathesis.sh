#!/usr/bin/env bash
# The API contract suite: schemathesis `--checks all` (pinned below, installed from PyPI into
# the Python client's cached venv, scripts/pyclient.sh) against a running daemon on kube-sim,
# real RabbitMQ and PostgreSQL (scripts/schemathesis_run.py starts and removes them). Bounded
# and seeded, so it is repeatable and short; run by scripts/test. A longer run:
#   SCHEMATHESIS_EXAMPLES=200 SCHEMATHESIS_SEED=$RANDOM scripts/schemathesis.sh
# Extra arguments go to `schemathesis run` (e.g. --include-path /v1/jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
SCHEMATHESIS_VERSION=4.32.5
cargo build -q -p orchestrator --bin orchestrator -p kube-sim --bin kube-sim
py=$(scripts/pyclient.sh)
venv=$(dirname "$(dirname "$py")")
if [ "$("$py" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
  echo "[schemathesis] installing schemathesis $SCHEMATHESIS_VERSION into $venv (pip)" >&2
  (
    flock -w 300 9 || { echo "[schemathesis] another install holds $venv.lock" >&2; exit 1; }
    "$py" -m pip --disable-pip-version-check -q install "schemathesis==$SCHEMATHESIS_VERSION"
  ) 9>"$venv.lock"
fi
export ORCHESTRATOR_BIN="$CARGO_TARGET_DIR/debug/orchestrator"
export KUBE_SIM_BIN="$CARGO_TARGET_DIR/debug/kube-sim"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" scripts/schemathesis_run.py "$@"
