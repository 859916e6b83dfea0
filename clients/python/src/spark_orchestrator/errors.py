"""Typed errors: one class per way a submission or a request can fail.

The HTTP API answers every refusal as ``{"error": code, "message": sentence, "problems": [...]}``;
the AMQP intake answers a ``reply_to`` with a verdict ``{jobId, accepted, reason, message,
problems}``. Both become the same exceptions, so a caller handles "the job is invalid" once,
whichever way it was sent:

.. code-block:: text

    OrchestratorError
    ├── InvalidJob              (HTTP 400/422 invalid-job, or an AMQP verdict "invalid")
    │   ├── UnknownNamespace    (a problem "unknown-namespace"; AMQP verdict "unknown-namespace")
    │   └── PayloadTooLarge     (HTTP 413, or a problem "too-large")
    ├── BadRequest              (other 400s: a bad query, path or request body)
    ├── Unprocessable           (other 422s: well formed, refused by the daemon's config/rules)
    ├── Unauthorized            (401)
    ├── Forbidden               (403)
    ├── NotFound                (404)
    ├── Conflict                (409: id used by another job, job already ended)
    ├── UnsupportedMediaType    (415)
    ├── ServerError             (5xx, or an answer that is not the API's)
    │   └── Unavailable         (503)
    ├── Unroutable              (AMQP: the broker returned the message, or no such exchange)
    ├── Nacked                  (AMQP: the broker refused the message, e.g. a full queue)
    ├── Timeout                 (no answer, confirm, verdict or state in time)
    └── ConnectionFailed        (the API or the broker cannot be reached)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .models import Verdict


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a job: a stable ``code`` (``invalid-name``, ``too-large``, …), a
    JSON ``path`` (``$.executor.instances``) and a sentence saying how to fix it."""

    code: str
    path: str
    message: str

    @classmethod
    def from_json(cls, value: Any) -> "Problem":
        """Reads a problem leniently: a malformed entry still yields something printable."""
        if isinstance(value, Mapping):
            return cls(
                code=str(value.get("code", "")),
                path=str(value.get("path", "")),
                message=str(value.get("message", "")),
            )
        return cls(code="", path="", message=str(value))

    def __str__(self) -> str:
        return f"{self.code} at {self.path}: {self.message}"


def problems_from_json(value: Any) -> list[Problem]:
    """A ``problems`` array (anything else gives an empty list)."""
    if not isinstance(value, list):
        return []
    return [Problem.from_json(p) for p in value]


class OrchestratorError(Exception):
    """Base of every error this client raises.

    Attributes:
        error: the API's machine code (``invalid-job``, ``not-found``, …) or, for AMQP, the
            verdict's reason (``invalid``, ``unknown-namespace``) or a client code
            (``unroutable``, ``nacked``, ``timeout``, ``connection``).
        message: one sentence for humans.
        problems: every field-level problem the server found (may be empty).
        status: the HTTP status, when the error came from the API.
        verdict: the AMQP verdict, when the error came from one.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str = "",
        problems: Optional[Iterable[Problem]] = None,
        status: Optional[int] = None,
        verdict: Optional["Verdict"] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.error = error
        self.problems: list[Problem] = list(problems or [])
        self.status = status
        self.verdict = verdict

    def __str__(self) -> str:
        head = self.message
        if self.status is not None:
            head = f"{head} (HTTP {self.status} {self.error})"
        elif self.error:
            head = f"{head} ({self.error})"
        if not self.problems:
            return head
        return head + "".join(f"\n  - {p}" for p in self.problems)


class InvalidJob(OrchestratorError):
    """The job was refused: ``problems`` lists every reason, not just the first."""


class UnknownNamespace(InvalidJob):
    """The job names a namespace the orchestrator does not serve. Over AMQP the broker still
    takes such a message (the jobs exchange's alternate exchange catches it) and the daemon
    dead-letters it with reason ``unknown-namespace``: only a verdict wait reports it."""


class PayloadTooLarge(InvalidJob):
    """The body is larger than the daemon's ``limits.max_message_bytes``."""


class BadRequest(OrchestratorError):
    """A request the API could not read (query, path parameter, request body)."""


class Unprocessable(OrchestratorError):
    """A request that conforms to the API's schema but that the daemon's rules refuse (422):
    a query naming a namespace it does not serve, a schedule whose cron expression, time zone
    or job template it refuses. (A refused job is :class:`InvalidJob`, 400 or 422.)"""


class Unauthorized(OrchestratorError):
    """No token, or one the daemon does not know."""


class Forbidden(OrchestratorError):
    """The token lacks the role or the namespace."""


class NotFound(OrchestratorError):
    """No such job, dead letter or schedule."""


class Conflict(OrchestratorError):
    """The id belongs to a different job, or the job has already ended."""


class UnsupportedMediaType(OrchestratorError):
    """The body was not sent as JSON."""


class ServerError(OrchestratorError):
    """The server failed (5xx), or answered something that is not the API's JSON."""


class Unavailable(ServerError):
    """The daemon is up but a component it needs (database, broker) is not (503)."""


class Unroutable(OrchestratorError):
    """The broker could not deliver the message to any queue: it came back
    (``basic.return`` of a ``mandatory`` publish; RabbitMQ still *confirms* those), or the
    jobs exchange does not exist (the daemon has not declared its topology under this
    prefix). Nothing was enqueued."""


class Nacked(OrchestratorError):
    """The broker refused the message (a negative publisher confirm), e.g. because the queue
    is full (``x-overflow reject-publish``). Nothing was enqueued; sending again under the
    same id is safe."""


class Timeout(OrchestratorError):
    """No answer in time: an HTTP request, a publisher confirm on a blocked connection, a
    verdict, or a state :meth:`HttpClient.wait` was waiting for. The operation may still
    have happened; retrying under the same job id is safe."""


class ConnectionFailed(OrchestratorError):
    """The API or the broker could not be reached, or the connection broke."""


_BY_STATUS: dict[int, type[OrchestratorError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    503: Unavailable,
}


def _refusal_class(problems: list[Problem]) -> type[InvalidJob]:
    """The most specific class for a refused job, from its problems (the daemon's own rule:
    any problem about an unknown namespace makes it ``unknown-namespace``)."""
    codes = {p.code for p in problems}
    if "unknown-namespace" in codes:
        return UnknownNamespace
    if "too-large" in codes:
        return PayloadTooLarge
    return InvalidJob


def error_from_response(status: int, body: bytes) -> OrchestratorError:
    """The exception for an HTTP answer that is not a success. Pure, so every status and
    malformed body is unit-tested; a body that is not the API's JSON (a proxy's HTML page,
    garbage) still gives the class of its status, with a short excerpt as the message."""
    code = ""
    message = ""
    problems: list[Problem] = []
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        doc = None
    if isinstance(doc, Mapping) and isinstance(doc.get("error"), str):
        code = doc["error"]
        message = str(doc.get("message") or code)
        problems = problems_from_json(doc.get("problems"))
    else:
        excerpt = body[:200].decode("utf-8", errors="replace").strip()
        message = f"HTTP {status}" + (f": {excerpt}" if excerpt else "")
    cls: type[OrchestratorError]
    if code == "invalid-job" or (status == 413):
        cls = _refusal_class(problems)
        if status == 413 and cls is InvalidJob:
            cls = PayloadTooLarge
    elif status in _BY_STATUS:
        cls = _BY_STATUS[status]
    elif status >= 500:
        cls = ServerError
    elif 300 <= status < 400:
        cls = ServerError
        message = f"unexpected redirect (HTTP {status}); check the API URL: {message}"
    else:
        cls = OrchestratorError
    return cls(message, error=code or f"http-{status}", problems=problems, status=status)


def error_from_verdict(verdict: "Verdict") -> InvalidJob:
    """The exception for a refused AMQP verdict."""
    cls = _refusal_class(verdict.problems)
    if verdict.reason == "unknown-namespace":
        cls = UnknownNamespace
    return cls(
        verdict.message or f"the job was refused ({verdict.reason})",
        error=verdict.reason,
        problems=verdict.problems,
        verdict=verdict,
    )
