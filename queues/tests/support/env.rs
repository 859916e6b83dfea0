//! Test environment against the real services on 127.0.0.1: a fresh PostgreSQL database per
//! test (migrated), a unique AMQP prefix per test on the shared broker, and cleanup that runs
//! even when the test panics. Unreachable services fail the test loudly (never a skip).
//! Included with `#[path]` by the integration test crates.

#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test crate uses a different part, and a panic is how a test fails"
)]

use std::sync::Arc;
use std::time::Duration;

use jobs::Catalog;
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use queues::metrics::Metrics;
use queues::store::JobStore;
use queues::{Names, Topology, TopologyConfig};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use test_support::fixtures::{catalog, catalog_with, job_body};
pub use test_support::pg::TestDb;
pub use test_support::{AMQP_URL, eventually, unique};

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
        Self::build(
            catalog,
            amqp_url,
            TestDb::new(&queues::store::MIGRATOR).await,
            tweak,
        )
        .await
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
                    test_support::pg::drop_database(port, &db).await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), cleanup).await;
            });
        })
        .join();
    }
}
