//! Health, readiness (including a failing component), metrics, the queues view, JSON answers
//! for unknown paths and methods, and the OpenAPI document held to the router's routes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use jobs::{DeadReason, JobId, JobState};
use orchestrator::http::{ApiOptions, Component, Readiness, StoreReadiness, routes};
use queues::store::WaitingMark;
use queues::{JobStore, Names};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, READ_A, SUBMIT_A, SUBMIT_B, TestApi, job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness_answer_and_readiness_names_a_failing_component() {
    let api = TestApi::start().await;
    let h = api.request(Method::GET, "/healthz", None, None).await;
    assert_eq!((h.status, h.body.clone()), (200, json!({"status": "ok"})));
    let r = api.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"ready": true, "components": {"database": {"ok": true}}})
    );
    api.finish().await;

    // The same probe over a database that does not exist: not ready, and it says why.
    let down = TestApi::start_with(|mut s| {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(std::time::Duration::from_secs(1))
            .connect_lazy("postgres://postgres@127.0.0.1:5432/orchhttp_no_such_database")
            .unwrap();
        let store = JobStore::new(
            pool,
            Names::new("x").unwrap(),
            Arc::new(queues::Metrics::default()),
        );
        s.readiness = Arc::new(StoreReadiness::new(store));
        s
    })
    .await;
    let r = down.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503, "{}", r.text);
    assert_eq!(r.body["ready"], false);
    assert_eq!(r.body["components"]["database"]["ok"], false);
    assert!(
        r.body["components"]["database"]["error"]
            .as_str()
            .unwrap()
            .contains("orchhttp_no_such_database"),
        "{}",
        r.text
    );
    assert_eq!(
        down.request(Method::GET, "/healthz", None, None)
            .await
            .status,
        200,
        "alive though not ready"
    );
    down.finish().await;

    // A schema without the migrations is not ready either.
    let stale = TestApi::start_with(|mut s| {
        struct Stale(JobStore);
        #[async_trait::async_trait]
        impl Readiness for Stale {
            async fn check(&self) -> Vec<Component> {
                let mut c = StoreReadiness::new(self.0.clone()).check().await;
                c.push(Component::new(
                    "kubernetes",
                    Err("connection refused".into()),
                ));
                c
            }
        }
        s.readiness = Arc::new(Stale(s.store.clone()));
        s
    })
    .await;
    let r = stale.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["components"]["database"]["ok"], true);
    assert_eq!(
        r.body["components"]["kubernetes"],
        json!({"ok": false, "error": "connection refused"})
    );
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(stale.store.pool())
    .await
    .unwrap();
    let r = stale.request(Method::GET, "/readyz", None, None).await;
    assert!(
        r.body["components"]["database"]["error"]
            .as_str()
            .unwrap()
            .contains("orchestrator migrate"),
        "{}",
        r.text
    );
    stale.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_render_the_registry_and_can_require_a_token() {
    let api = TestApi::start().await;
    let a = api
        .post("/v1/jobs", SUBMIT_A, &job("team-a", "doomed"))
        .await;
    let id: JobId = a.body["id"].as_str().unwrap().parse().unwrap();
    api.store
        .dead_letter(
            id,
            JobState::Queued,
            DeadReason::NeverFits,
            "no node can hold it",
        )
        .await
        .unwrap();
    let m = api.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(
        m.text.contains("# TYPE orchestrator_dead_letters counter"),
        "{}",
        m.text
    );
    let line = m
        .text
        .lines()
        .find(|l| {
            l.starts_with("orchestrator_dead_letters_total{")
                && l.contains("team-a")
                && l.contains("never-fits")
        })
        .unwrap_or_else(|| panic!("{}", m.text));
    assert!(line.ends_with(" 1"), "{line}");
    assert!(m.text.trim_end().ends_with("# EOF"));
    api.finish().await;

    let closed = TestApi::start_with(|s| {
        let mut o: ApiOptions = s.options.clone();
        o.metrics_require_auth = true;
        s.with_options(o)
    })
    .await;
    let m = closed.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(m.status, 401);
    assert_eq!(m.body["error"], "unauthenticated");
    assert_eq!(
        closed
            .request(Method::GET, "/metrics", Some(READ_A), None)
            .await
            .status,
        200
    );
    closed.finish().await;
}

/// The value of the exposition line that starts with `prefix` and contains every `part`.
fn sample(text: &str, prefix: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_counted_by_route_template_and_status_and_http_jobs_by_intake_outcome() {
    let api = TestApi::start().await;
    let body = job("team-a", "counted");
    let first = api.post("/v1/jobs", SUBMIT_A, &body).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let mut again = body.clone();
    again["id"] = first.body["id"].clone();
    assert_eq!(api.post("/v1/jobs", SUBMIT_A, &again).await.status, 200);
    again["arguments"] = json!(["2000"]);
    assert_eq!(api.post("/v1/jobs", SUBMIT_A, &again).await.status, 409);
    let bad = api
        .post("/v1/jobs", SUBMIT_A, &json!({"namespace": 7}))
        .await;
    assert!((400..500).contains(&bad.status), "{}", bad.text);
    let id = first.body["id"].as_str().unwrap();
    for _ in 0..2 {
        assert_eq!(api.get(&format!("/v1/jobs/{id}"), READ_A).await.status, 200);
    }
    let unknown = api
        .get(&format!("/v1/jobs/{}", uuid::Uuid::now_v7()), READ_A)
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(api.get("/no/such/path/x1", READ_A).await.status, 404);
    assert_eq!(api.get("/no/such/path/x2", READ_A).await.status, 404);

    let m = api.request(Method::GET, "/metrics", None, None).await;
    let t = &m.text;
    let req = "orchestrator_http_requests_total{";
    let show = ["method=\"GET\"", "route=\"/v1/jobs/{id}\""];
    assert_eq!(
        sample(t, req, &[&show[..], &["status=\"200\""]].concat()),
        Some(2.0),
        "{t}"
    );
    assert_eq!(
        sample(t, req, &[&show[..], &["status=\"404\""]].concat()),
        Some(1.0),
        "{t}"
    );
    // Made-up paths share one series: clients cannot grow the label set.
    assert_eq!(
        sample(t, req, &["route=\"(unmatched)\"", "status=\"404\""]),
        Some(2.0),
        "{t}"
    );
    assert!(
        !t.contains("/no/such/path"),
        "raw paths leaked into labels: {t}"
    );
    let submits = ["method=\"POST\"", "route=\"/v1/jobs\""];
    assert_eq!(
        sample(
            t,
            "orchestrator_http_request_duration_seconds_count{",
            &submits
        ),
        Some(4.0),
        "{t}"
    );
    let intake = "orchestrator_intake_messages_total{";
    for (outcome, n) in [
        ("accepted", 1.0),
        ("duplicate", 1.0),
        ("conflict", 1.0),
        ("invalid", 1.0),
    ] {
        let o = format!("outcome=\"{outcome}\"");
        assert_eq!(
            sample(t, intake, &["source=\"http\"", &o]),
            Some(n),
            "{outcome}: {t}"
        );
    }
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_show_depth_oldest_wait_and_heads_with_waiting_reasons() {
    let api = TestApi::start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = api
            .post("/v1/jobs", SUBMIT_A, &job("team-a", &format!("n{i}")))
            .await;
        ids.push(a.body["id"].as_str().unwrap().parse::<JobId>().unwrap());
    }
    let mut high = job("team-b", "urgent");
    high["priority"] = json!("high");
    assert_eq!(api.post("/v1/jobs", SUBMIT_B, &high).await.status, 202);
    api.store
        .mark_waiting(&[WaitingMark {
            job: ids[0],
            code: "capacity".into(),
            message: "no node fits executor: memory 4Gi > 2Gi free".into(),
            position: Some(1),
        }])
        .await
        .unwrap();
    let q = api.get("/v1/queues?heads=2", ADMIN).await;
    assert_eq!(q.status, 200, "{}", q.text);
    let queues = q.body["queues"].as_array().unwrap();
    let keys: Vec<(String, String)> = queues
        .iter()
        .map(|q| {
            (
                q["namespace"].as_str().unwrap().into(),
                q["priority"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("team-a", "high"),
            ("team-b", "high"),
            ("team-a", "normal"),
            ("team-b", "normal")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let a_normal = &queues[2];
    assert_eq!(a_normal["depth"], 3);
    assert_eq!(a_normal["queued"], 2);
    assert_eq!(a_normal["waiting"], 1);
    assert!(a_normal["oldestWaitSeconds"].as_f64().unwrap() >= 0.0);
    let heads = a_normal["heads"].as_array().unwrap();
    assert_eq!(heads.len(), 2, "heads=2");
    assert_eq!(heads[0]["id"], json!(ids[0].to_string()));
    assert_eq!(heads[0]["position"], 1);
    assert_eq!(heads[0]["state"], "waiting");
    assert_eq!(heads[0]["waitingReason"], "capacity");
    assert_eq!(heads[1]["position"], 2);
    assert_eq!(queues[1]["depth"], 1);
    assert_eq!(queues[0]["depth"], 0);
    assert_eq!(queues[0]["oldestWaitSeconds"], Value::Null);
    let none = api.get("/v1/queues?heads=0&namespace=team-a", READ_A).await;
    assert!(
        none.body["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["heads"] == json!([]))
    );
    assert_eq!(api.get("/v1/queues?heads=101", ADMIN).await.status, 400);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_json() {
    let api = TestApi::start().await;
    let a = api.get("/v1/nothing-here", ADMIN).await;
    assert_eq!(a.status, 404);
    assert_eq!(a.body["error"], "not-found");
    let a = api
        .request(Method::DELETE, "/v1/jobs", Some(ADMIN), None)
        .await;
    assert_eq!(a.status, 405, "{}", a.text);
    assert_eq!(a.body["error"], "method-not-allowed");
    api.finish().await;
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{name}", "nightly")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_the_routes_served() {
    let api = TestApi::start().await;
    let doc = api.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    let doc = doc.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = routes()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    assert_eq!(documented, served, "the document and the router disagree");

    // Every route is really served (no 404 "no such endpoint", no 405), and documented paths
    // refuse the methods they do not list.
    let paths: BTreeSet<&str> = routes().iter().map(|r| r.path).collect();
    for path in paths {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let a = api
                .request(
                    method.clone(),
                    &concrete(path),
                    Some(ADMIN),
                    Some(("application/json", b"{}".to_vec())),
                )
                .await;
            let is_route = served.contains(&(method.to_string(), path.to_owned()));
            let unrouted = a.status == 405
                || (a.status == 404
                    && a.body["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("no such endpoint")));
            assert_eq!(
                !unrouted, is_route,
                "{method} {path}: {} {}",
                a.status, a.text
            );
        }
    }

    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/").skip(1) {
        let reference = part.split('"').next().unwrap();
        let mut node = &doc["components"];
        for key in reference.split('/') {
            node = &node[key];
        }
        assert!(!node.is_null(), "dangling $ref {reference}");
    }
    // Every operation says what it answers.
    for (_, ops) in doc["paths"].as_object().unwrap() {
        for (m, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m}"
            );
            assert!(op["summary"].is_string());
        }
    }
    api.finish().await;
}
