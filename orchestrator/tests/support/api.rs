//! The API on a fresh, migrated PostgreSQL database per test (`test_support::pg`), served on
//! 127.0.0.1:0 in-process, with a token per role and namespace scope.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the helper"
)]

use std::sync::Arc;
use std::time::Duration;

use jobs::Catalog;
use orchestrator::config::Config;
use orchestrator::http::auth::{AuthConfig, Authenticator, Role, TokenConfig};
use orchestrator::http::{self, ApiOptions, ApiState, Readiness, StoreReadiness};
use prometheus_client::registry::Registry;
use queues::{JobStore, Names};
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use tokio_util::sync::CancellationToken;

/// Admin of every namespace.
pub const ADMIN: &str = "admin-token-all-0123456789";
/// Admin of team-a only.
pub const ADMIN_A: &str = "admin-token-team-a-0123456789";
/// Reader of team-a.
pub const READ_A: &str = "read-token-team-a-0123456789";
/// Submitter of team-a.
pub const SUBMIT_A: &str = "submit-token-team-a-0123456789";
/// Submitter of team-b.
pub const SUBMIT_B: &str = "submit-token-team-b-0123456789";
/// Reader of team-a and team-b.
pub const READ_AB: &str = "read-token-team-ab-0123456789";

/// The example config's catalog (namespaces team-a and team-b, node types small/medium/large).
pub fn catalog() -> Catalog {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orchestrator.toml");
    Config::from_file(&path).unwrap().catalog
}

fn token(name: &str, token: &str, roles: &[Role], namespaces: &[&str]) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        token_sha256: None,
        token: Some(token.into()),
        roles: roles.to_vec(),
        namespaces: namespaces.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// The tokens above.
pub fn auth_config() -> AuthConfig {
    AuthConfig {
        disabled: false,
        tokens: vec![
            token("admin", ADMIN, &[Role::Admin], &["*"]),
            token("admin-a", ADMIN_A, &[Role::Admin], &["team-a"]),
            token("reader-a", READ_A, &[Role::Read], &["team-a"]),
            token("submitter-a", SUBMIT_A, &[Role::Submit], &["team-a"]),
            token("submitter-b", SUBMIT_B, &[Role::Submit], &["team-b"]),
            token("reader-ab", READ_AB, &[Role::Read], &["team-a", "team-b"]),
        ],
    }
}

/// A running API on its own database.
pub struct TestApi {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The store behind it.
    pub store: JobStore,
    /// The shared state (for building a second router in tests).
    pub state: ApiState,
    db: String,
    token: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    client: reqwest::Client,
}

/// An answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApi {
    /// A fresh database and the API with default options.
    pub async fn start() -> Self {
        Self::start_with(|s| s).await
    }

    /// Like [`TestApi::start`], letting the test adjust the state.
    pub async fn start_with(adjust: impl FnOnce(ApiState) -> ApiState) -> Self {
        let db = test_support::pg::create(test_support::pg::PORT).await;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(test_support::pg::options(test_support::pg::PORT, &db))
            .await
            .unwrap();
        let metrics = Arc::new(queues::Metrics::default());
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let store = JobStore::new(pool, Names::new(db.clone()).unwrap(), metrics);
        store.migrate().await.unwrap();
        let catalog = Arc::new(catalog());
        let auth = Arc::new(Authenticator::new(&auth_config()).unwrap());
        let readiness: Arc<dyn Readiness> = Arc::new(StoreReadiness::new(store.clone()));
        let state = adjust(ApiState::new(
            store.clone(),
            catalog,
            auth,
            registry,
            readiness,
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let token = CancellationToken::new();
        let server = tokio::spawn(http::serve(
            listener,
            http::router(state.clone()),
            token.clone(),
        ));
        Self {
            url,
            store,
            state,
            db,
            token,
            server,
            client: reqwest::Client::new(),
        }
    }

    /// Options in effect.
    pub fn options(&self) -> &ApiOptions {
        &self.state.options
    }

    /// Sends a request; `body` is sent with `content_type` when given.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Answer {
        let mut req = self.client.request(method, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some((content_type, bytes)) = body {
            req = req.header("content-type", content_type).body(bytes);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            body,
            text,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// POST JSON.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.request(
            reqwest::Method::POST,
            path,
            Some(token),
            Some(("application/json", serde_json::to_vec(body).unwrap())),
        )
        .await
    }

    /// POST with no body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Answer {
        self.request(reqwest::Method::POST, path, Some(token), None)
            .await
    }

    /// Stops the server and drops the database.
    pub async fn finish(self) {
        self.token.cancel();
        let _ = self.server.await;
        self.store.pool().close().await;
        test_support::pg::drop_database(test_support::pg::PORT, &self.db).await;
    }
}

/// A valid job for `namespace` (the spark-pi example).
pub fn job(namespace: &str, name: &str) -> Value {
    serde_json::json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": namespace,
        "type": "Scala",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
        "arguments": ["1000"],
        "driver": { "nodeType": "small" },
        "executor": { "nodeType": "small", "instances": 2 }
    })
}
