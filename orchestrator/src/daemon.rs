//! `orchestrator run`: every loop of the product in one process.
//!
//! Every replica takes jobs in (intake), publishes the outbox (relay), keeps the store tidy
//! (maintenance), watches the cluster (capacity) and serves the API. Only the leader (see
//! [`crate::leader`]) admits jobs (submitter) and fires cron; when leadership moves, the
//! leader-only group stops here and starts on the new leader. Shutdown goes in the order
//! that loses nothing: stop taking jobs, finish in-flight decisions, release the lease, stop
//! the relay (after the batch it is publishing; unsent rows stay in the outbox for the next
//! relay), close connections — all within a deadline.

mod health;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use capacity::Capacity;
use prometheus_client::registry::Registry;
use queues::maintenance::{MaintenanceConfig, run_maintenance};
use queues::{Intake, IntakeConfig, JobStore, Names, Relay, RelayConfig, Topology, TopologyConfig};
use submitter::context::Context;
use submitter::service::Submitter;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, error, info, info_span, warn};

pub use self::health::Health;
use crate::config::Config;
use crate::cron::runner::CronRunner;
use crate::http::ApiState;
use crate::http::auth::Authenticator;
use crate::leader;
use crate::metrics::{CronMetrics, DaemonMetrics};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// PostgreSQL unreachable or migrations failed.
    #[error("job store: {0}")]
    Store(#[source] queues::Error),
    /// RabbitMQ unreachable or the topology could not be declared.
    #[error("broker: {0}")]
    Broker(#[source] queues::Error),
    /// The HTTP listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The `[auth]` section is unusable.
    #[error("auth: {0}")]
    Auth(String),
}

/// A running daemon.
pub struct Daemon {
    identity: String,
    http_addr: SocketAddr,
    store: JobStore,
    capacity: Capacity,
    leader: watch::Receiver<bool>,
    shutdown_timeout: Duration,
    /// Stops intake first.
    intake_token: CancellationToken,
    /// Stops the leader-only group and the lease.
    leader_token: CancellationToken,
    /// Stops everything else.
    token: CancellationToken,
    intake: Vec<JoinHandle<()>>,
    leader_tasks: Vec<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
    connection: lapin::Connection,
}

impl Daemon {
    /// Connects, migrates (if configured), declares the topology, and starts every loop.
    pub async fn start(
        config: Config,
        client: kube::Client,
        identity: String,
    ) -> Result<Self, StartError> {
        let catalog = Arc::new(config.catalog.clone());
        let names = Names::new(config.amqp.prefix.clone()).map_err(StartError::Broker)?;
        let mut registry = Registry::default();
        let queue_metrics = Arc::new(queues::Metrics::default());
        queue_metrics.register(&mut registry);
        let capacity_metrics = capacity::Metrics::new();
        capacity_metrics.register(&mut registry);
        let submitter_metrics = Arc::new(submitter::metrics::Metrics::default());
        submitter_metrics.register(&mut registry);
        let cron_metrics = Arc::new(CronMetrics::default());
        cron_metrics.register(&mut registry);
        let daemon_metrics = Arc::new(DaemonMetrics::default());
        daemon_metrics.register(&mut registry);

        let store = JobStore::connect(
            &config.database.url,
            config.database.max_connections,
            names,
            queue_metrics,
        )
        .await
        .map_err(StartError::Store)?;
        if config.database.migrate_on_start {
            store.migrate().await.map_err(StartError::Store)?;
        }
        let topology = Topology::new(TopologyConfig::new(config.amqp.prefix.clone()), &catalog)
            .map_err(StartError::Broker)?;
        let connection = queues::amqp::connect(&config.amqp.url, &format!("{identity}-control"))
            .await
            .map_err(StartError::Broker)?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| StartError::Broker(e.into()))?;
        topology
            .declare(&channel)
            .await
            .map_err(StartError::Broker)?;
        let _ = channel.close(200, "topology declared".into()).await;

        let listener = tokio::net::TcpListener::bind(&config.http.listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: config.http.listen.clone(),
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.http.listen.clone(),
            source,
        })?;

        let token = CancellationToken::new();
        let intake_token = CancellationToken::new();
        let leader_token = CancellationToken::new();
        let mut tasks = Vec::new();
        let mut intake_tasks = Vec::new();

        let mut intake_config = IntakeConfig::new(config.amqp.url.clone());
        intake_config.connection_name = format!("{identity}-intake");
        let intake = Intake::new(
            store.clone(),
            catalog.clone(),
            topology.clone(),
            intake_config,
        );
        intake_tasks.push(spawn("intake", intake.run(intake_token.clone())));

        let mut relay_config = RelayConfig::new(config.amqp.url.clone());
        relay_config.connection_name = format!("{identity}-relay");
        tasks.push(spawn(
            "relay",
            Relay::new(store.clone(), relay_config).run(token.clone()),
        ));
        let maintenance = MaintenanceConfig {
            retention: config.database.retention.map(|d| d.0),
            ..MaintenanceConfig::default()
        };
        tasks.push(spawn(
            "maintenance",
            run_maintenance(store.clone(), maintenance, token.clone()),
        ));

        let capacity = Capacity::new(client.clone(), &config.capacity, capacity_metrics);
        let runner = capacity.clone();
        let capacity_token = token.clone();
        tasks.push(spawn("capacity", async move {
            runner.run(capacity_token).await
        }));

        let health = Health::new(store.clone(), connection.status().clone(), client.clone());
        let auth = Authenticator::new(&config.auth).map_err(StartError::Auth)?;
        if auth.disabled() {
            warn!(
                "API authentication is OFF ([auth] disabled = true): anyone who can reach the port is admin"
            );
        }
        let api = crate::http::router(
            ApiState::new(
                store.clone(),
                catalog.clone(),
                Arc::new(auth),
                registry,
                Arc::new(health),
            )
            .with_cluster(Arc::new(capacity.clone())),
        );
        tasks.push(spawn(
            "http",
            crate::http::serve(listener, api, token.clone()),
        ));

        let (leader_rx, lease_task) = leader::elect(
            client.clone(),
            &config.leader,
            identity.clone(),
            daemon_metrics,
            leader_token.clone(),
        );
        let submitter = Arc::new(Submitter::new(Context::new(
            store.clone(),
            capacity.checker(),
            client,
            catalog.clone(),
            config.submitter.clone(),
            submitter_metrics,
        )));
        let mut cron = CronRunner::new(store.clone(), catalog, cron_metrics);
        cron.interval = config.cron.interval.0;
        let leading = tokio::spawn(
            lead_when_elected(leader_rx.clone(), submitter, cron, leader_token.clone())
                .instrument(info_span!("leader", replica = %identity)),
        );

        info!(replica = %identity, http = %http_addr, "orchestrator started");
        Ok(Self {
            identity,
            http_addr,
            store,
            capacity,
            leader: leader_rx,
            shutdown_timeout: config.shutdown.timeout.0,
            intake_token,
            leader_token,
            token,
            intake: intake_tasks,
            leader_tasks: vec![leading, lease_task],
            tasks,
            connection,
        })
    }

    /// Where the API listens (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// A receiver of leadership changes.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.clone()
    }

    /// The job store (tests, diagnostics).
    pub fn store(&self) -> &JobStore {
        &self.store
    }

    /// The cluster view the submitter admits against: its watches, and the checker whose
    /// ledger holds the room promised to admitted jobs (tests look at both).
    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    /// Stops at once, every loop wherever it is, as `kill -9` stops the process: no round is
    /// finished, nothing is flushed, connections drop without a goodbye. Crash tests use it to
    /// check that what is durable is enough; [`Daemon::shutdown`] is the way to stop.
    pub async fn kill(self) {
        warn!(replica = %self.identity, "killed");
        for task in self
            .intake
            .into_iter()
            .chain(self.leader_tasks)
            .chain(self.tasks)
        {
            task.abort();
            let _ = task.await;
        }
        // The watch streams the loops spawned end with their tokens, as with the process.
        self.intake_token.cancel();
        self.leader_token.cancel();
        self.token.cancel();
    }

    /// Stops in order: intake (nothing new taken; unacked messages return to RabbitMQ),
    /// the leader group (the admission round in progress finishes) and the lease (released
    /// so a standby takes over at once), then relay, maintenance, capacity and the API, and
    /// finally the connections. Gives up on a stage at the deadline.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        info!(replica = %self.identity, "shutting down");
        self.intake_token.cancel();
        join_until(self.intake, deadline, "intake").await;
        self.leader_token.cancel();
        join_until(self.leader_tasks, deadline, "leader group").await;
        self.token.cancel();
        join_until(self.tasks, deadline, "background loops").await;
        let _ = self.connection.close(200, "shutdown".into()).await;
        self.store.pool().close().await;
        info!(replica = %self.identity, "stopped");
    }
}

/// Runs the submitter and the cron loop while this replica leads.
async fn lead_when_elected(
    mut leader: watch::Receiver<bool>,
    submitter: Arc<Submitter>,
    cron: CronRunner,
    token: CancellationToken,
) {
    loop {
        // Wait to lead.
        loop {
            if *leader.borrow_and_update() {
                break;
            }
            tokio::select! {
                () = token.cancelled() => return,
                changed = leader.changed() => if changed.is_err() { return },
            }
        }
        info!("leading: admitting jobs and firing cron");
        let group = token.child_token();
        let admitter = submitter.clone();
        let sub_token = group.clone();
        // Aborted with this task (a killed daemon), not left running on their own.
        let admit =
            AbortOnDropHandle::new(tokio::spawn(async move { admitter.run(sub_token).await }));
        let fire = AbortOnDropHandle::new(tokio::spawn(cron.clone().run(group.clone())));
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                changed = leader.changed() => {
                    if changed.is_err() || !*leader.borrow_and_update() {
                        break;
                    }
                }
            }
        }
        warn!("no longer leading: stopping admission and cron");
        group.cancel();
        let _ = admit.await;
        let _ = fire.await;
        if token.is_cancelled() {
            return;
        }
    }
}

/// Spawns a loop that returns a `Result`, logging how it ended.
fn spawn<E: std::fmt::Display + Send + 'static>(
    name: &'static str,
    fut: impl Future<Output = Result<(), E>> + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(
        async move {
            match fut.await {
                Ok(()) => info!("stopped"),
                Err(e) => error!(error = %e, "stopped with an error"),
            }
        }
        .instrument(info_span!("loop", name)),
    )
}

/// Awaits tasks until the deadline, then aborts the rest.
async fn join_until(tasks: Vec<JoinHandle<()>>, deadline: tokio::time::Instant, what: &str) {
    for mut task in tasks {
        if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
            warn!(what, "did not stop before the shutdown deadline; aborting");
            task.abort();
        }
    }
}
