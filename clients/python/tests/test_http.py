"""The HTTP API through the client, against the real daemon."""

from __future__ import annotations

import copy
import json

import pytest

from conftest import ROOT, TEAM_A_TOKEN, Stack, quick_job
from spark_orchestrator import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    HttpClient,
    InvalidJob,
    NotFound,
    PayloadTooLarge,
    Timeout,
    Unauthorized,
    UnknownNamespace,
    Unprocessable,
    new_job_id,
)


def test_submit_over_http_and_wait_for_success(http: HttpClient) -> None:
    submitted = http.submit(quick_job("pyc-http-ok"))
    assert submitted.state == "queued" and not submitted.duplicate
    assert (submitted.name, submitted.namespace, submitted.priority) == ("pyc-http-ok", "team-a", "normal")
    done = http.wait(submitted.id, timeout=90)
    assert done["state"] == "succeeded" and done["source"] == "http"
    # The listing pages through with the cursor and finds it.
    seen = [j["id"] for j in http.iter_jobs(namespace="team-a", limit=2)]
    assert submitted.id in seen and len(seen) == len(set(seen))
    assert any(j["id"] == submitted.id for j in http.iter_jobs(state="succeeded", limit=50))


def test_a_file_is_submitted_as_it_is(http: HttpClient) -> None:
    text = (ROOT / "examples/jobs/spark-pi.json").read_text().replace('"spark-pi"', '"pyc-http-file"')
    submitted = http.submit(text.encode())
    assert http.job(submitted.id)["name"] == "pyc-http-file"


def test_the_same_id_again_is_the_same_job_and_other_content_conflicts(http: HttpClient) -> None:
    job = quick_job("pyc-http-dup", id=new_job_id())
    first = http.submit(job)
    again = http.submit(job)
    assert (first.id, again.id) == (job["id"], job["id"])
    assert not first.duplicate and again.duplicate
    other = copy.deepcopy(job)
    other["arguments"] = ["7"]
    with pytest.raises(Conflict) as caught:
        http.submit(other)
    assert caught.value.status == 409 and job["id"] in caught.value.message


def test_an_invalid_job_carries_every_problem(http: HttpClient) -> None:
    many = json.loads((ROOT / "examples/invalid/many-mistakes.json").read_text())
    with pytest.raises(InvalidJob) as caught:
        http.submit(many)
    error = caught.value
    # team-z is not served: the most specific class, as the daemon's own dead-letter rule.
    assert isinstance(error, UnknownNamespace)
    assert (error.status, error.error) == (400, "invalid-job")
    found = {p.code for p in error.problems}
    assert {"unknown-field", "invalid-name", "unknown-namespace", "unknown-node-type", "reserved-key"} <= found
    assert all(p.path.startswith("$") and p.message for p in error.problems)
    assert "invalid-name" in str(error)


def test_a_well_formed_job_the_config_refuses_is_422(http: HttpClient) -> None:
    # It conforms to the job schema (GET /v1/schema/job); the daemon does not serve team-z.
    with pytest.raises(UnknownNamespace) as caught:
        http.submit(quick_job("pyc-elsewhere", namespace="team-z"))
    assert (caught.value.status, caught.value.error) == (422, "invalid-job")
    with pytest.raises(Unprocessable) as query:
        http.jobs(namespace="team-z")
    assert (query.value.status, query.value.error) == (422, "unknown-namespace")


def test_not_json_and_oversized_bodies(http: HttpClient) -> None:
    with pytest.raises(InvalidJob) as not_json:
        http.submit((ROOT / "examples/invalid/not-json.txt").read_bytes())
    assert "malformed-json" in {p.code for p in not_json.value.problems}
    with pytest.raises(PayloadTooLarge) as large:
        http.submit(b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert large.value.status == 413


def test_tokens_are_checked(stack: Stack) -> None:
    for token in ["wrong-token", None, "x" * 10_000]:
        with pytest.raises(Unauthorized) as caught:
            stack.http(token).jobs()
        assert caught.value.status == 401
    team_a = stack.http(TEAM_A_TOKEN)
    with pytest.raises(Forbidden):
        team_a.submit(quick_job("pyc-http-b", namespace="team-b"))
    with pytest.raises(Forbidden):
        team_a.requeue(all=True)  # needs the admin role
    assert all(j["namespace"] == "team-a" for j in team_a.jobs(limit=50).items)


def test_cancel_a_running_job(http: HttpClient) -> None:
    submitted = http.submit(quick_job("pyc-http-cancel", runtime="1h"))
    http.wait(submitted.id, ["running"], timeout=60)
    answer = http.cancel(submitted.id)
    assert answer["state"] == "cancelled" and answer["previousState"] == "running"
    assert http.job(submitted.id)["state"] == "cancelled"
    with pytest.raises(Conflict):
        http.cancel(submitted.id)


def test_missing_and_malformed_ids(http: HttpClient) -> None:
    with pytest.raises(NotFound):
        http.job(new_job_id())
    with pytest.raises(NotFound):
        http.cancel(new_job_id())
    with pytest.raises(NotFound):
        http.dead_letter(2**62)
    # Path segments are escaped: "../metrics" stays an (invalid) id, it never reaches /metrics.
    with pytest.raises(BadRequest) as caught:
        http.job("../../metrics")
    assert caught.value.status == 400
    with pytest.raises(BadRequest):
        http.jobs(state="nonsense")
    with pytest.raises(ValueError):
        http.requeue()  # no selector
    with pytest.raises(ValueError):
        http.purge(id=1, all=True)  # two selectors


def test_wait_gives_up_with_the_last_state(http: HttpClient) -> None:
    submitted = http.submit(quick_job("pyc-http-slow", runtime="1h"))
    try:
        with pytest.raises(Timeout) as caught:
            http.wait(submitted.id, ["succeeded"], timeout=0.5)
        assert submitted.id in caught.value.message and "last seen" in caught.value.message
    finally:
        http.cancel(submitted.id)
    with pytest.raises(NotFound):
        http.wait(new_job_id(), timeout=1)
    with pytest.raises(Timeout):
        http.wait(new_job_id(), timeout=0.3, missing_ok=True)
    with pytest.raises(ValueError):
        http.wait(submitted.id, ["finished"])


def test_queues_and_dead_letter_listing(stack: Stack, http: HttpClient) -> None:
    queues = http.queues(heads=2)["queues"]
    assert {(q["namespace"], q["priority"]) for q in queues} == {
        (ns, p) for ns in stack.namespaces for p in ("high", "normal")
    }
    page = http.dead_letters(limit=1)
    assert len(page.items) <= 1
    with pytest.raises(BadRequest):
        http.dead_letters(limit=0)


def test_an_unreachable_api_is_a_connection_error() -> None:
    with pytest.raises(ConnectionFailed):
        HttpClient("http://127.0.0.1:1", "t", timeout=5).jobs()
    with pytest.raises(ValueError):
        HttpClient("ftp://example", "t")
