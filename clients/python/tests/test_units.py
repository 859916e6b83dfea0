"""Pure parts of the client: error mapping, verdict parsing, ids, message preparation."""

from __future__ import annotations

import json
import uuid

import pytest

from spark_orchestrator import errors as e
from spark_orchestrator.amqp import _body_id, _prepare
from spark_orchestrator.models import Verdict, new_job_id


def api_body(code: str, problems: list[dict[str, str]] | None = None) -> bytes:
    doc: dict[str, object] = {"error": code, "message": f"{code} happened"}
    if problems is not None:
        doc["problems"] = problems
    return json.dumps(doc).encode()


UNKNOWN_NS = {"code": "unknown-namespace", "path": "$.namespace", "message": "not served"}
TOO_LARGE = {"code": "too-large", "path": "$", "message": "too big"}
BAD_NAME = {"code": "invalid-name", "path": "$.name", "message": "bad"}


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (400, api_body("invalid-job", [BAD_NAME]), e.InvalidJob, "invalid-job"),
        (400, api_body("invalid-job", [BAD_NAME, UNKNOWN_NS]), e.UnknownNamespace, "invalid-job"),
        (413, api_body("invalid-job", [TOO_LARGE]), e.PayloadTooLarge, "invalid-job"),
        (413, api_body("payload-too-large"), e.PayloadTooLarge, "payload-too-large"),
        (422, api_body("invalid-job", [UNKNOWN_NS]), e.UnknownNamespace, "invalid-job"),
        (422, api_body("invalid-job", [BAD_NAME]), e.InvalidJob, "invalid-job"),
        (400, api_body("invalid-query"), e.BadRequest, "invalid-query"),
        (422, api_body("unknown-namespace"), e.Unprocessable, "unknown-namespace"),
        (422, api_body("invalid-schedule"), e.Unprocessable, "invalid-schedule"),
        (401, api_body("unauthenticated"), e.Unauthorized, "unauthenticated"),
        (403, api_body("forbidden"), e.Forbidden, "forbidden"),
        (404, api_body("not-found"), e.NotFound, "not-found"),
        (409, api_body("conflict"), e.Conflict, "conflict"),
        (415, api_body("unsupported-media-type"), e.UnsupportedMediaType, "unsupported-media-type"),
        (500, api_body("internal"), e.ServerError, "internal"),
        (503, api_body("unavailable"), e.Unavailable, "unavailable"),
        (502, b"<html>Bad Gateway</html>", e.ServerError, "http-502"),
        (404, b"\xff\xfe not utf-8", e.NotFound, "http-404"),
        (400, b"[1, 2, 3]", e.BadRequest, "http-400"),
        (400, b'{"error": 7}', e.BadRequest, "http-400"),
        (302, b"", e.ServerError, "http-302"),
        (418, api_body("teapot"), e.OrchestratorError, "teapot"),
    ],
)
def test_error_from_response(status: int, body: bytes, cls: type, code: str) -> None:
    error = e.error_from_response(status, body)
    assert type(error) is cls
    assert error.status == status and error.error == code
    assert error.message


def test_problems_are_read_leniently() -> None:
    body = json.dumps(
        {"error": "invalid-job", "message": "m", "problems": [BAD_NAME, "just text", 5, {"code": 1}]}
    ).encode()
    error = e.error_from_response(400, body)
    assert [p.code for p in error.problems] == ["invalid-name", "", "", "1"]
    assert "invalid-name at $.name: bad" in str(error)
    assert e.error_from_response(400, json.dumps({"error": "x", "problems": {"no": "list"}}).encode()).problems == []


@pytest.mark.parametrize(
    ("doc", "cls"),
    [
        ({"jobId": "j", "accepted": False, "reason": "invalid", "problems": [BAD_NAME]}, e.InvalidJob),
        ({"jobId": "j", "accepted": False, "reason": "unknown-namespace", "problems": []}, e.UnknownNamespace),
        ({"jobId": "j", "accepted": False, "reason": "invalid", "problems": [UNKNOWN_NS]}, e.UnknownNamespace),
        ({"jobId": None, "accepted": False, "reason": "invalid", "problems": [TOO_LARGE]}, e.PayloadTooLarge),
    ],
)
def test_refused_verdicts(doc: dict, cls: type) -> None:
    verdict = Verdict.from_json(doc)
    assert not verdict.accepted
    error = e.error_from_verdict(verdict)
    assert type(error) is cls and error.verdict is verdict and error.error == doc["reason"]


def test_verdict_parsing_is_strict_about_acceptance() -> None:
    assert Verdict.from_json({"accepted": True, "reason": "accepted", "jobId": "a"}).accepted
    assert not Verdict.from_json({"accepted": "yes"}).accepted
    assert Verdict.from_json({}).job_id is None


def test_new_job_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_job_id() for _ in range(200)]
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(ids)) == len(ids)
    stamps = [u.int >> 80 for u in parsed]
    assert stamps == sorted(stamps)


def test_prepare_gives_the_job_an_id_and_routes_it() -> None:
    body, job_id, ns, prio = _prepare({"name": "a", "namespace": "team-a"}, None, None)
    doc = json.loads(body)
    assert doc["id"] == job_id and (ns, prio) == ("team-a", "normal")
    assert uuid.UUID(job_id).version == 7
    body, job_id, ns, prio = _prepare({"id": "given", "namespace": "team-a", "priority": "high"}, None, None)
    assert (job_id, ns, prio) == ("given", "team-a", "high")
    assert json.loads(body)["id"] == "given"
    _, _, ns, prio = _prepare({"namespace": "team-a"}, "team-b", "high")
    assert (ns, prio) == ("team-b", "high")
    original = {"namespace": "team-a"}
    _prepare(original, None, None)
    assert original == {"namespace": "team-a"}, "the caller's job is not modified"
    for bad in [{"name": "x"}, {"namespace": 3}, {"namespace": "a", "priority": None}]:
        with pytest.raises(ValueError):
            _prepare(bad, None, None)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"id": "abc"}', "abc"),
        (b'{"id": 5}', None),
        (b'{"id": ""}', None),
        (b"[1]", None),
        (b"\xff", None),
        (b"[" * 100_000, None),
    ],
)
def test_body_id(body: bytes, expected: str | None) -> None:
    assert _body_id(body) == expected


def test_the_callers_connection_parameters_are_not_changed() -> None:
    import pika

    from spark_orchestrator import AmqpPublisher

    params = pika.ConnectionParameters(host="127.0.0.1", socket_timeout=99)
    publisher = AmqpPublisher(params, "p", timeout=3)
    assert params.socket_timeout == 99 and params.blocked_connection_timeout is None
    assert publisher._params.socket_timeout == 3 and publisher._params.host == "127.0.0.1"
    with pytest.raises(ValueError):
        AmqpPublisher(params, "")
    with pytest.raises(ValueError):
        AmqpPublisher(params, "p", timeout=0)
