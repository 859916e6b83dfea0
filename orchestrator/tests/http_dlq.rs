//! `/v1/dlq`: listing with filters and pagination, inspecting, requeueing (a job keeps its id
//! and history; an invalid message is re-published), purging, and bad selectors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::collections::HashSet;

use jobs::{DeadReason, JobId, JobState, Problem, ProblemCode};
use queues::store::{IntakeItem, NewDeadLetter};
use serde_json::{Value, json};
use support::{ADMIN, ADMIN_A, READ_A, SUBMIT_A, SUBMIT_B, TestApi, job};

/// A job accepted through the API, then dead-lettered with `reason`.
async fn dead_job(api: &TestApi, namespace: &str, name: &str, reason: DeadReason) -> JobId {
    let token = if namespace == "team-a" {
        SUBMIT_A
    } else {
        SUBMIT_B
    };
    let a = api.post("/v1/jobs", token, &job(namespace, name)).await;
    let id: JobId = a.body["id"].as_str().unwrap().parse().unwrap();
    api.store
        .dead_letter(id, JobState::Queued, reason, "given up in a test")
        .await
        .unwrap();
    id
}

/// An invalid message that never became a job.
async fn dead_message(api: &TestApi, namespace: &str, body: &[u8]) {
    let item = NewDeadLetter {
        reason: DeadReason::Invalid,
        message: "the message is not valid JSON".into(),
        problems: vec![Problem {
            code: ProblemCode::MalformedJson,
            path: "$".into(),
            message: "expected value".into(),
        }],
        claimed_id: None,
        namespace: Some(namespace.into()),
        priority: Some("normal".into()),
        body: body.to_vec(),
        body_bytes: body.len() as u64,
        truncated: false,
        message_id: None,
        routing_key: Some(format!("{namespace}.normal")),
        content_type: Some("application/json".into()),
        dedup_key: None,
        redelivered: false,
        dead_queue: format!("x.{namespace}.dead"),
        reply_to: None,
    };
    api.store
        .take_in(&[IntakeItem::Dead(Box::new(item))])
        .await
        .unwrap();
}

fn ids(v: &Value) -> Vec<i64> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_filters_pages_and_scopes_dead_letters() {
    let api = TestApi::start().await;
    for i in 0..5 {
        dead_job(&api, "team-a", &format!("a{i}"), DeadReason::NeverFits).await;
        dead_job(&api, "team-b", &format!("b{i}"), DeadReason::Expired).await;
    }
    dead_message(&api, "team-a", b"{not json").await;
    dead_message(&api, "team-zz", b"{\"namespace\": \"team-zz\"}").await;

    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let path = match &cursor {
            None => "/v1/dlq?limit=3".to_owned(),
            Some(c) => format!("/v1/dlq?limit=3&cursor={c}"),
        };
        let page = api.get(&path, ADMIN).await;
        assert_eq!(page.status, 200, "{}", page.text);
        seen.extend(ids(&page.body));
        match page.body["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        12,
        "no duplicates"
    );
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "oldest first");

    let b = api
        .get("/v1/dlq?namespace=team-b&reason=expired", ADMIN)
        .await;
    assert_eq!(ids(&b.body).len(), 5);
    let none = api
        .get("/v1/dlq?namespace=team-b&reason=never-fits", ADMIN)
        .await;
    assert_eq!(ids(&none.body).len(), 0);
    // A team-a reader sees team-a's 6 records, across pages of 4.
    let p1 = api.get("/v1/dlq?limit=4", READ_A).await;
    assert_eq!(ids(&p1.body).len(), 4);
    let next = p1.body["next"].as_str().unwrap();
    let p2 = api
        .get(&format!("/v1/dlq?limit=4&cursor={next}"), READ_A)
        .await;
    assert_eq!(ids(&p2.body).len(), 2);
    assert_eq!(p2.body["next"], Value::Null);
    assert!(
        p1.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .chain(p2.body["items"].as_array().unwrap())
            .all(|d| d["namespace"] == "team-a")
    );
    // Unserved namespaces can be asked for (unknown-namespace dead letters live there).
    let zz = api.get("/v1/dlq?namespace=team-zz", ADMIN).await;
    assert_eq!(ids(&zz.body).len(), 1);
    for q in [
        "reason=bored",
        "cursor=abc",
        "limit=0",
        "includeRequeued=maybe",
        "extra=1",
    ] {
        assert_eq!(
            api.get(&format!("/v1/dlq?{q}"), ADMIN).await.status,
            400,
            "{q}"
        );
    }
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_shows_its_body_and_problems() {
    let api = TestApi::start().await;
    dead_message(&api, "team-a", b"{not json").await;
    let id = ids(&api.get("/v1/dlq", ADMIN).await.body)[0];
    let shown = api.get(&format!("/v1/dlq/{id}"), READ_A).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["body"], "{not json");
    assert_eq!(shown.body["reason"], "invalid");
    assert_eq!(shown.body["problems"][0]["code"], "malformed-json");
    dead_message(&api, "team-b", b"\xff\xfe").await;
    let b = ids(&api.get("/v1/dlq?namespace=team-b", ADMIN).await.body)[0];
    assert_eq!(api.get(&format!("/v1/dlq/{b}"), READ_A).await.status, 403);
    assert_eq!(
        api.get(&format!("/v1/dlq/{b}"), ADMIN).await.body["body"],
        Value::Null,
        "not UTF-8"
    );
    assert_eq!(api.get("/v1/dlq/999999", ADMIN).await.status, 404);
    assert_eq!(api.get("/v1/dlq/abc", ADMIN).await.status, 400);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requeue_puts_jobs_back_with_their_id_and_history_and_republishes_messages() {
    let api = TestApi::start().await;
    let one = dead_job(&api, "team-a", "one", DeadReason::NeverFits).await;
    let mut expired = Vec::new();
    for i in 0..3 {
        expired.push(dead_job(&api, "team-a", &format!("late{i}"), DeadReason::Expired).await);
    }
    let other = dead_job(&api, "team-b", "other", DeadReason::Expired).await;
    dead_message(&api, "team-a", b"{\"name\": \"fixed-later\"}").await;

    let record = api.get("/v1/dlq?reason=never-fits", ADMIN).await.body["items"][0]["id"]
        .as_i64()
        .unwrap();
    let r = api
        .post("/v1/dlq/requeue", ADMIN, &json!({"id": record}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"jobs": 1, "messages": 0, "skipped": 0}));
    let shown = api.get(&format!("/v1/jobs/{one}"), ADMIN).await;
    assert_eq!(shown.body["state"], "queued");
    assert_eq!(shown.body["id"], json!(one.to_string()), "same id");
    let history: Vec<&str> = shown.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["queued", "dead", "queued"], "history kept");
    // Requeued records leave the default listing, stay with includeRequeued.
    assert_eq!(
        ids(&api.get("/v1/dlq?reason=never-fits", ADMIN).await.body).len(),
        0
    );
    let kept = api
        .get("/v1/dlq?reason=never-fits&includeRequeued=true", ADMIN)
        .await;
    assert!(kept.body["items"][0]["requeuedAt"].is_string());
    // Again: nothing to do.
    let again = api
        .post("/v1/dlq/requeue", ADMIN, &json!({"id": record}))
        .await;
    assert_eq!(again.body["jobs"], 0);

    // By filter, with a fresh retry budget.
    let r = api
        .post(
            "/v1/dlq/requeue",
            ADMIN,
            &json!({"namespace": "team-a", "reason": "expired", "resetAttempts": true}),
        )
        .await;
    assert_eq!(r.body["jobs"], 3, "{}", r.text);
    for id in &expired {
        assert_eq!(
            api.store.job(*id).await.unwrap().unwrap().state,
            JobState::Queued
        );
    }
    assert_eq!(
        api.store.job(other).await.unwrap().unwrap().state,
        JobState::Dead,
        "team-b untouched"
    );
    // A team-a admin requeueing "all" reaches team-a only: the invalid message.
    let r = api
        .post("/v1/dlq/requeue", ADMIN_A, &json!({"all": true}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["messages"], 1);
    assert_eq!(r.body["jobs"], 0);
    assert_eq!(
        api.store.job(other).await.unwrap().unwrap().state,
        JobState::Dead
    );
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'job'")
        .fetch_one(api.store.pool())
        .await
        .unwrap();
    assert_eq!(outbox, 1, "the message is re-published through the outbox");
    // And the full admin gets the rest.
    let r = api
        .post("/v1/dlq/requeue", ADMIN, &json!({"all": true}))
        .await;
    assert_eq!(r.body["jobs"], 1);
    assert_eq!(
        api.store.job(other).await.unwrap().unwrap().state,
        JobState::Queued
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_deletes_the_selected_records_only() {
    let api = TestApi::start().await;
    for i in 0..3 {
        dead_job(&api, "team-a", &format!("a{i}"), DeadReason::NeverFits).await;
    }
    let keep = dead_job(&api, "team-b", "b", DeadReason::Expired).await;
    dead_message(&api, "team-a", b"{}").await;
    let r = api
        .post("/v1/dlq/purge", ADMIN, &json!({"reason": "never-fits"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"purged": 3}));
    let left = api.get("/v1/dlq", ADMIN).await;
    assert_eq!(ids(&left.body).len(), 2);
    let one = ids(&left.body)[0];
    assert_eq!(
        api.post("/v1/dlq/purge", ADMIN, &json!({"id": one}))
            .await
            .body["purged"],
        1
    );
    assert_eq!(
        api.post("/v1/dlq/purge", ADMIN, &json!({"id": one}))
            .await
            .status,
        404
    );
    assert_eq!(
        api.post("/v1/dlq/purge", ADMIN, &json!({"all": true}))
            .await
            .body["purged"],
        1
    );
    assert_eq!(ids(&api.get("/v1/dlq", ADMIN).await.body).len(), 0);
    assert_eq!(
        api.store.job(keep).await.unwrap().unwrap().state,
        JobState::Dead,
        "the job's history stays"
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_selectors_are_refused_with_json_errors() {
    let api = TestApi::start().await;
    for (body, code) in [
        (json!({}), "invalid-request"),
        (json!({"id": 1, "all": true}), "invalid-request"),
        (json!({"id": 1, "namespace": "team-a"}), "invalid-request"),
        (json!({"all": true, "reason": "expired"}), "invalid-request"),
        (json!({"reason": "bored"}), "invalid-request"),
        (json!({"id": "one"}), "invalid-request"),
        (json!({"all": true, "everything": true}), "invalid-request"),
    ] {
        let a = api.post("/v1/dlq/requeue", ADMIN, &body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert_eq!(a.body["error"], code, "{body}");
    }
    let unknown = api
        .post(
            "/v1/dlq/requeue",
            ADMIN,
            &json!({"all": true, "everything": true}),
        )
        .await;
    assert_eq!(unknown.body["problems"][0]["code"], "unknown-field");
    assert_eq!(unknown.body["problems"][0]["path"], "$.everything");
    let wrong = api
        .post("/v1/dlq/purge", ADMIN, &json!({"id": "one"}))
        .await;
    assert_eq!(wrong.body["problems"][0]["path"], "$.id");
    let missing = api
        .post("/v1/dlq/requeue", ADMIN, &json!({"id": 424242}))
        .await;
    assert_eq!(missing.status, 404);
    let malformed = api
        .request(
            reqwest::Method::POST,
            "/v1/dlq/purge",
            Some(ADMIN),
            Some(("application/json", b"{\"all\": tru".to_vec())),
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["problems"][0]["code"], "malformed-json");
    let trailing = api
        .request(
            reqwest::Method::POST,
            "/v1/dlq/purge",
            Some(ADMIN),
            Some(("application/json", b"{\"all\": true} {}".to_vec())),
        )
        .await;
    assert_eq!(trailing.status, 400, "{}", trailing.text);
    let form = api
        .request(
            reqwest::Method::POST,
            "/v1/dlq/purge",
            Some(ADMIN),
            Some(("application/x-www-form-urlencoded", b"all=true".to_vec())),
        )
        .await;
    assert_eq!(form.status, 415);
    api.finish().await;
}
