#!/usr/bin/env python3
"""Publishes job files over AMQP with the client and shows the daemon's verdict on each.

Used by ``scripts/demo``; also a worked example of :class:`spark_orchestrator.AmqpPublisher`.

    demo_publish.py [--amqp URL] [--prefix P] [--ids FILE] [--burst N] [--invalid FILE]... JOB.json...

Each ``JOB.json`` is published as a job (an id is generated when it has none), then ``--burst``
copies of the first job under other names in both namespaces and priorities, all with
publisher confirms and a ``reply_to`` verdict; each ``--invalid`` file is published as it is
(routed by its own namespace and priority when they can be read) to show a refusal with every
problem. The ids of accepted jobs are written to ``--ids``, one a line.

Exit status: 0 when every message was confirmed by the broker and got its verdict (a refusal
is a verdict); 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any, Union

from spark_orchestrator import AmqpPublisher, InvalidJob, OrchestratorError, Published


def show(label: str, outcome: Union[Published, OrchestratorError]) -> bool:
    """Prints one verdict; true when the job was accepted."""
    if isinstance(outcome, Published):
        verdict = outcome.verdict
        reason = verdict.reason if verdict else "confirmed"
        print(f"  {label:<44} -> {reason}: job {outcome.job_id} ({outcome.routing_key})")
        return True
    if isinstance(outcome, InvalidJob):
        claimed = outcome.verdict.job_id if outcome.verdict else None
        print(f"  {label:<44} -> refused ({outcome.error}): {len(outcome.problems)} problem(s), id {claimed}")
        for p in outcome.problems:
            print(f"      {p.code:<22} {p.path:<40} {p.message}")
        return False
    print(f"  {label:<44} -> NOT DELIVERED: {outcome}")
    return False


def burst(template: dict[str, Any], n: int) -> list[tuple[str, dict[str, Any]]]:
    """``n`` copies of ``template`` named ``burst-i``, alternating namespaces and priorities so
    they contend for the cluster."""
    jobs = []
    for i in range(1, n + 1):
        job = copy.deepcopy(template)
        job.pop("id", None)
        job["name"] = f"burst-{i}"
        job["namespace"] = "team-a" if i % 2 == 0 else "team-b"
        job["priority"] = "high" if i % 3 == 0 else "normal"
        jobs.append((f"burst-{i} ({job['namespace']}, {job['priority']})", job))
    return jobs


def routing_of(body: bytes) -> tuple[str, str]:
    """The namespace and priority a raw body claims (``team-a``/``normal`` if unreadable)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return "team-a", "normal"
    if not isinstance(doc, dict):
        return "team-a", "normal"
    ns, prio = doc.get("namespace"), doc.get("priority", "normal")
    return (ns if isinstance(ns, str) and ns else "team-a"), (prio if isinstance(prio, str) and prio else "normal")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("jobs", nargs="+", type=Path, help="job files (JSON)")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--prefix", default="orchestrator", help="the daemon's [amqp] prefix")
    parser.add_argument("--ids", type=Path, help="write accepted job ids here, one a line")
    parser.add_argument("--burst", type=int, default=0, help="copies of the first job to add")
    parser.add_argument("--invalid", type=Path, action="append", default=[], help="a file to publish as it is")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the verdicts")
    args = parser.parse_args()

    labelled: list[tuple[str, dict[str, Any]]] = []
    for path in args.jobs:
        labelled.append((str(path), json.loads(path.read_text())))
    labelled += burst(labelled[0][1], args.burst)

    accepted: list[str] = []
    delivered = True
    with AmqpPublisher(args.amqp, args.prefix, timeout=args.timeout) as publisher:
        print(f"  publishing {len(labelled)} jobs to exchange {publisher.exchange} (confirms, verdicts by reply_to)")
        outcomes = publisher.publish_all([job for _, job in labelled], timeout=args.timeout)
        for (label, _), result in zip(labelled, outcomes):
            if show(label, result):
                assert isinstance(result, Published)
                accepted.append(result.job_id)
            elif not isinstance(result, InvalidJob):
                delivered = False
        for path in args.invalid:
            body = path.read_bytes()
            ns, prio = routing_of(body)
            try:
                outcome: Union[Published, OrchestratorError] = publisher.publish_raw(
                    body, ns, prio, wait_verdict=True, timeout=args.timeout
                )
            except OrchestratorError as e:
                outcome = e
            if show(f"{path} (as it is, to {ns}.{prio})", outcome):
                assert isinstance(outcome, Published)
                accepted.append(outcome.job_id)
            elif not isinstance(outcome, InvalidJob):
                delivered = False
    if args.ids:
        args.ids.write_text("".join(f"{i}\n" for i in accepted))
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
