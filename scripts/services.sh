#!/usr/bin/env bash
# Makes sure what the tests and the demo need answers on 127.0.0.1, starting or installing
# (Debian packages, PyPI) whatever does not. Idempotent; safe to run any time.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

# Waits (polling, bounded) until a command succeeds.
wait_for() {
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "$what did not come up within ${seconds}s"
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_install() {
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it by hand"
  log "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return; fi
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  local version
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  log "starting PostgreSQL $version"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for "PostgreSQL" 60 pg_isready -q -h 127.0.0.1 -p 5432
  # Local trust for the test role, as on the development machines.
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    log "allowing local trust auth in $hba"
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    wait_for "PostgreSQL trust auth" 30 psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1'
  fi
}

ensure_rabbitmq() {
  # The port answering is the check: `rabbitmqctl` can hang for minutes (it resolves the
  # host name through Erlang's distribution), so it is only used, bounded, to start.
  if port_open 5672; then return; fi
  command -v rabbitmq-server >/dev/null || apt_install rabbitmq-server
  log "starting RabbitMQ"
  # Quorum queues hold file handles; the default 1024 runs out with a few hundred queues and
  # the broker then stops answering handshakes.
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_for "RabbitMQ port 5672" 180 port_open 5672
}

ensure_tools() {
  command -v cargo-nextest >/dev/null || { log "installing cargo-nextest"; cargo install --locked cargo-nextest; }
  # The simulator's fidelity tests check kubectl's output with kubernetes-validate (PyPI).
  if ! command -v kubernetes-validate >/dev/null; then
    log "installing kubernetes-validate (pip)"
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
  fi
}

# The dashboards' tests run their own Prometheus (127.0.0.1, free port, temporary data dir) and
# `promtool check rules`; only the binaries are needed. The package's own service is not
# wanted: on hosts where installing it started one, stop it so it holds no port or data dir.
ensure_prometheus() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then return; fi
  apt_install --no-install-recommends prometheus
  command -v promtool >/dev/null || die "promtool missing after installing prometheus"
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    log "stopping and disabling the system prometheus service (tests start their own)"
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ] && /etc/init.d/prometheus status >/dev/null 2>&1; then
    log "stopping the system prometheus service (tests start their own)"
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
}

# The web console's browser tests (orchestrator/tests/console.rs): Debian's chromium, driven by
# playwright-core from npm (locked in tests/console/package-lock.json; it never downloads a
# browser). `npm ci` runs again only when the lock file changed.
ensure_console_tools() {
  command -v chromium >/dev/null || apt_install --no-install-recommends chromium fonts-dejavu-core
  command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/console"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the console tests' npm packages (npm ci)"
    (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
  fi
}

# kubectl: its built-in kustomize renders deploy/base, whose RBAC kube-sim enforces in the demo
# and the tests; the simulator's fidelity tests also drive it.
ensure_kubectl() {
  command -v kubectl >/dev/null || apt_install kubernetes-client || die "kubectl is required (kustomize, simulator tests)"
}

ensure_postgres
ensure_rabbitmq
ensure_kubectl
# `--core`: only the services (the demo); otherwise also the test tools.
if [ "${1:-}" = "--core" ]; then
  log "PostgreSQL and RabbitMQ answer on 127.0.0.1; kubectl is installed"
else
  ensure_tools
  ensure_prometheus
  ensure_console_tools
  log "PostgreSQL and RabbitMQ answer on 127.0.0.1; prometheus, promtool, chromium and the console's npm packages are installed"
fi
