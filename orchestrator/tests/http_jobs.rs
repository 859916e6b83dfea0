//! `/v1/jobs` over real HTTP on a fresh database: submit (valid, invalid, duplicate, too
//! large, not JSON, hostile), list with filters and pagination, show, cancel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::collections::HashSet;

use jobs::{JobId, JobState};
use queues::store::{Note, Target};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, READ_A, READ_AB, SUBMIT_A, SUBMIT_B, TestApi, job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_job_is_accepted_stored_and_shown_with_history_and_position() {
    let api = TestApi::start().await;
    let first = api
        .post("/v1/jobs", SUBMIT_A, &job("team-a", "first"))
        .await;
    assert_eq!(first.status, 202, "{}", first.text);
    let id = first.body["id"].as_str().unwrap().to_owned();
    assert_eq!(first.body["state"], "queued");
    assert_eq!(first.body["duplicate"], false);
    assert_eq!(first.headers["location"], format!("/v1/jobs/{id}").as_str());
    let second = api
        .post("/v1/jobs", SUBMIT_A, &job("team-a", "second"))
        .await;
    assert_eq!(second.status, 202);

    let stored = api.store.job(id.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.source, "http");
    assert_eq!(stored.job.name, "first");

    let shown = api
        .get(
            &format!("/v1/jobs/{}", second.body["id"].as_str().unwrap()),
            READ_A,
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    let v = &shown.body;
    assert_eq!(v["state"], "queued");
    assert_eq!(
        v["queuePosition"], 2,
        "second in the team-a normal queue: {v}"
    );
    assert_eq!(v["attempt"], 1);
    assert_eq!(v["source"], "http");
    assert_eq!(v["job"]["executor"]["instances"], 2);
    let history = v["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["to"], "queued");
    assert_eq!(history[0]["reason"], "accepted");
    assert_eq!(v["estimatedStartAt"], Value::Null, "no replay ran yet");

    // What the leader's replay wrote is shown on the job and at the head of its queue.
    let second_id: JobId = second.body["id"].as_str().unwrap().parse().unwrap();
    let at = chrono::DateTime::<chrono::Utc>::from_timestamp(1_900_000_000, 0).unwrap();
    api.store
        .set_estimates(&[(second_id, Some(at))])
        .await
        .unwrap();
    let shown = api.get(&format!("/v1/jobs/{second_id}"), READ_A).await;
    assert_eq!(shown.body["estimatedStartAt"], "2030-03-17T17:46:40Z");
    let queues = api.get("/v1/queues?namespace=team-a", READ_A).await;
    assert_eq!(queues.status, 200, "{}", queues.text);
    let head = queues.body["queues"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|q| q["heads"].as_array().unwrap())
        .find(|h| h["id"] == second_id.to_string())
        .unwrap()
        .clone();
    assert_eq!(head["estimatedStartAt"], "2030-03-17T17:46:40Z");
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_job_is_refused_with_every_problem_and_nothing_is_stored() {
    let api = TestApi::start().await;
    let mut bad = job("team-a", "Not_A_Name");
    bad["executor"] = json!({ "nodeType": "gigantic", "instances": 2 });
    bad["colour"] = json!("blue");
    let answer = api.post("/v1/jobs", SUBMIT_A, &bad).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(answer.body["error"], "invalid-job");
    let problems = answer.body["problems"].as_array().unwrap();
    let found: HashSet<(String, String)> = problems
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("invalid-name", "$.name"),
        ("unknown-node-type", "$.executor.nodeType"),
        ("unknown-field", "$.colour"),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {problems:?}"
        );
    }
    assert!(
        problems
            .iter()
            .all(|p| p["message"].as_str().is_some_and(|m| !m.is_empty()))
    );
    let unknown_ns = api.post("/v1/jobs", ADMIN, &job("team-zz", "x")).await;
    // It conforms to the job schema; the config refuses it.
    assert_eq!(unknown_ns.status, 422, "{}", unknown_ns.text);
    assert_eq!(unknown_ns.body["problems"][0]["code"], "unknown-namespace");
    let listed = api.get("/v1/jobs", ADMIN).await;
    assert_eq!(listed.body["items"], json!([]), "nothing stored");
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_json_errors_with_the_right_status() {
    let api = TestApi::start().await;
    let post = |ct: &'static str, body: Vec<u8>| {
        let api = &api;
        async move {
            api.request(Method::POST, "/v1/jobs", Some(SUBMIT_A), Some((ct, body)))
                .await
        }
    };
    let malformed = post("application/json", b"{\"name\": ".to_vec()).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(malformed.body["problems"][0]["code"], "malformed-json");

    let duplicate_keys = post("application/json", br#"{"name":"a","name":"b"}"#.to_vec()).await;
    assert_eq!(duplicate_keys.status, 400);
    assert_eq!(duplicate_keys.body["problems"][0]["code"], "duplicate-key");

    let not_object = post("application/json", b"[1,2,3]".to_vec()).await;
    assert_eq!(not_object.status, 400);

    let latin1 = post("application/json", b"{\"name\": \"caf\xe9\"}".to_vec()).await;
    assert_eq!(latin1.status, 400);
    assert_eq!(latin1.body["problems"][0]["code"], "not-utf8");

    let empty = post("application/json", Vec::new()).await;
    assert_eq!(empty.status, 400);

    let text = post(
        "text/plain",
        serde_json::to_vec(&job("team-a", "x")).unwrap(),
    )
    .await;
    assert_eq!(text.status, 415, "{}", text.text);
    assert_eq!(text.body["error"], "unsupported-media-type");
    let none = api
        .request(Method::POST, "/v1/jobs", Some(SUBMIT_A), None)
        .await;
    assert_eq!(none.status, 415);

    let suffix = post(
        "application/vnd.orchestrator+json; charset=utf-8",
        serde_json::to_vec(&job("team-a", "suffixed")).unwrap(),
    )
    .await;
    assert_eq!(suffix.status, 202, "+json is JSON: {}", suffix.text);

    let limit = api.options().max_body_bytes;
    let mut huge = job("team-a", "huge");
    huge["arguments"] = json!(["x".repeat(limit)]);
    let too_large = post("application/json", serde_json::to_vec(&huge).unwrap()).await;
    assert_eq!(too_large.status, 413, "{}", too_large.text);
    assert_eq!(too_large.body["error"], "payload-too-large");
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strings_are_refused_or_stored_verbatim_never_crash() {
    let api = TestApi::start().await;
    let hostile = [
        "\u{0}",
        "'; DROP TABLE jobs; --",
        "\u{1b}[2J\u{1b}[H",
        "\u{202e}evil",
        "😀".repeat(1000).as_str(),
        "../../etc/passwd",
        "%00%0d%0a",
    ]
    .map(str::to_owned);
    for s in &hostile {
        let mut j = job("team-a", "hostile");
        j["name"] = json!(s);
        let a = api.post("/v1/jobs", SUBMIT_A, &j).await;
        assert_eq!(a.status, 400, "name {s:?}: {}", a.text);
        let mut j = job("team-a", "hostile-arg");
        j["arguments"] = json!([s]);
        j["tags"] = json!({ "team": s });
        let a = api.post("/v1/jobs", SUBMIT_A, &j).await;
        assert!(
            a.status == 202 || a.status == 400,
            "{s:?}: {} {}",
            a.status,
            a.text
        );
        if a.status == 202 {
            let shown = api
                .get(
                    &format!("/v1/jobs/{}", a.body["id"].as_str().unwrap()),
                    READ_A,
                )
                .await;
            assert_eq!(
                shown.body["job"]["arguments"][0],
                json!(s),
                "stored verbatim"
            );
        } else {
            assert!(!a.body["problems"].as_array().unwrap().is_empty());
        }
    }
    // Hostile path and query values.
    for path in [
        "/v1/jobs/'%20OR%201=1",
        "/v1/jobs/%00",
        "/v1/jobs?state=%00",
        "/v1/jobs?namespace=%27%3B%20DROP",
        "/v1/jobs?cursor=not-a-cursor",
    ] {
        let a = api.get(path, ADMIN).await;
        assert_eq!(a.status, 400, "{path}: {}", a.text);
        assert!(
            a.body["error"].is_string() && a.body["message"].is_string(),
            "{path}: {}",
            a.text
        );
    }
    let health = api.get("/healthz", ADMIN).await;
    assert_eq!(health.status, 200);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_twice_is_idempotent_and_a_different_job_under_it_conflicts() {
    let api = TestApi::start().await;
    let id = JobId::generate().to_string();
    let mut j = job("team-a", "once");
    j["id"] = json!(id);
    let first = api.post("/v1/jobs", SUBMIT_A, &j).await;
    assert_eq!(first.status, 202);
    let again = api.post("/v1/jobs", SUBMIT_A, &j).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(again.body["id"], json!(id));
    j["arguments"] = json!(["other"]);
    let different = api.post("/v1/jobs", SUBMIT_A, &j).await;
    assert_eq!(different.status, 409, "{}", different.text);
    assert_eq!(different.body["error"], "conflict");
    let listed = api.get("/v1/jobs", ADMIN).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "one job stored"
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_and_walks_every_page_without_duplicates_or_misses() {
    let api = TestApi::start().await;
    let mut expected: HashSet<String> = HashSet::new();
    let mut team_b = HashSet::new();
    for i in 0..23 {
        let (ns, token) = if i % 3 == 0 {
            ("team-b", SUBMIT_B)
        } else {
            ("team-a", SUBMIT_A)
        };
        let mut j = job(ns, &format!("job-{i}"));
        if i % 4 == 0 {
            j["priority"] = json!("high");
        }
        let a = api.post("/v1/jobs", token, &j).await;
        assert_eq!(a.status, 202);
        let id = a.body["id"].as_str().unwrap().to_owned();
        if ns == "team-b" {
            team_b.insert(id.clone());
        }
        expected.insert(id);
    }
    // An admin sees all; a reader of both namespaces walks merged pages.
    for (token, limit) in [(ADMIN, 5), (READ_AB, 4), (READ_AB, 1000)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                None => format!("/v1/jobs?limit={limit}"),
                Some(c) => format!("/v1/jobs?limit={limit}&cursor={c}"),
            };
            let page = api.get(&path, token).await;
            assert_eq!(page.status, 200, "{}", page.text);
            let items = page.body["items"].as_array().unwrap();
            assert!(items.len() <= limit);
            seen.extend(items.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
            pages += 1;
            match page.body["next"].as_str() {
                Some(n) => cursor = Some(n.to_owned()),
                None => break,
            }
            assert!(pages < 100);
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates ({token}, {limit})");
        assert_eq!(unique, expected, "no misses ({token}, {limit})");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.reverse();
        assert_eq!(seen, sorted, "newest first");
    }
    // A team-a reader sees only team-a, unasked.
    let a_only = api.get("/v1/jobs?limit=1000", READ_A).await;
    let ids: HashSet<String> = a_only.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, expected.difference(&team_b).cloned().collect());
    // Filters.
    let b = api.get("/v1/jobs?namespace=team-b&limit=1000", ADMIN).await;
    let ids: HashSet<String> = b.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, team_b);
    let high = api.get("/v1/jobs?priority=high&limit=1000", ADMIN).await;
    assert_eq!(high.body["items"].as_array().unwrap().len(), 6);
    assert!(
        high.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["priority"] == "high")
    );
    let queued = api
        .get("/v1/jobs?state=queued&namespace=team-a", READ_A)
        .await;
    assert_eq!(queued.status, 200);
    let running = api.get("/v1/jobs?state=running", ADMIN).await;
    assert_eq!(running.body["items"], json!([]));
    // Bad queries.
    for q in [
        "state=finished",
        "priority=urgent",
        "limit=0",
        "limit=1001",
        "limit=x",
        "colour=blue",
        "namespace=",
        "namespace=Team_A",
    ] {
        let a = api.get(&format!("/v1/jobs?{q}"), ADMIN).await;
        assert_eq!(a.status, 400, "{q}: {}", a.text);
    }
    // A well-formed namespace that is not served.
    let a = api.get("/v1/jobs?namespace=team-zz", ADMIN).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.body["error"], "unknown-namespace");
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_moves_unfinished_jobs_to_cancelled_and_refuses_finished_ones() {
    let api = TestApi::start().await;
    let queued = api
        .post("/v1/jobs", SUBMIT_A, &job("team-a", "to-cancel"))
        .await;
    let id = queued.body["id"].as_str().unwrap().to_owned();
    let cancelled = api
        .post_empty(&format!("/v1/jobs/{id}/cancel"), SUBMIT_A)
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.body["state"], "cancelled");
    assert_eq!(cancelled.body["previousState"], "queued");
    let shown = api.get(&format!("/v1/jobs/{id}"), READ_A).await;
    assert_eq!(shown.body["state"], "cancelled");
    assert_eq!(shown.body["queuePosition"], Value::Null);
    let last = shown.body["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["to"], "cancelled");
    assert!(
        last["message"].as_str().unwrap().contains("submitter-a"),
        "{last}"
    );
    let again = api
        .post_empty(&format!("/v1/jobs/{id}/cancel"), SUBMIT_A)
        .await;
    assert_eq!(again.status, 409, "{}", again.text);

    // A running job can be cancelled too (its application is then the tracker's to delete).
    let running = api
        .post("/v1/jobs", SUBMIT_A, &job("team-a", "running"))
        .await;
    let rid: JobId = running.body["id"].as_str().unwrap().parse().unwrap();
    let submission = queues::store::Submission {
        spark_app_name: format!("running-{}", rid.short()),
        attempt: 1,
        footprint: queues::store::FootprintRecord::default(),
    };
    api.store
        .transition(
            rid,
            JobState::Queued,
            Target::Submitted(submission),
            Note::new("test", "submitted"),
        )
        .await
        .unwrap();
    api.store
        .transition(
            rid,
            JobState::Submitted,
            Target::Running,
            Note::new("test", "running"),
        )
        .await
        .unwrap();
    let c = api
        .post_empty(&format!("/v1/jobs/{rid}/cancel"), SUBMIT_A)
        .await;
    assert_eq!(c.status, 200, "{}", c.text);
    assert_eq!(c.body["previousState"], "running");

    let missing = api
        .post_empty(&format!("/v1/jobs/{}/cancel", JobId::generate()), SUBMIT_A)
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["error"], "not-found");
    let bad_id = api.post_empty("/v1/jobs/not-a-uuid/cancel", SUBMIT_A).await;
    assert_eq!(bad_id.status, 400);
    assert_eq!(bad_id.body["error"], "invalid-path");
    let unknown = api
        .get(&format!("/v1/jobs/{}", JobId::generate()), ADMIN)
        .await;
    assert_eq!(unknown.status, 404);
    api.finish().await;
}
