#!/usr/bin/env bash
# The Python client's tests (clients/python/tests) against the real daemon, RabbitMQ and
# kube-sim: builds `orchestrator` and `kube-sim`, installs the client in the cached venv
# (scripts/pyclient.sh), then runs pytest. Extra arguments go to pytest. Run by scripts/test.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
cargo build -q -p orchestrator --bin orchestrator -p kube-sim --bin kube-sim
py=$(scripts/pyclient.sh)
export ORCHESTRATOR_BIN="$CARGO_TARGET_DIR/debug/orchestrator"
export KUBE_SIM_BIN="$CARGO_TARGET_DIR/debug/kube-sim"
export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest clients/python/tests -p no:cacheprovider "$@"
