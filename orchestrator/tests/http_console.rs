//! What the web console adds to the HTTP surface, over real HTTP on a fresh database: the
//! embedded files (types, ETag and 304, the security headers), hostile paths (traversal,
//! encodings, huge paths) that find nothing, `/v1/whoami`, `/v1/cluster` with its scoping, and
//! the `name` filter of `/v1/jobs`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use capacity::summary::{Amounts, ClusterSummary, Placeholders, PoolSummary, QuotaSummary};
use orchestrator::http::cluster::ClusterInfo;
use orchestrator::http::ui::CONTENT_SECURITY_POLICY;
use reqwest::Method;
use serde_json::Value;
use support::{ADMIN, READ_A, SUBMIT_A, SUBMIT_B, TestApi, job};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends `GET <path>` exactly as given (no client normalisation) and returns the status, or
/// `None` when the server closed the connection without answering.
async fn raw_get(api: &TestApi, path: &str) -> Option<u16> {
    let addr = api.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return None;
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_files_are_served_with_types_etags_and_a_strict_policy() {
    let api = TestApi::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client.get(format!("{}/ui", api.url)).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/ui/");

    for (path, content_type, needle) in [
        ("/ui/", "text/html; charset=utf-8", "<title>"),
        ("/ui/index.html", "text/html; charset=utf-8", "js/app.js"),
        ("/ui/js/app.js", "text/javascript; charset=utf-8", "import"),
        (
            "/ui/js/views/dlq.js",
            "text/javascript; charset=utf-8",
            "/v1/dlq/requeue",
        ),
        ("/ui/style.css", "text/css; charset=utf-8", ":root"),
        ("/ui/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let a = api.request(Method::GET, path, None, None).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.headers["content-type"], content_type, "{path}");
        assert!(a.text.contains(needle), "{path}");
        assert_eq!(
            a.headers["content-security-policy"], CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
        assert_eq!(a.headers["x-frame-options"], "DENY");
        assert_eq!(a.headers["cache-control"], "no-cache");
        let etag = a.headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.len() == 34, "{etag}");

        // The same ETag back: 304 with no body; another one: the file again.
        let again = client
            .get(format!("{}{path}", api.url))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
        assert!(again.bytes().await.unwrap().is_empty());
        let stale = client
            .get(format!("{}{path}", api.url))
            .header("if-none-match", "\"0000\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200, "{path}");
    }
    // The page is served without a token: signing in happens in it.
    assert!(CONTENT_SECURITY_POLICY.contains("default-src 'self'"));
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    let post = api.request(Method::POST, "/ui/", None, None).await;
    assert_eq!(post.status, 405);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_console_paths_find_nothing_and_the_server_keeps_serving() {
    let api = TestApi::start().await;
    let long = format!("/ui/{}", "a".repeat(60_000));
    let nested = format!("/ui/{}", "../".repeat(2_000));
    for path in [
        "/ui/../../etc/passwd",
        "/ui/..%2f..%2fetc%2fpasswd",
        "/ui/%2e%2e/%2e%2e/etc/passwd",
        "/ui/js/../../Cargo.toml",
        "/ui/js/%2e%2e/%2e%2e/src/main.rs",
        "/ui//etc/passwd",
        "/ui/index.html%00.js",
        "/ui/INDEX.HTML",
        "/ui/js/",
        "/ui/no-such-file.js",
        "/ui/%ff%fe",
        "/ui/\\..\\..\\etc\\passwd",
        long.as_str(),
        nested.as_str(),
    ] {
        let status = raw_get(&api, path).await;
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{}: {status:?}",
            &path[..path.len().min(60)]
        );
        if path.starts_with("/ui/..") || path.contains("passwd") {
            assert_ne!(status, Some(200), "{path}");
        }
    }
    let unknown = api
        .request(Method::GET, "/ui/no-such-file.js", None, None)
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.headers["content-security-policy"],
        CONTENT_SECURITY_POLICY
    );
    // A path far beyond what the server reads in a request head: refused, not served.
    let huge = format!("/ui/{}", "b".repeat(2 * 1024 * 1024));
    let status = raw_get(&api, &huge).await;
    assert!(status.is_none_or(|s| s >= 400), "{status:?}");
    assert_eq!(raw_get(&api, "/ui/").await, Some(200), "still serving");
    assert_eq!(raw_get(&api, "/healthz").await, Some(200));
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_tells_the_token_its_roles_and_namespaces() {
    let api = TestApi::start().await;
    let admin = api.get("/v1/whoami", ADMIN).await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    assert_eq!(admin.body["name"], "admin");
    assert_eq!(
        admin.body["roles"],
        serde_json::json!(["read", "submit", "admin"])
    );
    assert_eq!(
        admin.body["namespaces"],
        serde_json::json!(["team-a", "team-b"])
    );
    assert_eq!(admin.body["allNamespaces"], true);
    assert_eq!(admin.body["authDisabled"], false);

    let reader = api.get("/v1/whoami", READ_A).await;
    assert_eq!(reader.body["roles"], serde_json::json!(["read"]));
    assert_eq!(reader.body["namespaces"], serde_json::json!(["team-a"]));
    assert_eq!(reader.body["allNamespaces"], false);
    let submitter = api.get("/v1/whoami", SUBMIT_A).await;
    assert_eq!(
        submitter.body["roles"],
        serde_json::json!(["read", "submit"])
    );

    for token in [None, Some("not-a-token-0123456789")] {
        let a = api.request(Method::GET, "/v1/whoami", token, None).await;
        assert_eq!(a.status, 401);
        assert_eq!(a.body["error"], "unauthenticated");
        assert!(a.headers.contains_key("www-authenticate"));
    }
    api.finish().await;
}

struct FixedCluster;

fn amounts(cpu_millis: u64, memory_bytes: u64, pods: u64) -> Amounts {
    Amounts {
        cpu_millis,
        memory_bytes,
        pods,
    }
}

impl ClusterInfo for FixedCluster {
    fn summary(&self) -> ClusterSummary {
        let quota = QuotaSummary {
            hard: amounts(8000, 1 << 34, u64::MAX),
            used: amounts(2000, 1 << 32, 2),
        };
        ClusterSummary {
            ready: true,
            pools: vec![PoolSummary {
                name: Some("general".into()),
                nodes: 2,
                max_nodes: Some(5),
                unschedulable: 0,
                allocatable: amounts(8000, 1 << 35, 220),
                requested: amounts(3000, 1 << 33, 3),
                reserved: amounts(1000, 1 << 31, 1),
                placeholders: Placeholders {
                    pods: 1,
                    requested: amounts(500, 1 << 30, 1),
                },
            }],
            reservations: 1,
            pending_placeholders: 0,
            quotas: BTreeMap::from([("team-a".into(), quota), ("team-b".into(), quota)]),
        }
    }

    fn app_pods(&self, _namespace: &str, _app: &str) -> capacity::PodProgress {
        capacity::PodProgress::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_is_served_from_the_capacity_summary_with_quotas_in_scope() {
    let without = TestApi::start().await;
    let a = without.get("/v1/cluster", ADMIN).await;
    assert_eq!(a.status, 503, "{}", a.text);
    assert_eq!(a.body["error"], "unavailable");
    without.finish().await;

    let api = TestApi::start_with(|s| s.with_cluster(Arc::new(FixedCluster))).await;
    let admin = api.get("/v1/cluster", ADMIN).await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    let pool = &admin.body["pools"][0];
    assert_eq!(pool["name"], "general");
    assert_eq!(pool["maxNodes"], 5);
    assert_eq!(pool["reserved"]["cpuMillis"], 1000);
    assert_eq!(pool["placeholders"]["pods"], 1);
    let quotas: Vec<&String> = admin.body["quotas"].as_object().unwrap().keys().collect();
    assert_eq!(quotas, ["team-a", "team-b"]);
    assert_eq!(
        admin.body["quotas"]["team-a"]["hard"]["pods"].as_u64(),
        Some(u64::MAX)
    );

    let reader = api.get("/v1/cluster", READ_A).await;
    assert_eq!(reader.status, 200);
    let quotas: Vec<&String> = reader.body["quotas"].as_object().unwrap().keys().collect();
    assert_eq!(quotas, ["team-a"], "only the token's namespaces");
    assert_eq!(reader.body["pools"], admin.body["pools"]);

    let anonymous = api.request(Method::GET, "/v1/cluster", None, None).await;
    assert_eq!(anonymous.status, 401);
    let bad_query = api.get("/v1/cluster?x=1", ADMIN).await;
    assert_eq!(bad_query.status, 200, "no query is read");
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_filter_by_name_prefix_and_refuse_names_no_job_can_have() {
    let api = TestApi::start().await;
    for (token, ns, name) in [
        (SUBMIT_A, "team-a", "etl-orders"),
        (SUBMIT_A, "team-a", "etl-customers"),
        (SUBMIT_A, "team-a", "report"),
        (SUBMIT_B, "team-b", "etl-billing"),
    ] {
        let a = api.post("/v1/jobs", token, &job(ns, name)).await;
        assert_eq!(a.status, 202, "{}", a.text);
    }
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = api.get("/v1/jobs?name=etl-", ADMIN).await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert_eq!(
        names(&all.body),
        ["etl-billing", "etl-customers", "etl-orders"]
    );
    let scoped = api.get("/v1/jobs?name=etl", READ_A).await;
    assert_eq!(names(&scoped.body), ["etl-customers", "etl-orders"]);
    let exact = api.get("/v1/jobs?name=report", ADMIN).await;
    assert_eq!(names(&exact.body), ["report"]);
    let none = api.get("/v1/jobs?name=nothing", ADMIN).await;
    assert_eq!(names(&none.body), Vec::<String>::new());
    let empty = api.get("/v1/jobs?name=", ADMIN).await;
    assert_eq!(names(&empty.body).len(), 4, "an empty filter is no filter");
    let paged = api.get("/v1/jobs?name=etl&limit=1", ADMIN).await;
    let next = paged.body["next"].as_str().unwrap().to_owned();
    let rest = api
        .get(&format!("/v1/jobs?name=etl&limit=5&cursor={next}"), ADMIN)
        .await;
    assert_eq!(names(&rest.body), ["etl-customers", "etl-orders"]);

    let long = format!("/v1/jobs?name={}", "a".repeat(54));
    for bad in [
        "/v1/jobs?name=ETL",
        "/v1/jobs?name=%3Cimg%20src%3Dx%3E",
        "/v1/jobs?name=a%25",
        "/v1/jobs?name=a_b",
        "/v1/jobs?name=%00",
        long.as_str(),
    ] {
        let a = api.get(bad, ADMIN).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.text);
        assert_eq!(a.body["error"], "invalid-query");
        assert!(!a.text.contains("<img"), "the name is not echoed raw");
    }
    api.finish().await;
}
