# Shared settings for the project's scripts (sourced, not run).
# A build cache outside the clone, shared by every checkout on the machine: CI's clean
# clone then only rebuilds our own crates, not the dependency tree.
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
  if [ -d /work ] && [ -w /work ]; then
    CARGO_TARGET_DIR=/work/target
  else
    CARGO_TARGET_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/spark-orchestrator/target"
  fi
fi
export CARGO_TARGET_DIR
# sqlx macros must never reach for a live database at build time.
export SQLX_OFFLINE=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
