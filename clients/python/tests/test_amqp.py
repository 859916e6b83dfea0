"""Publishing over AMQP to the real daemon: confirms, verdicts, dead letters, returns."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable, Optional, TypeVar

import pika
import pytest

from conftest import ROOT, Stack, delete_topology, example, quick_job, unique
from spark_orchestrator import (
    AmqpPublisher,
    ConnectionFailed,
    HttpClient,
    InvalidJob,
    Nacked,
    PayloadTooLarge,
    Published,
    UnknownNamespace,
    Unroutable,
    new_job_id,
)

T = TypeVar("T")


def eventually(probe: Callable[[], Optional[T]], what: str, seconds: float = 30.0) -> T:
    """Polls ``probe`` until it returns something (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def dead_letter_of(http: HttpClient, claimed: str, **filters: Any) -> Optional[dict[str, Any]]:
    for item in http.iter_dead_letters(include_requeued=True, **filters):
        if claimed in (item.get("claimedId"), item.get("jobId")):
            return item
    return None


def codes(error: InvalidJob) -> set[str]:
    return {p.code for p in error.problems}


def test_submit_over_amqp_is_accepted_and_runs_to_success(stack: Stack, publisher: AmqpPublisher, http: HttpClient) -> None:
    job = quick_job("pyc-amqp-ok")
    sent = publisher.publish(job, wait_verdict=True)
    # No id in the job: one was generated (a UUID v7), carried as message_id and in the body.
    assert uuid.UUID(sent.job_id).version == 7
    assert sent.routing_key == "team-a.normal" and sent.exchange == f"{stack.prefix}.jobs"
    assert sent.verdict is not None and sent.verdict.accepted and sent.verdict.reason == "accepted"
    assert sent.verdict.job_id == sent.job_id
    done = http.wait(sent.job_id, timeout=90)
    assert done["state"] == "succeeded", done
    assert done["source"] == "amqp"
    assert done["job"]["id"] == sent.job_id and done["job"]["name"] == "pyc-amqp-ok"
    assert [t["to"] for t in done["history"]][:1] == ["queued"]


def test_priority_routes_to_the_high_queue(publisher: AmqpPublisher, http: HttpClient) -> None:
    sent = publisher.publish(quick_job("pyc-amqp-high", namespace="team-b", priority="high"), wait_verdict=True)
    assert sent.routing_key == "team-b.high"
    job = http.job(sent.job_id)
    assert (job["namespace"], job["priority"]) == ("team-b", "high")


def test_the_same_id_twice_is_one_job(publisher: AmqpPublisher, http: HttpClient) -> None:
    job = quick_job("pyc-amqp-dup", id=new_job_id())
    first = publisher.publish(job, wait_verdict=True)
    again = publisher.publish(job, wait_verdict=True)
    assert first.job_id == again.job_id == job["id"]
    assert first.verdict is not None and first.verdict.reason == "accepted"
    assert again.verdict is not None and again.verdict.accepted and again.verdict.reason == "duplicate"
    created = [t for t in http.job(job["id"])["history"] if t["from"] is None]
    assert len(created) == 1


def test_an_invalid_job_is_refused_with_every_problem_and_dead_lettered(
    publisher: AmqpPublisher, http: HttpClient
) -> None:
    job = quick_job("Bad_Name", id=new_job_id())
    job["executor"] = {"nodeType": "huge", "instances": 2}
    with pytest.raises(InvalidJob) as caught:
        publisher.publish(job, wait_verdict=True)
    error = caught.value
    assert type(error) is InvalidJob and error.error == "invalid"
    assert {"invalid-name", "unknown-node-type"} <= codes(error)
    assert error.verdict is not None and error.verdict.job_id == job["id"] and not error.verdict.accepted
    record = eventually(lambda: dead_letter_of(http, job["id"], namespace="team-a", reason="invalid"), "the dead letter")
    assert {p["code"] for p in record["problems"]} == codes(error)
    assert record["messageId"] == job["id"] and record["routingKey"] == "team-a.normal"
    stored = http.dead_letter(record["id"])
    assert json.loads(stored["body"]) == job


def test_an_unknown_namespace_is_taken_by_the_broker_and_dead_lettered(
    stack: Stack, publisher: AmqpPublisher, http: HttpClient
) -> None:
    # The alternate exchange takes it: the broker confirms, nothing is returned.
    quiet = publisher.publish(quick_job("pyc-nowhere", namespace="team-zz"))
    assert isinstance(quiet, Published) and quiet.verdict is None
    record = eventually(lambda: dead_letter_of(http, quiet.job_id, reason="unknown-namespace"), "the dead letter")
    assert record["namespace"] == "team-zz" and record["routingKey"] == "team-zz.normal"
    # Only the verdict tells the publisher.
    with pytest.raises(UnknownNamespace) as caught:
        publisher.publish(quick_job("pyc-nowhere", namespace="team-zz"), wait_verdict=True)
    assert caught.value.error == "unknown-namespace"
    assert "unknown-namespace" in codes(caught.value)
    assert all(ns in caught.value.problems[0].message for ns in stack.namespaces)


def test_a_returned_message_is_unroutable(stack: Stack) -> None:
    """``mandatory``: a message no queue takes comes back (and is still confirmed)."""
    bare = unique("p")
    connection = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
    try:
        connection.channel().exchange_declare(f"{bare}.jobs", "topic", auto_delete=False)
        with stack.publisher(prefix=bare) as publisher:
            with pytest.raises(Unroutable) as caught:
                publisher.publish(quick_job("pyc-returned"))
            assert caught.value.error == "unroutable"
            # The channel survives a return: the next publish is answered the same way.
            with pytest.raises(Unroutable):
                publisher.publish(quick_job("pyc-returned"))
    finally:
        connection.close()
        delete_topology([], [f"{bare}.jobs"])


def test_a_missing_exchange_is_unroutable_and_the_publisher_recovers(stack: Stack) -> None:
    with stack.publisher(prefix=unique("none")) as publisher:
        for _ in range(2):  # the broker closes the channel (404); the next publish reopens it
            with pytest.raises(Unroutable) as caught:
                publisher.publish(quick_job("pyc-noexchange"))
            assert caught.value.error == "no-exchange"
            assert "prefix" in caught.value.message


def test_an_oversized_body_is_refused_and_kept_truncated(publisher: AmqpPublisher, http: HttpClient) -> None:
    job = quick_job("pyc-huge", id=new_job_id(), arguments=["x" * 60_000] * 20)  # 1.2 MB > 1 MiB
    with pytest.raises(PayloadTooLarge) as caught:
        publisher.publish(job, wait_verdict=True)
    assert "too-large" in codes(caught.value)
    record = eventually(lambda: dead_letter_of(http, job["id"], namespace="team-a"), "the dead letter")
    assert record["bodyTruncated"] is True and record["bodyBytes"] > 1_048_576


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ((ROOT / "examples/invalid/not-json.txt").read_bytes(), "application/json", "malformed-json"),
        (b"\xff\xfe\x00garbage", "application/json", "not-utf8"),
        (b"[" * 10_000 + b"]" * 10_000, "application/json", None),
        (b"", "application/json", None),
        (json.dumps(example("spark-pi.json")).encode(), "text/plain", "invalid-value"),
    ],
    ids=["not-json", "not-utf8", "deeply-nested", "empty", "text-plain"],
)
def test_hostile_bodies_are_refused_with_a_reason(
    publisher: AmqpPublisher, http: HttpClient, body: bytes, content_type: str, code: Optional[str]
) -> None:
    message_id = new_job_id()
    with pytest.raises(InvalidJob) as caught:
        publisher.publish_raw(body, "team-a", message_id=message_id, content_type=content_type, wait_verdict=True)
    assert caught.value.error == "invalid" and caught.value.problems
    if code is not None:
        assert code in codes(caught.value), caught.value
    assert caught.value.verdict is not None and caught.value.verdict.job_id == message_id
    assert eventually(lambda: dead_letter_of(http, message_id, namespace="team-a"), "the dead letter")


def test_a_dead_job_is_requeued_from_the_dlq_and_purged(publisher: AmqpPublisher, http: HttpClient) -> None:
    never = example("never-fits.json")
    never["name"] = "pyc-never-fits"
    sent = publisher.publish(never, wait_verdict=True)
    dead = http.wait(sent.job_id, ["dead"], timeout=60)
    assert dead["reason"] == "never-fits"
    first = eventually(lambda: dead_letter_of(http, sent.job_id, namespace="team-b", reason="never-fits"), "the record")
    assert first["jobId"] == sent.job_id
    report = http.requeue(id=first["id"])
    assert report == {"jobs": 1, "messages": 0, "skipped": 0}
    # Same id, history kept: dead -> queued, then dead again (it still cannot fit).
    def requeued_and_dead_again() -> Optional[dict[str, Any]]:
        job = http.job(sent.job_id)
        moves = [(t["from"], t["to"]) for t in job["history"]]
        return job if ("dead", "queued") in moves and moves[-1][1] == "dead" else None

    eventually(requeued_and_dead_again, "the requeued job to die again", 60)
    assert http.dead_letter(first["id"])["requeuedAt"] is not None
    assert http.purge(id=first["id"]) == 1
    with pytest.raises(Exception) as gone:
        http.dead_letter(first["id"])
    assert type(gone.value).__name__ == "NotFound"


def test_a_dead_message_is_requeued_and_validated_afresh(publisher: AmqpPublisher, http: HttpClient) -> None:
    message_id = new_job_id()
    with pytest.raises(InvalidJob):
        publisher.publish_raw(b"{not json", "team-b", message_id=message_id, wait_verdict=True)
    record = eventually(lambda: dead_letter_of(http, message_id, namespace="team-b"), "the record")
    assert http.requeue(id=record["id"]) == {"jobs": 0, "messages": 1, "skipped": 0}
    # Published again under the same message_id, refused again: a second record.
    def second() -> Optional[list[dict[str, Any]]]:
        found = [d for d in http.iter_dead_letters(namespace="team-b", include_requeued=True) if d.get("claimedId") == message_id]
        return found if len(found) == 2 else None

    records = eventually(second, "the second dead letter")
    assert {r["requeuedAt"] is None for r in records} == {True, False}


def test_publish_all_reports_each_outcome(publisher: AmqpPublisher, http: HttpClient) -> None:
    bad = quick_job("pyc-all-bad")
    bad["driver"] = {"nodeType": "huge"}
    results = publisher.publish_all(
        [quick_job("pyc-all-ok"), bad, quick_job("pyc-all-nowhere", namespace="team-zz")],
        timeout=30,
    )
    ok, refused, nowhere = results
    assert isinstance(ok, Published) and ok.verdict is not None and ok.verdict.accepted
    assert type(refused) is InvalidJob and "unknown-node-type" in codes(refused)
    assert isinstance(nowhere, UnknownNamespace)
    assert http.job(ok.job_id)["name"] == "pyc-all-ok"


def test_an_unreachable_broker_is_a_connection_error() -> None:
    with AmqpPublisher("amqp://guest:guest@127.0.0.1:1/%2F", timeout=5) as publisher:
        with pytest.raises(ConnectionFailed):
            publisher.publish(quick_job("pyc-nobroker"))


def test_jobs_that_cannot_be_routed_are_refused_before_sending(publisher: AmqpPublisher) -> None:
    with pytest.raises(ValueError):
        publisher.publish({"name": "no-namespace"})
    with pytest.raises(TypeError):
        publisher.publish(["not", "a", "job"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        publisher.publish(quick_job("pyc-long", namespace="n" * 300))


def test_a_full_queue_nacks_the_publish(stack: Stack) -> None:
    """A queue that refuses messages (``x-overflow reject-publish``, as the daemon's intake
    queues at their length limit) makes the broker nack: ``Nacked``, nothing enqueued."""
    bare = unique("p")
    connection = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
    try:
        channel = connection.channel()
        channel.exchange_declare(f"{bare}.jobs", "topic")
        channel.queue_declare(f"{bare}.full", arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        channel.queue_bind(f"{bare}.full", f"{bare}.jobs", "team-a.normal")
        with stack.publisher(prefix=bare) as publisher:
            with pytest.raises(Nacked):
                publisher.publish(quick_job("pyc-full"))
        assert channel.queue_declare(f"{bare}.full", passive=True).method.message_count == 0
    finally:
        connection.close()
        delete_topology([f"{bare}.full"], [f"{bare}.jobs"])


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe", b"not json", b"[1, 2]", b'{"accepted": "yes", "reason": 5}', b"{}" * 100_000],
)
def test_a_malformed_verdict_is_a_refusal_not_a_crash(stack: Stack, body: bytes) -> None:
    """Whatever arrives on the reply queue under a correlation id, the wait ends with a verdict
    that is not an acceptance."""
    with stack.publisher() as publisher:
        publisher._ensure_channel(want_replies=True)
        queue = publisher._reply_queue
        assert queue is not None
        other = pika.BlockingConnection(pika.URLParameters(stack.amqp_url))
        try:
            props = pika.BasicProperties(correlation_id="c-1")
            other.channel().basic_publish("", queue, body, props)
            other.channel().basic_publish("", queue, b'{"accepted": true}', pika.BasicProperties())  # no id: ignored
        finally:
            other.close()
        verdict = publisher._await_verdict("c-1", "job", time.monotonic() + 20)
        assert not verdict.accepted
        # The publisher still works afterwards.
        sent = publisher.publish(quick_job("pyc-after-garbage"), wait_verdict=True)
        assert sent.verdict is not None and sent.verdict.accepted
