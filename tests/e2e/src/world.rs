//! One test's world: kube-sim, a fresh database, a unique RabbitMQ topology, and the
//! orchestrator's loops running against them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use capacity::{Capacity, CapacityConfig};
use jobs::{Catalog, CatalogConfig, JobId, JobState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_sim::{AuthConfig, PoolConfig, SimConfig, SimHandle, Simulator};
use queues::store::StoredJob;
use queues::{JobStore, Names, Publisher, Topology, TopologyConfig};
use serde_json::Value;
use submitter::config::SubmitterConfig;
use submitter::context::Context;
use submitter::kube_apps::SparkApplication;
use submitter::service::Submitter;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use test_support::pg::{self, TestDb};
use test_support::{deploy, eventually};

/// The shared broker.
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A catalog matching [`default_cluster`]: namespaces `team-a`/`team-b`, node type `small`
/// (1 cpu, 2 GiB pods on pool `general`), defaults for image and version.
pub const DEFAULT_CATALOG: &str = r#"
    [namespaces.team-a]
    [namespaces.team-b]
    [node_types.small]
    cpu = "1"
    memory = "2Gi"
    node_selector = { pool = "general" }
    [defaults]
    image = "apache/spark:3.5.3"
    spark_version = "3.5.3"
    driver_node_type = "small"
    executor_node_type = "small"
    retry = { max_attempts = 3, initial_backoff = "1s", max_backoff = "2s", multiplier = 2.0 }
"#;

/// `nodes` nodes of 4 cpu / 16 GiB in pool `general`, namespaces `team-a`/`team-b`, the
/// priority classes, bin-packing scoring and a fast clock.
pub fn default_cluster(nodes: usize) -> SimConfig {
    let mut c = SimConfig::default()
        .with_pool(PoolConfig::new("general", nodes, "4", "16Gi"))
        .with_namespace("team-a")
        .with_namespace("team-b")
        .with_priority_class("spark-high", 1000, false)
        .with_priority_class("spark-normal", 100, false)
        .with_speed(20.0);
    c.scheduler.scoring = kube_sim::Scoring::MostAllocated;
    c
}

/// What to build.
pub struct WorldConfig {
    /// The cluster.
    pub cluster: SimConfig,
    /// Catalog TOML (namespaces, node types, defaults).
    pub catalog: String,
    /// Submitter knobs (fast by default).
    pub submitter: SubmitterConfig,
    /// Capacity strategy.
    pub capacity: CapacityConfig,
    /// Runs intake, relay, housekeeping and the capacity watches in this process; `false` when
    /// a daemon started on the world runs them (then start no submitter here: its checker's
    /// watches never run).
    pub pipeline: bool,
    /// Enforce `deploy/base`'s RBAC and run the loops as its ServiceAccount (default). Off for
    /// clusters whose namespaces the shipped RoleBindings do not cover (the replay's traces).
    pub rbac: bool,
}

impl Default for WorldConfig {
    fn default() -> Self {
        let mut submitter = SubmitterConfig::default();
        submitter.interval.0 = Duration::from_millis(100);
        submitter.lost_after.0 = Duration::from_secs(5);
        submitter.app_ttl = None;
        Self {
            cluster: default_cluster(2),
            catalog: DEFAULT_CATALOG.to_owned(),
            submitter,
            capacity: CapacityConfig::default(),
            pipeline: true,
            rbac: true,
        }
    }
}

/// The running world.
pub struct World {
    /// The simulator.
    pub sim: SimHandle,
    /// A kube client on it, as kube-sim's admin (what tests use to look and to meddle).
    pub client: kube::Client,
    /// A kube client as the daemon's ServiceAccount of `deploy/base`, under its RBAC (what the
    /// orchestrator's loops use).
    pub daemon_client: kube::Client,
    /// The test database.
    pub db: TestDb,
    /// The job store.
    pub store: JobStore,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// The RabbitMQ topology (unique prefix).
    pub topology: Topology,
    /// A publisher on it.
    pub publisher: Publisher,
    connection: lapin::Connection,
    capacity: Capacity,
    submitter_config: SubmitterConfig,
    token: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    submitter: Option<(CancellationToken, JoinHandle<()>)>,
    cleaned: bool,
}

/// Intake, relay, housekeeping and the capacity watches (what a daemon would run), ready.
async fn start_pipeline(
    store: &JobStore,
    catalog: &Arc<Catalog>,
    topology: &Topology,
    capacity: &Capacity,
    token: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut intake_config = queues::IntakeConfig::new(AMQP_URL);
    intake_config.connection_name = format!("{}-intake", topology.names().prefix());
    intake_config.poll_interval = Duration::from_millis(50);
    let intake = queues::Intake::new(
        store.clone(),
        catalog.clone(),
        topology.clone(),
        intake_config,
    );
    tasks.push(spawn_logged("intake", intake.run(token.child_token())));
    let mut relay_config = queues::RelayConfig::new(AMQP_URL);
    relay_config.connection_name = format!("{}-relay", topology.names().prefix());
    relay_config.poll_interval = Duration::from_millis(50);
    tasks.push(spawn_logged(
        "relay",
        queues::Relay::new(store.clone(), relay_config).run(token.child_token()),
    ));
    let maintenance = queues::maintenance::MaintenanceConfig {
        interval: Duration::from_millis(100),
        ..Default::default()
    };
    tasks.push(spawn_logged(
        "maintenance",
        queues::maintenance::run_maintenance(store.clone(), maintenance, token.child_token()),
    ));

    let runner = capacity.clone();
    let capacity_token = token.child_token();
    tasks.push(spawn_logged("capacity", async move {
        runner.run(capacity_token).await
    }));
    capacity.wait_ready(Duration::from_secs(30)).await.unwrap();
    tasks
}

impl World {
    /// Builds everything and starts intake, relay, housekeeping and the capacity watches
    /// (unless [`WorldConfig::pipeline`] is off); the submitter starts with
    /// [`World::start_submitter`].
    pub async fn start(config: WorldConfig) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // The loops run as the ServiceAccount of deploy/base, under its RBAC; tests act as admin.
        let cluster = if config.rbac {
            config
                .cluster
                .with_auth(
                    AuthConfig::new()
                        .admin(deploy::ADMIN_TOKEN, "admin")
                        .service_account(
                            deploy::DAEMON_TOKEN,
                            deploy::DAEMON_NAMESPACE,
                            deploy::DAEMON_NAME,
                        ),
                )
                .with_manifest_yaml(deploy::rendered_base())
                .unwrap()
        } else {
            config.cluster
        };
        let sim = Simulator::start(cluster, "127.0.0.1:0".parse().unwrap()).unwrap();
        let client = sim.client().unwrap();
        let daemon_client = if config.rbac {
            sim.client_as(deploy::DAEMON).unwrap()
        } else {
            client.clone()
        };
        let catalog: CatalogConfig = toml::from_str(&config.catalog).unwrap();
        let catalog = Arc::new(Catalog::new(catalog).unwrap());
        let db = TestDb::new(&queues::store::MIGRATOR).await;
        let prefix = test_support::unique("p");
        let topology = Topology::new(TopologyConfig::new(prefix.clone()), &catalog).unwrap();
        let metrics = Arc::new(queues::Metrics::default());
        let store = JobStore::new(db.pool.clone(), Names::new(prefix).unwrap(), metrics);
        let connection = tokio::time::timeout(
            Duration::from_secs(30),
            queues::amqp::connect(AMQP_URL, "e2e"),
        )
        .await
        .unwrap_or_else(|_| panic!("RabbitMQ at {AMQP_URL} did not answer within 30 s"))
        .unwrap_or_else(|e| panic!("RabbitMQ at {AMQP_URL} is unreachable: {e}"));
        let channel = connection.create_channel().await.unwrap();
        topology.declare(&channel).await.unwrap();
        let publisher = Publisher::new(&connection, &topology).await.unwrap();

        let token = CancellationToken::new();
        let capacity = Capacity::new(
            daemon_client.clone(),
            &config.capacity,
            capacity::Metrics::new(),
        );
        let tasks = if config.pipeline {
            start_pipeline(&store, &catalog, &topology, &capacity, &token).await
        } else {
            Vec::new()
        };

        Self {
            sim,
            client,
            daemon_client,
            db,
            store,
            catalog,
            topology,
            publisher,
            connection,
            capacity,
            submitter_config: config.submitter,
            token,
            tasks,
            submitter: None,
            cleaned: false,
        }
    }

    /// Starts (or restarts) the submitter.
    pub fn start_submitter(&mut self) {
        let shared = Context::new(
            self.store.clone(),
            self.capacity.checker(),
            self.daemon_client.clone(),
            self.catalog.clone(),
            self.submitter_config.clone(),
            Arc::new(submitter::metrics::Metrics::default()),
        );
        let token = self.token.child_token();
        let run_token = token.clone();
        let handle = tokio::spawn(async move { Submitter::new(shared).run(run_token).await });
        self.submitter = Some((token, handle));
    }

    /// The capacity checker the submitters share (it outlives them, as in the daemon).
    pub fn checker(&self) -> Arc<dyn capacity::CapacityChecker> {
        self.capacity.checker()
    }

    /// Kills the submitter wherever it is (as a crash would, at an await point).
    pub async fn kill_submitter(&mut self) {
        if let Some((token, handle)) = self.submitter.take() {
            handle.abort();
            let _ = handle.await;
            token.cancel();
        }
    }

    /// Publishes a job (confirmed by the broker); gives it an id if it has none.
    pub async fn publish(&self, mut job: Value) -> JobId {
        let id = match job.get("id").and_then(Value::as_str) {
            Some(id) => id.parse().unwrap(),
            None => {
                let id = JobId::generate();
                job["id"] = Value::String(id.to_string());
                id
            }
        };
        let namespace = job["namespace"].as_str().unwrap_or_default().to_owned();
        let priority = job
            .get("priority")
            .and_then(Value::as_str)
            .unwrap_or("normal")
            .parse()
            .unwrap();
        let message = queues::Outgoing::raw(namespace, priority, serde_json::to_vec(&job).unwrap());
        self.publisher.publish(&message).await.unwrap();
        id
    }

    /// The stored job (panics if unknown).
    pub async fn job(&self, id: JobId) -> StoredJob {
        self.store
            .job(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("job {id} is not in the store"))
    }

    /// Waits until the job is in the store.
    pub async fn wait_stored(&self, id: JobId, timeout: Duration) {
        eventually(&format!("job {id} to be stored"), timeout, || async move {
            self.store.job(id).await.unwrap().map(|_| ())
        })
        .await;
    }

    /// Waits until the job reaches `state` (panics on another finished state first).
    pub async fn wait_state(&self, id: JobId, state: JobState, timeout: Duration) -> StoredJob {
        eventually(&format!("job {id} to be {state}"), timeout, || async move {
            let job = self.store.job(id).await.unwrap()?;
            if job.state == state {
                return Some(job);
            }
            let end = |s: JobState| {
                matches!(
                    s,
                    JobState::Succeeded | JobState::Dead | JobState::Cancelled
                )
            };
            assert!(
                !(end(job.state) && end(state)),
                "job {id} ended {} ({:?}), expected {state}",
                job.state,
                job.state_message
            );
            None
        })
        .await
    }

    /// Every SparkApplication in the cluster.
    pub async fn apps(&self) -> Vec<SparkApplication> {
        Api::<SparkApplication>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Every pod in the cluster.
    pub async fn pods(&self) -> Vec<Pod> {
        Api::<Pod>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
    }

    /// Stops every loop and removes the topology and the database.
    pub async fn cleanup(mut self) {
        self.token.cancel();
        if let Some((_, handle)) = self.submitter.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
        }
        for task in std::mem::take(&mut self.tasks) {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        if let Ok(ch) = self.connection.create_channel().await {
            let _ = self.topology.delete(&ch).await;
        }
        let _ = self.connection.close(200, "test done".into()).await;
        self.db.drop_database().await;
        self.sim.shutdown();
        self.cleaned = true;
    }
}

impl Drop for World {
    /// A failed test still removes its queues and database (on a thread of its own: the
    /// test's runtime may be unwinding).
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        self.token.cancel();
        let topology = self.topology.clone();
        let db = self.db.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let cleanup = async {
                    if let Ok(conn) = queues::amqp::connect(AMQP_URL, "e2e-cleanup").await
                        && let Ok(ch) = conn.create_channel().await
                    {
                        let _ = topology.delete(&ch).await;
                        let _ = conn.close(200, "cleanup".into()).await;
                    }
                    pg::drop_database(pg::PORT, &db).await;
                };
                let _ = tokio::time::timeout(Duration::from_secs(30), cleanup).await;
            });
        })
        .join();
    }
}

fn spawn_logged<E>(
    what: &'static str,
    fut: impl Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<()>
where
    E: std::fmt::Display + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = fut.await {
            eprintln!("{what} ended with an error: {e}");
        }
    })
}
