"""Publishing jobs over AMQP (RabbitMQ), as the daemon's intake expects them.

Each job goes to the topic exchange ``{prefix}.jobs`` with routing key
``{namespace}.{priority}``, persistent, ``content_type: application/json``, ``message_id`` = the
job id (generated — a UUID v7 — and written into the body too when the job has none, so a
re-send is the same job), and the publish time in the ``x-orchestrator-published-at-ms``
header. A publish returns only when the broker has *confirmed* it (publisher confirms);
``mandatory`` makes a message no queue takes come back, which RabbitMQ still confirms, so the
return is checked and raised as :class:`~spark_orchestrator.errors.Unroutable`.

What the broker cannot tell: whether the daemon *accepts* the job. A job for a namespace the
daemon does not serve is **not** unroutable — the jobs exchange's alternate exchange
``{prefix}.unroutable`` takes it and the daemon dead-letters it (reason ``unknown-namespace``).
To learn the outcome, publish with ``wait_verdict=True``: the message carries ``reply_to`` (an
exclusive queue of this connection) and a ``correlation_id``, the daemon answers
``{jobId, accepted, reason, message, problems}`` once the message is stored or dead-lettered,
and a refusal is raised as :class:`~spark_orchestrator.errors.InvalidJob` (or
:class:`~spark_orchestrator.errors.UnknownNamespace`, :class:`~spark_orchestrator.errors.PayloadTooLarge`)
carrying every problem.

Time-outs: connecting (``socket_timeout``, ``stack_timeout``), a connection the broker blocks
(resource alarm: ``blocked_connection_timeout``), verdict waits — all bounded by ``timeout``.
The wait for a publisher confirm itself is bounded by the connection's heartbeat (a dead broker
is noticed within two heartbeat intervals) and by the blocked-connection time-out; pika's
blocking adapter offers no per-publish deadline.

Not thread-safe (pika's blocking connection): use one publisher per thread.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Optional, Union

import pika
import pika.exceptions

from .errors import (
    ConnectionFailed,
    Nacked,
    OrchestratorError,
    Timeout,
    Unroutable,
    error_from_verdict,
)
from .models import Published, Verdict, new_job_id

#: The header with the publish time in milliseconds (the AMQP timestamp has whole seconds).
PUBLISHED_AT_MS_HEADER = "x-orchestrator-published-at-ms"
#: Verdicts kept for correlation ids nobody waits for any more (late answers), at most.
_MAX_UNCLAIMED_VERDICTS = 1000
#: AMQP short strings (routing keys, message ids) are at most 255 bytes.
_SHORTSTR = 255


class AmqpPublisher:
    """Publishes jobs to the orchestrator's ``{prefix}.jobs`` exchange with confirms.

    Args:
        url: the broker, e.g. ``amqp://guest:guest@127.0.0.1:5672/%2F``, or ready
            :class:`pika.ConnectionParameters`.
        prefix: the daemon's ``[amqp] prefix`` (``orchestrator`` by default).
        timeout: seconds for connecting, for a blocked connection, and the default verdict
            wait.
        connection_name: shown in the broker's connection list.

    The connection opens on first use and is reopened once if it broke (a publish caught by
    a broken connection is sent again under the same ``message_id``, which the daemon stores
    once). Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: Union[str, pika.ConnectionParameters] = "amqp://guest:guest@127.0.0.1:5672/%2F",
        prefix: str = "orchestrator",
        *,
        timeout: float = 10.0,
        connection_name: str = "spark-orchestrator-python",
    ) -> None:
        if not prefix or len(prefix) > 64:
            raise ValueError("prefix must be 1 to 64 characters")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.prefix = prefix
        self.exchange = f"{prefix}.jobs"
        self.timeout = timeout
        # A copy: the caller's parameters are not changed by the time-outs set here.
        params: Union[pika.ConnectionParameters, pika.URLParameters] = (
            pika.URLParameters(url) if isinstance(url, str) else copy.copy(url)
        )
        params.socket_timeout = timeout
        params.stack_timeout = timeout
        params.blocked_connection_timeout = timeout
        props = dict(params.client_properties or {})
        props.setdefault("connection_name", connection_name)
        params.client_properties = props
        self._params = params
        self._connection: Optional[pika.BlockingConnection] = None
        self._channel: Any = None
        self._reply_queue: Optional[str] = None
        self._verdicts: "OrderedDict[str, Verdict]" = OrderedDict()

    # --- publishing -------------------------------------------------------------------------

    def publish(
        self,
        job: Mapping[str, Any],
        *,
        namespace: Optional[str] = None,
        priority: Optional[str] = None,
        wait_verdict: bool = False,
        timeout: Optional[float] = None,
    ) -> Published:
        """Publishes one job and waits for the broker's confirm (and, with ``wait_verdict``,
        for the daemon's verdict).

        ``namespace`` and ``priority`` route the message; by default the job's own
        (``priority`` defaults to ``normal``, as in the daemon). Returns the job id the
        message carries — the job's ``id``, or a fresh UUID v7 written into the body.

        Raises:
            Unroutable, Nacked: the broker did not take it.
            InvalidJob, UnknownNamespace, PayloadTooLarge: (``wait_verdict``) the daemon
                refused it; ``problems`` says why, ``verdict`` is the whole answer.
            Timeout: no verdict within ``timeout`` (default: the publisher's); the message
                is with the broker, so the job may still be accepted.
            ConnectionFailed: the broker cannot be reached.
        """
        body, job_id, ns, prio = _prepare(job, namespace, priority)
        return self._publish(body, ns, prio, job_id, "application/json", wait_verdict, timeout)

    def publish_raw(
        self,
        body: Union[bytes, str],
        namespace: str,
        priority: str = "normal",
        *,
        message_id: Optional[str] = None,
        content_type: Optional[str] = "application/json",
        wait_verdict: bool = False,
        timeout: Optional[float] = None,
    ) -> Published:
        """Publishes bytes as they are (a job file's content, or anything at all): the daemon
        validates them. ``message_id`` defaults to the body's ``id`` when it is a JSON object
        with one, else a fresh UUID v7 (so a re-send stays one job). Errors as
        :meth:`publish`."""
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if message_id is None:
            message_id = _body_id(data) or new_job_id()
        return self._publish(data, namespace, priority, message_id, content_type, wait_verdict, timeout)

    def publish_all(
        self,
        jobs: Iterable[Mapping[str, Any]],
        *,
        timeout: Optional[float] = None,
    ) -> list[Union[Published, OrchestratorError]]:
        """Publishes every job (each confirmed), then waits for all their verdicts together.

        Returns one entry per job, in order: a :class:`Published` with its verdict, or the
        error for that job (refused, unroutable, no verdict in time) — nothing is raised for
        a single job, so one bad job does not hide the others' outcomes.
        """
        pending: list[tuple[Optional[str], Union[Published, OrchestratorError]]] = []
        for job in jobs:
            try:
                body, job_id, ns, prio = _prepare(job, None, None)
                tag = str(uuid.uuid4())
                pending.append((tag, self._send(body, ns, prio, job_id, "application/json", tag)))
            except OrchestratorError as e:
                pending.append((None, e))
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        results: list[Union[Published, OrchestratorError]] = []
        for waiting_for, outcome in pending:
            if waiting_for is None or not isinstance(outcome, Published):
                results.append(outcome)
                continue
            try:
                verdict = self._await_verdict(waiting_for, outcome.job_id, deadline)
            except OrchestratorError as e:
                results.append(e)
                continue
            results.append(_settle(outcome, verdict, raise_refusal=False))
        return results

    # --- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the connection (its reply queue goes with it)."""
        conn, self._connection, self._channel, self._reply_queue = self._connection, None, None, None
        if conn is not None and conn.is_open:
            try:
                conn.close()
            except pika.exceptions.AMQPError:
                pass

    def __enter__(self) -> "AmqpPublisher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------

    def _publish(
        self,
        body: bytes,
        namespace: str,
        priority: str,
        message_id: str,
        content_type: Optional[str],
        wait_verdict: bool,
        timeout: Optional[float],
    ) -> Published:
        correlation = str(uuid.uuid4()) if wait_verdict else None
        sent = self._send(body, namespace, priority, message_id, content_type, correlation)
        if correlation is None:
            return sent
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        verdict = self._await_verdict(correlation, sent.job_id, deadline)
        result = _settle(sent, verdict, raise_refusal=True)
        assert isinstance(result, Published)
        return result

    def _send(
        self,
        body: bytes,
        namespace: str,
        priority: str,
        message_id: str,
        content_type: Optional[str],
        correlation: Optional[str],
    ) -> Published:
        routing_key = f"{namespace}.{priority}"
        if not namespace or not priority:
            raise ValueError("namespace and priority must be non-empty")
        if len(routing_key.encode("utf-8")) > _SHORTSTR or len(message_id.encode("utf-8")) > _SHORTSTR:
            raise ValueError("the routing key and message id must each fit in 255 bytes")
        for attempt in (1, 2):
            try:
                channel = self._ensure_channel(want_replies=correlation is not None)
                now_ms = int(time.time() * 1000)
                props = pika.BasicProperties(
                    content_type=content_type,
                    delivery_mode=2,  # persistent
                    message_id=message_id,
                    timestamp=now_ms // 1000,
                    headers={PUBLISHED_AT_MS_HEADER: now_ms},
                    reply_to=self._reply_queue if correlation is not None else None,
                    correlation_id=correlation,
                )
                channel.basic_publish(self.exchange, routing_key, body, props, mandatory=True)
                return Published(job_id=message_id, exchange=self.exchange, routing_key=routing_key)
            except pika.exceptions.UnroutableError:
                raise Unroutable(
                    f"the broker returned the message: no queue is bound to {routing_key!r} on "
                    f"{self.exchange!r} and no alternate exchange took it; nothing was enqueued",
                    error="unroutable",
                ) from None
            except pika.exceptions.NackError:
                raise Nacked(
                    f"the broker refused the message for {routing_key!r} (a full queue?); "
                    "nothing was enqueued — sending it again is safe",
                    error="nacked",
                ) from None
            except pika.exceptions.ChannelClosedByBroker as e:
                self._drop_channel()
                if e.reply_code == 404:
                    raise Unroutable(
                        f"the exchange {self.exchange!r} does not exist: is the orchestrator running "
                        f"with [amqp] prefix = {self.prefix!r}? ({e.reply_text})",
                        error="no-exchange",
                    ) from None
                raise ConnectionFailed(f"the broker closed the channel: {e.reply_code} {e.reply_text}", error="channel") from None
            except pika.exceptions.ConnectionBlockedTimeout:
                self._drop_connection()
                raise Timeout(
                    f"the broker blocked the connection (a resource alarm) for more than {self.timeout:g}s",
                    error="timeout",
                ) from None
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelWrongStateError, OSError) as e:
                # A broken connection: open a new one and send again (same message_id).
                self._drop_connection()
                if attempt == 2:
                    raise ConnectionFailed(f"cannot publish to the broker: {e!r}", error="connection") from None
        raise AssertionError("unreachable")

    def _await_verdict(self, correlation: str, job_id: str, deadline: float) -> Verdict:
        while correlation not in self._verdicts:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._connection is None:
                raise Timeout(
                    f"no verdict for job {job_id} in time; the broker has the message, so the job "
                    "may still be accepted (look it up by id)",
                    error="timeout",
                )
            try:
                # pika accepts fractional seconds (its stubs say int).
                self._connection.process_data_events(time_limit=min(remaining, 1.0))  # type: ignore[arg-type]
            except pika.exceptions.AMQPError as e:
                self._drop_connection()
                raise ConnectionFailed(
                    f"the connection broke while waiting for the verdict of job {job_id}: {e!r}",
                    error="connection",
                ) from None
        return self._verdicts.pop(correlation)

    def _ensure_channel(self, want_replies: bool) -> Any:
        if self._connection is None or not self._connection.is_open:
            try:
                self._connection = pika.BlockingConnection(self._params)
            except pika.exceptions.AMQPError as e:
                self._connection = None
                raise ConnectionFailed(f"cannot connect to the broker: {e!r}", error="connection") from None
            self._channel = None
            self._reply_queue = None
        if self._channel is None or not self._channel.is_open:
            channel = self._connection.channel()
            channel.confirm_delivery()
            self._channel = channel
            self._reply_queue = None
        if want_replies and self._reply_queue is None:
            declared = self._channel.queue_declare(queue="", exclusive=True, auto_delete=True)
            queue = declared.method.queue
            self._channel.basic_consume(queue, self._on_verdict, auto_ack=True)
            self._reply_queue = queue
        return self._channel

    def _on_verdict(self, _channel: Any, _method: Any, properties: Any, body: bytes) -> None:
        correlation = properties.correlation_id
        if not correlation:
            return
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            doc = {"accepted": False, "reason": "bad-verdict", "message": "the verdict was not JSON"}
        if not isinstance(doc, Mapping):
            doc = {"accepted": False, "reason": "bad-verdict", "message": "the verdict was not an object"}
        self._verdicts[correlation] = Verdict.from_json(doc)
        while len(self._verdicts) > _MAX_UNCLAIMED_VERDICTS:
            self._verdicts.popitem(last=False)

    def _drop_channel(self) -> None:
        self._channel = None
        self._reply_queue = None

    def _drop_connection(self) -> None:
        conn = self._connection
        self._connection = None
        self._drop_channel()
        if conn is not None:
            try:
                if conn.is_open:
                    conn.close()
            except pika.exceptions.AMQPError:
                pass


def _prepare(
    job: Mapping[str, Any], namespace: Optional[str], priority: Optional[str]
) -> tuple[bytes, str, str, str]:
    """The body (with an id), the id, and the routing of a job mapping."""
    if not isinstance(job, Mapping):
        raise TypeError(f"a job is a mapping (a JSON object), not {type(job).__name__}")
    doc = dict(job)
    job_id = doc.get("id")
    if job_id is None:
        job_id = new_job_id()
        doc = {"id": job_id, **doc}
    ns = namespace if namespace is not None else doc.get("namespace")
    prio = priority if priority is not None else doc.get("priority", "normal")
    if not isinstance(ns, str) or not ns:
        raise ValueError("the job has no namespace to route by; pass namespace=")
    if not isinstance(prio, str) or not prio:
        raise ValueError("the job's priority is not a string; pass priority=")
    body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return body, str(job_id), ns, prio


def _body_id(body: bytes) -> Optional[str]:
    """The ``id`` of a JSON object body, if it has a string one."""
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    job_id = doc.get("id") if isinstance(doc, dict) else None
    return job_id if isinstance(job_id, str) and job_id else None


def _settle(sent: Published, verdict: Verdict, *, raise_refusal: bool) -> Union[Published, OrchestratorError]:
    if verdict.accepted:
        return Published(
            job_id=verdict.job_id or sent.job_id,
            exchange=sent.exchange,
            routing_key=sent.routing_key,
            verdict=verdict,
        )
    error = error_from_verdict(verdict)
    if raise_refusal:
        raise error
    return error
