//! One test's world: kube-sim, a fresh database, a unique RabbitMQ topology, and the real
//! daemon (`orchestrator::daemon::Daemon`, what `orchestrator run` starts) on them, so the
//! tests check the wiring that ships.
//!
//! The daemon starts as a standby: the world holds its leader Lease as another replica would,
//! so intake, relay, housekeeping, the capacity watches and the API run while nothing is
//! admitted. [`World::start_submitter`] lets the Lease go and waits until the daemon leads
//! (admission, tracking and cron start); [`World::crash_daemon`] kills it mid-flight and
//! starts a new one, as `kill -9` and a restart would.

use std::sync::Arc;
use std::time::Duration;

use capacity::CapacityConfig;
use jobs::{Catalog, CatalogConfig, JobId, JobState};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_sim::{AuthConfig, PoolConfig, SimConfig, SimHandle, Simulator};
use orchestrator::config::Config;
use orchestrator::daemon::Daemon;
use queues::store::StoredJob;
use queues::{JobStore, Names, Publisher, Topology, TopologyConfig};
use serde_json::Value;
use submitter::config::SubmitterConfig;
use submitter::kube_apps::SparkApplication;

use crate::lease::HeldLease;
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
    /// daemon uses).
    pub daemon_client: kube::Client,
    /// The test database.
    pub db: TestDb,
    /// A job store on it, for the tests' own looks.
    pub store: JobStore,
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// The RabbitMQ topology (unique prefix).
    pub topology: Topology,
    /// A publisher on it.
    pub publisher: Publisher,
    connection: lapin::Connection,
    config: Config,
    identity: String,
    daemon: Option<Daemon>,
    lease: Option<HeldLease>,
    cleaned: bool,
}

/// The daemon's config: the world's catalog, broker prefix and database, the API on a free
/// port without tokens, and the Lease `deploy/base` grants, short so takeovers after a crash
/// are quick.
fn daemon_config(config: &WorldConfig, prefix: &str, db: &str) -> Config {
    let text = format!(
        "{catalog}\n[amqp]\nurl = \"{AMQP_URL}\"\nprefix = \"{prefix}\"\n\
         [database]\nurl = \"{url}\"\nmax_connections = 8\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [auth]\ndisabled = true\n[leader]\nlease_name = \"{lease}\"\nlease_namespace = \"{ns}\"\n\
         lease_duration = \"2s\"\n[shutdown]\ntimeout = \"30s\"\n",
        catalog = config.catalog,
        url = pg::url(db),
        lease = deploy::DAEMON_NAME,
        ns = deploy::DAEMON_NAMESPACE,
    );
    let mut daemon = Config::from_toml_str(&text, "e2e daemon config").unwrap();
    daemon.submitter = config.submitter.clone();
    daemon.capacity = config.capacity.clone();
    daemon
}

impl World {
    /// Builds everything and starts the daemon as a standby (see the module doc); the
    /// submitter starts with [`World::start_submitter`].
    pub async fn start(config: WorldConfig) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        // The daemon runs as the ServiceAccount of deploy/base, under its RBAC; tests act as
        // admin. Without RBAC the Lease's namespace is still needed.
        let cluster = if config.rbac {
            config
                .cluster
                .clone()
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
            config
                .cluster
                .clone()
                .with_namespace(deploy::DAEMON_NAMESPACE)
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
        let store = JobStore::new(
            db.pool.clone(),
            Names::new(prefix.clone()).unwrap(),
            metrics,
        );
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

        // Held before the daemon starts, so it starts as a standby.
        let lease = HeldLease::take(
            client.clone(),
            deploy::DAEMON_NAMESPACE,
            deploy::DAEMON_NAME,
        )
        .await;
        let mut world = Self {
            sim,
            client,
            daemon_client,
            config: daemon_config(&config, &prefix, &db.name),
            identity: format!("{prefix}-daemon"),
            db,
            store,
            catalog,
            topology,
            publisher,
            connection,
            daemon: None,
            lease: Some(lease),
            cleaned: false,
        };
        world.daemon = Some(world.start_daemon().await);
        world
    }

    /// Starts a daemon (the world's identity: a restarted replica) with its watches ready.
    async fn start_daemon(&self) -> Daemon {
        let daemon = Daemon::start(
            self.config.clone(),
            self.daemon_client.clone(),
            self.identity.clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("the daemon did not start: {e}"));
        daemon
            .capacity()
            .wait_ready(Duration::from_secs(30))
            .await
            .unwrap();
        daemon
    }

    /// The running daemon.
    pub fn daemon(&self) -> &Daemon {
        self.daemon
            .as_ref()
            .expect("the world has a daemon until cleanup")
    }

    /// Lets the leader Lease go, restarts the standby (see [`crate::lease`]) and waits until
    /// it leads: admission, tracking and cron run from now on.
    pub async fn start_submitter(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.release().await;
            if let Some(standby) = self.daemon.take() {
                standby.shutdown().await;
            }
            self.daemon = Some(self.start_daemon().await);
        }
        let mut leads = self.daemon().leadership();
        tokio::time::timeout(Duration::from_secs(60), leads.wait_for(|l| *l))
            .await
            .expect("the daemon took the lease within 60 s")
            .unwrap();
    }

    /// Kills the daemon wherever it is (as `kill -9` would) and starts a new one, which
    /// leads again unless the world still holds the Lease.
    pub async fn crash_daemon(&mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.kill().await;
        }
        self.daemon = Some(self.start_daemon().await);
    }

    /// The daemon's capacity checker (its ledger of promised room).
    pub fn checker(&self) -> Arc<dyn capacity::CapacityChecker> {
        self.daemon().capacity().checker()
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

    /// How many SparkApplications kube-sim holds, read off its stats in the process (no
    /// request): for loops that poll it without loading the API server they watch.
    pub fn apps_created(&self) -> usize {
        self.sim.stats()["objects"]["sparkapplications.sparkoperator.k8s.io"]
            .as_u64()
            .unwrap_or(0) as usize
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

    /// Stops the daemon and removes the topology and the database.
    pub async fn cleanup(mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await;
        }
        if let Some(lease) = self.lease.take() {
            lease.release().await;
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
        // The daemon's and the lease's tasks end with the test's runtime.
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
