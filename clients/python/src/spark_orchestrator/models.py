"""Plain data the client returns: verdicts, submissions, pages, job ids."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Generic, Mapping, Optional, TypeVar

from .errors import Problem, problems_from_json

#: States a job never leaves (``failed`` is not one: it moves on to ``retrying`` or ``dead``).
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "dead", "cancelled"})

#: Every job state, in lifecycle order.
STATES: tuple[str, ...] = (
    "queued",
    "waiting",
    "submitted",
    "running",
    "succeeded",
    "failed",
    "retrying",
    "dead",
    "cancelled",
)

#: The priorities a job may have; the AMQP routing key is ``{namespace}.{priority}``.
PRIORITIES: tuple[str, ...] = ("high", "normal")


def new_job_id() -> str:
    """A fresh UUID version 7 (time-ordered, like the ids the daemon generates), as text.

    Layout (RFC 9562): 48 bits of Unix milliseconds, version 7, 12 random bits, variant
    ``10``, 62 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & ((1 << 62) - 1)  # 62 bits
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


@dataclass(frozen=True)
class Verdict:
    """What the daemon's intake decided about a message published with ``reply_to``.

    ``reason`` is ``accepted``, ``duplicate`` (the id was already stored: nothing changed),
    ``invalid`` or ``unknown-namespace``. ``job_id`` is the job's id, or for a refused message
    the id it claimed (``None`` when it claimed none that could be read)."""

    job_id: Optional[str]
    accepted: bool
    reason: str
    message: str
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Verdict":
        """Reads the verdict body ``{jobId, accepted, reason, message, problems}``."""
        job_id = doc.get("jobId")
        return cls(
            job_id=str(job_id) if job_id is not None else None,
            accepted=doc.get("accepted") is True,
            reason=str(doc.get("reason", "")),
            message=str(doc.get("message", "")),
            problems=problems_from_json(doc.get("problems")),
        )


@dataclass(frozen=True)
class Published:
    """A message the broker confirmed (it owns it now, durably).

    ``verdict`` is set when the publish waited for one; it is always an acceptance
    (``accepted`` or ``duplicate``): a refusal raises instead."""

    job_id: str
    exchange: str
    routing_key: str
    verdict: Optional[Verdict] = None


@dataclass(frozen=True)
class Submission:
    """The API's answer to ``POST /v1/jobs``: ``duplicate`` is true when the same job had
    already been submitted under this id (nothing changed; ``state`` is its current one)."""

    id: str
    name: str
    namespace: str
    priority: str
    state: str
    duplicate: bool

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> "Submission":
        """Reads ``{id, name, namespace, priority, state, duplicate}``."""
        return cls(
            id=str(doc.get("id", "")),
            name=str(doc.get("name", "")),
            namespace=str(doc.get("namespace", "")),
            priority=str(doc.get("priority", "")),
            state=str(doc.get("state", "")),
            duplicate=doc.get("duplicate") is True,
        )


T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next`` as ``cursor`` for the following page (``None``:
    this was the last)."""

    items: list[T]
    next: Optional[str]
