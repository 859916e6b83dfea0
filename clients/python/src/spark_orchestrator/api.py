"""The HTTP API client: submit, follow, cancel, dead letters, queues.

Built on the standard library (``urllib``): the API is a handful of JSON routes, so a third-
party HTTP stack would add dependencies (and their certificate bundles and release cadence)
for nothing the client uses. Every request has a time-out; redirects are not followed (the
bearer token must never be replayed to another host); every non-2xx answer becomes a typed
exception from :mod:`spark_orchestrator.errors`.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterable, Iterator, Mapping, Optional, Union

from .errors import (
    ConnectionFailed,
    NotFound,
    OrchestratorError,
    ServerError,
    Timeout,
    error_from_response,
)
from .models import FINAL_STATES, STATES, Page, Submission

Json = Any
#: A job as a mapping (serialised to JSON) or as bytes sent untouched.
JobBody = Union[Mapping[str, Any], bytes, str]

#: Answers larger than this are refused (a hostile or broken server cannot exhaust memory).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turns every redirect into an error instead of following it with the token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


class HttpClient:
    """Talks to the orchestrator's HTTP API.

    Args:
        api_url: the daemon's base URL, e.g. ``http://127.0.0.1:8080``.
        token: a bearer token from the daemon's ``[auth]`` config.
        timeout: seconds any one request may take (connect and each read).
        user_agent: sent as ``User-Agent``.

    Not tied to a thread: each call opens its own connection.
    """

    def __init__(
        self,
        api_url: str,
        token: Optional[str] = None,
        *,
        timeout: float = 10.0,
        user_agent: str = "spark-orchestrator-python",
    ) -> None:
        parsed = urllib.parse.urlsplit(api_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"api_url must be an http(s) URL, got {api_url!r}")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirect())

    # --- jobs -------------------------------------------------------------------------------

    def submit(self, job: JobBody) -> Submission:
        """``POST /v1/jobs``: stores the job (``202``), or finds it already stored under its
        id with the same content (``200``, ``duplicate=True``).

        A mapping is sent as JSON; ``bytes``/``str`` are sent as they are (a file's content).

        Raises:
            InvalidJob: with every problem (``UnknownNamespace``, ``PayloadTooLarge`` when
                those are among them).
            Conflict: the id is already used by a different job.
            Unauthorized, Forbidden: the token.
        """
        if isinstance(job, Mapping):
            body = json.dumps(job, ensure_ascii=False).encode("utf-8")
        elif isinstance(job, str):
            body = job.encode("utf-8")
        elif isinstance(job, (bytes, bytearray)):
            body = bytes(job)
        else:
            raise TypeError(f"job must be a mapping, bytes or str, not {type(job).__name__}")
        return Submission.from_json(self._object("POST", "/v1/jobs", raw=body))

    def job(self, job_id: str) -> dict[str, Any]:
        """``GET /v1/jobs/{id}``: state, reason, attempt, queue position, waiting reason,
        SparkApplication, history and the normalised job."""
        return self._object("GET", f"/v1/jobs/{_segment(job_id)}")

    def jobs(
        self,
        *,
        namespace: Optional[str] = None,
        state: Optional[str] = None,
        priority: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[dict[str, Any]]:
        """``GET /v1/jobs``: one page of job summaries, newest first."""
        doc = self._object(
            "GET",
            "/v1/jobs",
            query={
                "namespace": namespace,
                "state": state,
                "priority": priority,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return _page(doc)

    def iter_jobs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every job matching the filters of :meth:`jobs`, page after page."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.jobs(cursor=cursor, **filters)
            yield from page.items
            if not page.next:
                return
            cursor = page.next

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /v1/jobs/{id}/cancel`` → ``{id, state, previousState, message}``.

        Raises:
            Conflict: the job has already ended.
            NotFound: no such job.
        """
        return self._object("POST", f"/v1/jobs/{_segment(job_id)}/cancel")

    def wait(
        self,
        job_id: str,
        states: Iterable[str] = FINAL_STATES,
        *,
        timeout: float = 60.0,
        missing_ok: bool = False,
        initial_interval: float = 0.1,
        max_interval: float = 2.0,
    ) -> dict[str, Any]:
        """Polls the job until its state is one of ``states``; returns the job.

        The interval grows ×1.5 from ``initial_interval`` to ``max_interval``. With
        ``missing_ok`` a job the store does not have yet (just published over AMQP) is waited
        for instead of raising :class:`NotFound`.

        Raises:
            Timeout: not reached within ``timeout`` seconds (the message names the last
                state seen).
        """
        wanted = frozenset(states)
        unknown = wanted.difference(STATES)
        if unknown:
            raise ValueError(f"unknown job states: {', '.join(sorted(unknown))}")
        deadline = time.monotonic() + timeout
        interval = initial_interval
        last: Optional[str] = None
        while True:
            try:
                job = self.job(job_id)
                last = str(job.get("state"))
                if last in wanted:
                    return job
            except NotFound:
                if not missing_ok:
                    raise
                last = "not stored yet"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Timeout(
                    f"job {job_id} did not reach {'/'.join(sorted(wanted))} within {timeout:g}s "
                    f"(last seen: {last})",
                    error="timeout",
                )
            time.sleep(min(interval, remaining))
            interval = min(interval * 1.5, max_interval)

    # --- queues and dead letters ------------------------------------------------------------

    def queues(self, *, namespace: Optional[str] = None, heads: Optional[int] = None) -> dict[str, Any]:
        """``GET /v1/queues``: per namespace and priority, depth, oldest wait, the first jobs
        in line."""
        return self._object("GET", "/v1/queues", query={"namespace": namespace, "heads": heads})

    def dead_letters(
        self,
        *,
        namespace: Optional[str] = None,
        reason: Optional[str] = None,
        include_requeued: bool = False,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Page[dict[str, Any]]:
        """``GET /v1/dlq``: one page of dead letters, oldest first."""
        doc = self._object(
            "GET",
            "/v1/dlq",
            query={
                "namespace": namespace,
                "reason": reason,
                "includeRequeued": "true" if include_requeued else None,
                "limit": limit,
                "cursor": cursor,
            },
        )
        return _page(doc)

    def iter_dead_letters(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every dead letter matching the filters of :meth:`dead_letters`."""
        cursor = filters.pop("cursor", None)
        while True:
            page = self.dead_letters(cursor=cursor, **filters)
            yield from page.items
            if not page.next:
                return
            cursor = page.next

    def dead_letter(self, dead_letter_id: int) -> dict[str, Any]:
        """``GET /v1/dlq/{id}``: the record with its stored body (text, or ``None`` when the
        body is not UTF-8)."""
        return self._object("GET", f"/v1/dlq/{_segment(str(int(dead_letter_id)))}")

    def requeue(
        self,
        *,
        id: Optional[int] = None,
        namespace: Optional[str] = None,
        reason: Optional[str] = None,
        all: bool = False,
        reset_attempts: bool = False,
    ) -> dict[str, int]:
        """``POST /v1/dlq/requeue`` → ``{jobs, messages, skipped}``. Give one selector: ``id``,
        or ``namespace`` and/or ``reason``, or ``all=True``. A dead job goes back to
        ``queued`` with its id and history; a dead message is published again and validated
        afresh."""
        body = _selector(id, namespace, reason, all)
        if reset_attempts:
            body["resetAttempts"] = True
        doc = self._object("POST", "/v1/dlq/requeue", body=body)
        return {k: int(doc.get(k) or 0) for k in ("jobs", "messages", "skipped")}

    def purge(
        self,
        *,
        id: Optional[int] = None,
        namespace: Optional[str] = None,
        reason: Optional[str] = None,
        all: bool = False,
        include_requeued: bool = False,
    ) -> int:
        """``POST /v1/dlq/purge``: deletes dead-letter records; returns how many."""
        body = _selector(id, namespace, reason, all)
        if include_requeued:
            body["includeRequeued"] = True
        doc = self._object("POST", "/v1/dlq/purge", body=body)
        return int(doc.get("purged") or 0)

    # --- plumbing ---------------------------------------------------------------------------

    def _object(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """:meth:`_call` for routes that answer a JSON object (anything else is a
        :class:`ServerError`: not the API's answer)."""
        doc = self._call(method, path, **kwargs)
        if not isinstance(doc, dict):
            raise ServerError(f"{method} {path} answered {type(doc).__name__}, not an object", error="bad-response")
        return doc

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, Any]] = None,
        body: Optional[Json] = None,
        raw: Optional[bytes] = None,
    ) -> Any:
        """One request; the parsed JSON answer, or a typed exception."""
        url = self.api_url + path
        if query:
            pairs = [(k, str(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        data = raw
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status = response.status
                payload = _read_bounded(response)
        except urllib.error.HTTPError as e:
            try:
                payload = _read_bounded(e)
            except (OSError, OrchestratorError):
                payload = b""
            raise error_from_response(e.code, payload) from None
        except (socket.timeout, TimeoutError) as e:
            raise Timeout(f"{method} {path}: no answer within {self.timeout:g}s", error="timeout") from e
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise Timeout(f"{method} {path}: no answer within {self.timeout:g}s", error="timeout") from e
            raise ConnectionFailed(f"cannot reach {self.api_url}: {e.reason}", error="connection") from e
        except (ConnectionError, OSError) as e:
            raise ConnectionFailed(f"{method} {path} failed: {e}", error="connection") from e
        if not payload:
            return {}
        try:
            return json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ServerError(
                f"{method} {path} answered HTTP {status} with a body that is not JSON",
                error="bad-response",
                status=status,
            ) from None


def _read_bounded(response: Any) -> bytes:
    data = bytes(response.read(MAX_RESPONSE_BYTES + 1))
    if len(data) > MAX_RESPONSE_BYTES:
        raise ServerError(
            f"the answer is larger than {MAX_RESPONSE_BYTES} bytes", error="bad-response"
        )
    return data


def _segment(value: str) -> str:
    """A path segment, percent-encoded (``../metrics`` stays inside its route)."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty string")
    return urllib.parse.quote(value, safe="")


def _selector(id: Optional[int], namespace: Optional[str], reason: Optional[str], all: bool) -> dict[str, Any]:
    chosen = sum([id is not None, namespace is not None or reason is not None, all])
    if chosen != 1:
        raise ValueError("give one selector: id, or namespace/reason, or all=True")
    if id is not None:
        return {"id": int(id)}
    if all:
        return {"all": True}
    body: dict[str, Any] = {}
    if namespace is not None:
        body["namespace"] = namespace
    if reason is not None:
        body["reason"] = reason
    return body


def _page(doc: dict[str, Any]) -> Page[dict[str, Any]]:
    if not isinstance(doc.get("items"), list):
        raise ServerError("a listing answered without an items array", error="bad-response")
    nxt = doc.get("next")
    return Page(items=list(doc["items"]), next=str(nxt) if nxt is not None else None)
