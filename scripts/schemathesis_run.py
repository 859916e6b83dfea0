"""Runs schemathesis against a live daemon: starts kube-sim and ``orchestrator run`` the way the
Python client's tests do (``live_stack`` of clients/python/tests/conftest.py: real RabbitMQ,
a fresh PostgreSQL database, a unique AMQP prefix, all deleted afterwards), then
``schemathesis run <api>/openapi.json --checks all`` with a bounded number of examples per
operation and a fixed seed, as the admin token. Its exit status is schemathesis'.

Called by scripts/schemathesis.sh, which builds the binaries and installs schemathesis first.
Environment: SCHEMATHESIS_EXAMPLES (default 10), SCHEMATHESIS_SEED (default 20261205);
extra arguments go to ``schemathesis run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "clients/python/tests"))

from conftest import ADMIN_TOKEN, live_stack  # noqa: E402  (after the path is set)


def main(extra: list[str]) -> int:
    examples = os.environ.get("SCHEMATHESIS_EXAMPLES", "10")
    seed = os.environ.get("SCHEMATHESIS_SEED", "20261205")
    tool = Path(sys.executable).parent / "schemathesis"
    with tempfile.TemporaryDirectory(prefix="schemathesis-") as tmp, live_stack(Path(tmp)) as stack:
        command = [
            str(tool),
            "--config-file", str(ROOT / "scripts/schemathesis.toml"),
            "--no-color",
            "run", f"{stack.api_url}/openapi.json",
            "--checks", "all",
            "--max-examples", examples,
            "--seed", seed,
            "--header", f"Authorization: Bearer {ADMIN_TOKEN}",
            "--workers", "2",
            *extra,
        ]
        print("+ " + " ".join(c if "Bearer" not in c else "Authorization: Bearer …" for c in command), flush=True)
        # schemathesis keeps a cache (`.schemathesis/`) in its working directory: not the checkout.
        result = subprocess.run(command, cwd=tmp)
        if result.returncode != 0:
            print("--- the daemon's log (tail) ---\n" + stack.daemon_log(), file=sys.stderr)
        return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
