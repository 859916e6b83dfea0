"""The live stack the client's tests run against: the real ``kube-sim`` (examples/cluster.toml,
10x simulated time) and ``orchestrator run`` (examples/orchestrator.toml) as child processes,
on the local RabbitMQ and PostgreSQL, with a fresh database and a unique AMQP prefix for the
session. Everything the session declared or created is deleted at the end, also when tests
fail.

The binaries come from ``$ORCHESTRATOR_BIN`` / ``$KUBE_SIM_BIN``, else
``$CARGO_TARGET_DIR/debug`` (``scripts/pytest.sh`` builds them first). They are hard-linked
into the session's directory first, so a concurrent ``cargo build`` in a shared target
directory cannot swap them mid-session.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pika
import pytest

from spark_orchestrator import AmqpPublisher, HttpClient

ROOT = Path(__file__).resolve().parents[3]
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
PG = ["psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAtc"]
ADMIN_TOKEN = "demo-admin-token-0123456789"
TEAM_A_TOKEN = "team-a-submit-token-0123456789"
# The daemon's delay tiers (queues::TopologyConfig::new): declared under the prefix too.
RETRY_TIERS = ["1s", "5s", "30s", "2m", "10m"]
# Session databases left by a crashed run are dropped after this long.
STALE_SECONDS = 2 * 3600


def unique(tag: str) -> str:
    """``pyc{tag}{epoch}x{random}``: unique, and old ones are recognisable for the sweep."""
    return f"pyc{tag}{int(time.time())}x{uuid.uuid4().hex[:10]}"


def psql(sql: str) -> str:
    out = subprocess.run(PG + [sql], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {out.stderr.strip()}")
    return out.stdout


def sweep_stale_databases() -> None:
    now = int(time.time())
    for name in psql("SELECT datname FROM pg_database WHERE datname LIKE 'pycdb%'").split():
        stamp = name[len("pycdb") :].split("x", 1)[0]
        if stamp.isdigit() and int(stamp) + STALE_SECONDS < now:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def binary(name: str, env: str) -> Path:
    given = os.environ.get(env)
    if given:
        path = Path(given)
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
        path = target / "debug" / name
    if not path.is_file():
        pytest.exit(
            f"{path} does not exist: build it first (cargo build -p orchestrator --bin orchestrator "
            f"-p kube-sim --bin kube-sim) or set {env}",
            returncode=3,
        )
    return path


def pin(path: Path, directory: Path) -> Path:
    """A link to (or copy of) the binary that a rebuild cannot replace."""
    dest = directory / path.name
    try:
        os.link(path, dest)
    except OSError:
        shutil.copy2(path, dest)
    return dest


class Proc:
    """A child process whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], directory: Path, env: dict[str, str]) -> None:
        self.name = name
        self.out = directory / f"{name}.out"
        self.log = directory / f"{name}.log"
        with open(self.out, "wb") as out, open(self.log, "wb") as log:
            self.popen = subprocess.Popen(args, stdout=out, stderr=log, env=env, cwd=ROOT)

    def first_line(self, prefix: str, seconds: float) -> str:
        """Waits (bounded) for a line of stdout starting with ``prefix``; returns its rest."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.out.read_text(errors="replace").splitlines():
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
            if self.popen.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not print {prefix!r}:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


@dataclass
class Stack:
    """What the tests talk to."""

    api_url: str
    amqp_url: str
    prefix: str
    namespaces: list[str]
    directory: Path
    daemon: Proc

    def http(self, token: Optional[str] = ADMIN_TOKEN, **kwargs: Any) -> HttpClient:
        return HttpClient(self.api_url, token, **kwargs)

    def publisher(self, prefix: Optional[str] = None, **kwargs: Any) -> AmqpPublisher:
        kwargs.setdefault("timeout", 20.0)
        return AmqpPublisher(self.amqp_url, prefix or self.prefix, **kwargs)

    def daemon_log(self) -> str:
        return self.daemon.tail(60)


def topology_names(prefix: str, namespaces: list[str]) -> tuple[list[str], list[str]]:
    """The queues and exchanges the daemon declares under ``prefix`` (queues::Topology)."""
    queues = [f"{prefix}.unroutable", f"{prefix}.dead"]
    for ns in namespaces:
        queues += [f"{prefix}.{ns}.dead", f"{prefix}.{ns}.high", f"{prefix}.{ns}.normal"]
    queues += [f"{prefix}.retry.{t}" for t in RETRY_TIERS]
    exchanges = [f"{prefix}.jobs", f"{prefix}.unroutable", f"{prefix}.events"]
    exchanges += [f"{prefix}.retry.{t}" for t in RETRY_TIERS]
    return queues, exchanges


def delete_topology(queues: list[str], exchanges: list[str]) -> None:
    """Deletes queues and exchanges (absent ones are fine: RabbitMQ answers delete-ok)."""
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        for q in queues:
            channel.queue_delete(q)
        for x in exchanges:
            channel.exchange_delete(x)
    finally:
        connection.close()


@contextlib.contextmanager
def live_stack(directory: Path) -> Iterator[Stack]:
    """Starts kube-sim and the daemon in ``directory`` on a fresh database and a unique AMQP
    prefix; stops them and deletes both on exit. Shared by the ``stack`` fixture and
    ``scripts/schemathesis.sh``."""
    orchestrator = pin(binary("orchestrator", "ORCHESTRATOR_BIN"), directory)
    kube_sim = pin(binary("kube-sim", "KUBE_SIM_BIN"), directory)
    sweep_stale_databases()
    db = unique("db")
    prefix = unique("p")
    config_text = (ROOT / "examples/orchestrator.toml").read_text()
    namespaces = sorted(set(re.findall(r"^\[namespaces\.([A-Za-z0-9_-]+)\]", config_text, re.M)))
    # The demo's config plus a faster admission loop (a section it does not have).
    assert not re.search(r"^\[submitter\]", config_text, re.M), "examples/orchestrator.toml gained [submitter]"
    config_path = directory / "orchestrator.toml"
    config_path.write_text(config_text + '\n[submitter]\ninterval = "250ms"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(
        ORCHESTRATOR_DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{db}",
        ORCHESTRATOR_AMQP_URL=AMQP_URL,
        ORCHESTRATOR_AMQP_PREFIX=prefix,
        RUST_LOG="info",
        NO_COLOR="1",
    )
    psql(f'CREATE DATABASE "{db}"')
    procs: list[Proc] = []
    try:
        kubeconfig = directory / "kubeconfig"
        sim = Proc(
            "kube-sim",
            [str(kube_sim), "--config", "examples/cluster.toml", "--listen", "127.0.0.1:0",
             "--kubeconfig-out", str(kubeconfig)],
            directory,
            env,
        )
        procs.append(sim)
        sim.first_line("kube-sim listening on ", 60)
        daemon = Proc(
            "orchestrator",
            [str(orchestrator), "--config", str(config_path), "run", "--listen", "127.0.0.1:0",
             "--kubeconfig", str(kubeconfig), "--identity", prefix],
            directory,
            env,
        )
        procs.append(daemon)
        api_url = daemon.first_line("orchestrator listening on ", 120)
        yield Stack(api_url, AMQP_URL, prefix, namespaces, directory, daemon)
    finally:
        for p in reversed(procs):
            p.stop()
        queues, exchanges = topology_names(prefix, namespaces)
        delete_topology(queues, exchanges)
        psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with live_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s


@pytest.fixture
def http(stack: Stack) -> HttpClient:
    return stack.http()


@pytest.fixture
def publisher(stack: Stack) -> Iterator[AmqpPublisher]:
    with stack.publisher() as p:
        yield p


def example(name: str) -> dict[str, Any]:
    """A sample job from examples/jobs."""
    return json.loads((ROOT / "examples/jobs" / name).read_text())


def quick_job(name: str = "pyc-pi", namespace: str = "team-a", runtime: str = "10s", **extra: Any) -> dict[str, Any]:
    """The spark-pi sample, renamed, with a short simulated runtime (1 s of wall time)."""
    job = copy.deepcopy(example("spark-pi.json"))
    job["name"] = name
    job["namespace"] = namespace
    job["annotations"] = {"kube-sim.dev/runtime": runtime}
    job.update(extra)
    return job


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the stack gets the daemon's last log lines in its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "stack" in getattr(item, "fixturenames", ()):
        stack = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
        if isinstance(stack, Stack):
            report.sections.append(("orchestrator log (last lines)", stack.daemon_log()))
