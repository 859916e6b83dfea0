//! Authentication and authorisation on every /v1 route: 401 with `WWW-Authenticate: Bearer`
//! and a JSON body without or with a bad token, 403 for a missing role or namespace, and
//! listings cut to the token's namespaces.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use orchestrator::http::routes;
use reqwest::Method;
use serde_json::json;
use support::{ADMIN, ADMIN_A, READ_A, SUBMIT_A, SUBMIT_B, TestApi, job};

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0190d3c4-0000-7000-8000-000000000001")
        .replace("{name}", "nightly")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_wants_a_valid_bearer_token() {
    let api = TestApi::start().await;
    let v1: Vec<_> = routes()
        .into_iter()
        // The job schema is public: publishers check messages before they have a token.
        .filter(|r| r.path.starts_with("/v1/") && r.path != "/v1/schema/job")
        .collect();
    assert!(v1.len() >= 16);
    for r in &v1 {
        let path = concrete(r.path);
        let body = Some(("application/json", b"{}".to_vec()));
        for token in [None, Some("wrong-token-0123456789"), Some("")] {
            let a = api
                .request(r.method.clone(), &path, token, body.clone())
                .await;
            assert_eq!(
                a.status, 401,
                "{} {path} with {token:?}: {}",
                r.method, a.text
            );
            assert_eq!(
                a.headers["www-authenticate"],
                "Bearer realm=\"orchestrator\""
            );
            assert_eq!(a.body["error"], "unauthenticated");
            assert!(a.body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert!(!a.text.contains("wrong-token"), "tokens are never echoed");
        }
    }
    // Other schemes are refused too.
    let basic = reqwest::Client::new()
        .get(format!("{}/v1/jobs", api.url))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), 401);
    // The operational endpoints are open.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let a = api.request(Method::GET, path, None, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced() {
    let api = TestApi::start().await;
    // A reader cannot submit or cancel.
    let a = api.post("/v1/jobs", READ_A, &job("team-a", "x")).await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.body["error"], "forbidden");
    assert!(a.body["message"].as_str().unwrap().contains("submit"));
    let queued = api.post("/v1/jobs", SUBMIT_A, &job("team-a", "x")).await;
    let id = queued.body["id"].as_str().unwrap().to_owned();
    let a = api
        .post_empty(&format!("/v1/jobs/{id}/cancel"), READ_A)
        .await;
    assert_eq!(a.status, 403);
    // Submitters cannot touch dead letters or schedules.
    for (path, body) in [
        ("/v1/dlq/requeue", json!({"all": true})),
        ("/v1/dlq/purge", json!({"all": true})),
        (
            "/v1/schedules",
            json!({"name": "x", "cron": "* * * * *", "jobTemplate": job("team-a", "x")}),
        ),
    ] {
        let a = api.post(path, SUBMIT_A, &body).await;
        assert_eq!(a.status, 403, "{path}: {}", a.text);
        assert!(a.body["message"].as_str().unwrap().contains("admin"));
    }
    for path in ["/v1/schedules/x/pause", "/v1/schedules/x/resume"] {
        assert_eq!(api.post_empty(path, SUBMIT_A).await.status, 403);
    }
    let del = api
        .request(Method::DELETE, "/v1/schedules/x", Some(SUBMIT_A), None)
        .await;
    assert_eq!(del.status, 403);
    // Reading is allowed to submitters (submit implies read).
    assert_eq!(api.get("/v1/jobs", SUBMIT_A).await.status, 200);
    assert_eq!(api.get("/v1/dlq", SUBMIT_A).await.status, 200);
    assert_eq!(api.get("/v1/queues", SUBMIT_A).await.status, 200);
    assert_eq!(api.get("/v1/schedules", SUBMIT_A).await.status, 200);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_enforced_and_listings_are_cut_to_them() {
    let api = TestApi::start().await;
    let a = api.post("/v1/jobs", SUBMIT_A, &job("team-a", "mine")).await;
    let mine = a.body["id"].as_str().unwrap().to_owned();
    let b = api
        .post("/v1/jobs", SUBMIT_B, &job("team-b", "theirs"))
        .await;
    let theirs = b.body["id"].as_str().unwrap().to_owned();
    // Submitting into another namespace.
    let a = api
        .post("/v1/jobs", SUBMIT_A, &job("team-b", "sneaky"))
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert!(a.body["message"].as_str().unwrap().contains("team-b"));
    // Reading or cancelling another namespace's job.
    assert_eq!(
        api.get(&format!("/v1/jobs/{theirs}"), READ_A).await.status,
        403
    );
    assert_eq!(
        api.post_empty(&format!("/v1/jobs/{theirs}/cancel"), SUBMIT_A)
            .await
            .status,
        403
    );
    assert_eq!(
        api.get(&format!("/v1/jobs/{mine}"), READ_A).await.status,
        200
    );
    // Asking to list another namespace.
    assert_eq!(
        api.get("/v1/jobs?namespace=team-b", READ_A).await.status,
        403
    );
    assert_eq!(
        api.get("/v1/queues?namespace=team-b", READ_A).await.status,
        403
    );
    assert_eq!(
        api.get("/v1/dlq?namespace=team-b", READ_A).await.status,
        403
    );
    assert_eq!(
        api.get("/v1/schedules?namespace=team-b", READ_A)
            .await
            .status,
        403
    );
    // Unasked, listings hold only the token's namespaces.
    let jobs = api.get("/v1/jobs", READ_A).await;
    let items = jobs.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], json!(mine));
    let queues = api.get("/v1/queues", READ_A).await;
    assert!(
        queues.body["queues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["namespace"] == "team-a")
    );
    let all = api.get("/v1/queues", ADMIN).await;
    assert_eq!(
        all.body["queues"].as_array().unwrap().len(),
        4,
        "2 namespaces × 2 priorities"
    );
    // A namespace admin cannot requeue everything, only inside its namespace.
    let purge_b = api
        .post("/v1/dlq/purge", ADMIN_A, &json!({"namespace": "team-b"}))
        .await;
    assert_eq!(purge_b.status, 403);
    let purge_mine = api
        .post("/v1/dlq/purge", ADMIN_A, &json!({"all": true}))
        .await;
    assert_eq!(
        purge_mine.status, 200,
        "applied to team-a only: {}",
        purge_mine.text
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_auth_lets_anyone_in_as_admin() {
    let api = TestApi::start_with(|mut s| {
        s.auth = std::sync::Arc::new(
            orchestrator::http::auth::Authenticator::new(&orchestrator::http::auth::AuthConfig {
                disabled: true,
                tokens: vec![],
            })
            .unwrap(),
        );
        s
    })
    .await;
    let a = api
        .request(
            Method::POST,
            "/v1/jobs",
            None,
            Some((
                "application/json",
                serde_json::to_vec(&job("team-b", "open")).unwrap(),
            )),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    api.finish().await;
}
