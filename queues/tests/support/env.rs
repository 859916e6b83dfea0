//! Test environment against the real services on 127.0.0.1: a fresh PostgreSQL database per
//! test (migrated), a unique AMQP prefix per test on the shared broker, and cleanup that runs
//! even when the test panics. Unreachable services fail the test loudly (never a skip).
//! Included with `#[path]` by the integration test crates.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test crate uses a different part, and a panic is how a test fails"
)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use queues::metrics::Metrics;
use queues::store::JobStore;
use queues::{Names, Topology, TopologyConfig};
use jobs::{Catalog, CatalogConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shared broker (guest/guest, default vhost).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
/// The shared PostgreSQL (trust auth).
pub const PG_HOST: &str = "127.0.0.1";
pub const PG_PORT: u16 = 5432;

/// A catalog with `team-a` and `team-b` (and whatever `extra` TOML adds).
pub fn catalog_with(extra: &str) -> Catalog {
    let text = format!(
        r#"
        {extra}
        [node_types.small]
        cpu = "1"
        memory = "4Gi"
        [defaults]
        image = "apache/spark:3.5.3"
        spark_version = "3.5.3"
        driver_node_type = "small"
        "#
    );
    let config: CatalogConfig = toml::from_str(&text).unwrap();
    Catalog::new(config).unwrap()
}

/// The default test catalog: two namespaces, default windows.
pub fn catalog() -> Catalog {
    catalog_with("[namespaces.team-a]\n[namespaces.team-b]\n")
}

/// A valid job body for `namespace` with a fresh id.
pub fn job_body(namespace: &str, name: &str, id: jobs::JobId) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "id": id.to_string(),
        "name": name,
        "namespace": namespace,
        "mainApplicationFile": "local:///opt/app.jar",
        "mainClass": "com.example.Main",
        "executor": { "nodeType": "small", "instances": 2 }
    }))
    .unwrap()
}

/// A name no other test (or earlier run) uses; starts with the creation time so leftovers of
/// crashed runs can be recognised and swept.
pub fn unique(tag: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("qt{tag}{secs}x{}", &rand[..10])
}

fn pg_options(port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(PG_HOST)
        .port(port)
        .username("postgres")
        .database(database)
}

/// A fresh database, migrated, dropped by [`TestDb::drop_database`] (or the environment's
/// cleanup). Databases of crashed runs older than two hours are swept on the way in.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub port: u16,
    pub pool: PgPool,
}

impl TestDb {
    /// On the shared server.
    pub async fn new() -> Self {
        Self::new_at(PG_PORT, Duration::from_secs(10)).await
    }

    /// On the server at 127.0.0.1:`port` (a private one for restart tests); `acquire` bounds
    /// how long a query waits for a connection (an outage surfaces after it).
    pub async fn new_at(port: u16, acquire: Duration) -> Self {
        let admin = pg_options(port, "postgres")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {PG_HOST}:{port} is unreachable: {e}"));
        let mut admin = admin;
        sweep_old_databases(&mut admin).await;
        let name = unique("db");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(acquire)
            .connect_with(pg_options(port, &name))
            .await
            .unwrap();
        queues::store::MIGRATOR.run(&pool).await.unwrap();
        Self { name, port, pool }
    }

    pub async fn drop_database(&self) {
        self.pool.close().await;
        drop_database(self.port, &self.name).await;
    }
}

async fn drop_database(port: u16, name: &str) {
    if let Ok(mut admin) = pg_options(port, "postgres").connect().await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .await;
    }
}

async fn sweep_old_databases(admin: &mut sqlx::PgConnection) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'qtdb%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let secs: Option<u64> = name
            .strip_prefix("qtdb")
            .and_then(|rest| rest.split('x').next())
            .and_then(|s| s.parse().ok());
        if secs.is_some_and(|s| s + 7200 < now) {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}

/// One test's world: database, store, topology (declared), a broker connection, and the
/// background tasks it started.
pub struct Env {
    pub db: TestDb,
    pub store: JobStore,
    pub metrics: Arc<Metrics>,
    pub catalog: Arc<Catalog>,
    pub topology: Topology,
    pub amqp_url: String,
    pub connection: Connection,
    pub channel: Channel,
    pub token: CancellationToken,
    tasks: Vec<JoinHandle<queues::Result<()>>>,
    cleaned: bool,
}

impl Env {
    /// Fresh database and a unique prefix on the shared broker.
    pub async fn new(catalog: Catalog) -> Self {
        Self::with(catalog, AMQP_URL, |c| c).await
    }

    /// With a chosen broker and topology tweaks (short delay tiers, a small delivery limit).
    pub async fn with(
        catalog: Catalog,
        amqp_url: &str,
        tweak: impl FnOnce(TopologyConfig) -> TopologyConfig,
    ) -> Self {
        Self::build(catalog, amqp_url, TestDb::new().await, tweak).await
    }

    /// With a chosen broker and database.
    pub async fn build(
        catalog: Catalog,
        amqp_url: &str,
        db: TestDb,
        tweak: impl FnOnce(TopologyConfig) -> TopologyConfig,
    ) -> Self {
        // Logs only when asked (RUST_LOG=queues=debug); the output is captured per test.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let prefix = unique("p");
        let config = tweak(TopologyConfig::new(prefix.clone()));
        let topology = Topology::new(config, &catalog).unwrap();
        let metrics = Arc::new(Metrics::default());
        let store = JobStore::new(
            db.pool.clone(),
            Names::new(prefix).unwrap(),
            metrics.clone(),
        );
        let connection = tokio::time::timeout(
            Duration::from_secs(30),
            queues::amqp::connect(amqp_url, "queues-test"),
        )
        .await
        .unwrap_or_else(|_| panic!("RabbitMQ at {amqp_url} did not answer within 30 s"))
        .unwrap_or_else(|e| panic!("RabbitMQ at {amqp_url} is unreachable: {e}"));
        let channel = connection.create_channel().await.unwrap();
        topology.declare(&channel).await.unwrap();
        Self {
            db,
            store,
            metrics,
            catalog: Arc::new(catalog),
            topology,
            amqp_url: amqp_url.to_owned(),
            connection,
            channel,
            token: CancellationToken::new(),
            tasks: Vec::new(),
            cleaned: false,
        }
    }

    pub fn names(&self) -> &Names {
        self.topology.names()
    }

    /// Intake settings for this environment (small poll interval so tests react quickly).
    pub fn intake_config(&self) -> queues::IntakeConfig {
        let mut c = queues::IntakeConfig::new(self.amqp_url.clone());
        c.connection_name = format!("{}-intake", self.names().prefix());
        c.poll_interval = Duration::from_millis(100);
        c
    }

    /// Starts the intake in the background.
    pub fn start_intake(&mut self, config: queues::IntakeConfig) {
        let intake = queues::Intake::new(
            self.store.clone(),
            self.catalog.clone(),
            self.topology.clone(),
            config,
        );
        self.tasks
            .push(tokio::spawn(intake.run(self.token.child_token())));
    }

    /// Starts the outbox relay in the background.
    pub fn start_relay(&mut self) {
        let mut config = queues::RelayConfig::new(self.amqp_url.clone());
        config.connection_name = format!("{}-relay", self.names().prefix());
        config.poll_interval = Duration::from_millis(100);
        let relay = queues::Relay::new(self.store.clone(), config);
        self.tasks
            .push(tokio::spawn(relay.run(self.token.child_token())));
    }

    /// A publisher on a new channel.
    pub async fn publisher(&self) -> queues::Publisher {
        queues::Publisher::new(&self.connection, &self.topology)
            .await
            .unwrap()
    }

    /// A fresh channel (passive declares close channels on error).
    pub async fn fresh_channel(&self) -> Channel {
        self.connection.create_channel().await.unwrap()
    }

    /// Ready messages in a queue.
    pub async fn ready(&self, queue: &str) -> u32 {
        let ch = self.fresh_channel().await;
        let n = ch
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        let _ = ch.close(200, "ok".into()).await;
        n
    }

    /// Takes every message now in `queue` (basic.get, auto-ack).
    pub async fn drain(&self, queue: &str) -> Vec<lapin::message::BasicGetMessage> {
        let ch = self.fresh_channel().await;
        let mut out = Vec::new();
        while let Some(m) = ch
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            out.push(m);
        }
        let _ = ch.close(200, "ok".into()).await;
        out
    }

    /// A scalar from the test database.
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Stops background tasks (with a deadline), deletes the topology and the database.
    pub async fn cleanup(mut self) {
        self.token.cancel();
        for task in std::mem::take(&mut self.tasks) {
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => panic!("a background task failed: {e}"),
                Ok(Err(e)) => panic!("a background task panicked: {e}"),
                Err(_) => panic!("a background task did not stop within 30 s"),
            }
        }
        // Best effort: after a broker restart our own connection may still be recovering.
        match self.connection.create_channel().await {
            Ok(ch) => {
                let _ = self.topology.delete(&ch).await;
            }
            Err(_) => {
                if let Ok(conn) = queues::amqp::connect(&self.amqp_url, "queues-test-cleanup").await
                    && let Ok(ch) = conn.create_channel().await
                {
                    let _ = self.topology.delete(&ch).await;
                    let _ = conn.close(200, "cleanup".into()).await;
                }
            }
        }
        let _ = self.connection.close(200, "test done".into()).await;
        self.db.drop_database().await;
        self.cleaned = true;
    }
}

impl Drop for Env {
    /// A failed test still removes its queues and database (on a thread of its own: the
    /// test's runtime may be unwinding).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        self.token.cancel();
        for task in &self.tasks {
            task.abort();
        }
        let topology = self.topology.clone();
        let url = self.amqp_url.clone();
        let db = self.db.name.clone();
        let port = self.db.port;
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let cleanup = async {
                    if let Ok(conn) = queues::amqp::connect(&url, "queues-test-cleanup").await
                        && let Ok(ch) = conn.create_channel().await
                    {
                        let _ = topology.delete(&ch).await;
                        let _ = conn.close(200, "cleanup".into()).await;
                    }
                    drop_database(port, &db).await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), cleanup).await;
            });
        })
        .join();
    }
}

/// Waits (polling every 50 ms, at most `limit`) until `check` returns `Some`; panics with
/// `what` on timeout. The only way tests wait: on a condition, with a bound.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
