//! Intake: RabbitMQ → the job store, exactly once per job id.
//!
//! One worker task per namespace consumes that namespace's `high` and `normal` queues (one
//! channel each), plus one worker for `{p}.unroutable`. A worker takes whatever deliveries are
//! ready (up to `batch_max`), classifies each (`classify`: a job, or a dead letter with its
//! problems), stores the whole batch in **one transaction** ([`JobStore::take_in`]) and only
//! then acks it with a single `basic.ack multiple=true`. A crash anywhere before the ack means
//! redelivery, and the store's `ON CONFLICT (id) DO NOTHING` turns the copy into a no-op.
//!
//! - **High before normal**: the high queue's deliveries always win the (biased) select, and
//!   after a high batch the worker asks the broker (passive declare) whether more high
//!   messages are ready; while they are, normal deliveries wait.
//! - **Fair across namespaces**: workers are independent tasks with their own channels, so a
//!   flood in one namespace costs the others only shared CPU and database time.
//! - **Bounded window**: each (namespace, priority) may hold `max_pending` pending jobs in the
//!   store (catalog, default [`IntakeConfig::default_max_pending`]). When full, the worker
//!   keeps storing what the broker already sent but holds the acks; once a whole prefetch is
//!   held nothing can be in flight, so it cancels the consumer and acks (a quorum-queue
//!   consumer cancelled with deliveries in flight gets them back out of order). The window is
//!   exceeded by at most one prefetch, the backlog stays in RabbitMQ in order, and nothing is
//!   left unacked. It polls the store and consumes again when there is room.
//! - **Outages**: a failed commit is retried with exponential backoff and jitter, holding the
//!   batch (order kept, nothing acked). A lost broker connection ends the session (the intake
//!   connects without lapin's recovery, see [`amqp::connect_without_recovery`]); the
//!   supervisor reconnects with backoff, redeclares and restarts the workers, and the broker
//!   redelivers what was not acked.

mod classify;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod source;
mod worker;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::amqp;
use crate::error::{Error, Result};
use crate::outage::reconnecting;
use crate::store::JobStore;
use crate::topology::Topology;
use jobs::catalog::Catalog;

pub use self::classify::TRUNCATED_BODY_BYTES;
pub(crate) use self::classify::{Incoming, QueueKind, classify};

/// Intake settings.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// `amqp://user:pass@host:port/vhost`.
    pub amqp_url: String,
    /// Connection name shown by the broker.
    pub connection_name: String,
    /// Most messages per store transaction.
    pub batch_max: usize,
    /// Consumer prefetch per queue (also the most the window can be exceeded by).
    pub prefetch: u16,
    /// Pending-job window per (namespace, priority) when the catalog sets no `max_pending`.
    pub default_max_pending: u32,
    /// How often a full window is re-checked, and the high-queue backlog re-asked.
    pub poll_interval: Duration,
    /// How long shutdown waits for workers to finish their batch.
    pub shutdown_grace: Duration,
    /// Test hook: simulate a crash after a commit and before its ack.
    pub fault: FaultInjection,
}

impl IntakeConfig {
    /// Defaults: batches of up to 500, prefetch 1000, window 1000, poll every 250 ms,
    /// 10 s shutdown grace.
    pub fn new(amqp_url: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            connection_name: "orchestrator-intake".into(),
            batch_max: 500,
            prefetch: 1000,
            default_max_pending: 1000,
            poll_interval: Duration::from_millis(250),
            shutdown_grace: Duration::from_secs(10),
            fault: FaultInjection::default(),
        }
    }
}

/// Deterministic fault injection for tests (no effect unless armed).
#[derive(Debug, Clone, Default)]
pub struct FaultInjection {
    crash_after_commit: Arc<AtomicU32>,
}

impl FaultInjection {
    /// The next `n` batches "crash" after their commit, before their ack: the worker drops its
    /// channels (the broker redelivers the batch) and the supervisor restarts it.
    pub fn crash_after_commit(&self, n: u32) {
        self.crash_after_commit.store(n, Ordering::SeqCst);
    }

    /// Batches still set to crash.
    pub fn pending_crashes(&self) -> u32 {
        self.crash_after_commit.load(Ordering::SeqCst)
    }

    pub(crate) fn take_crash(&self) -> bool {
        self.crash_after_commit
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// The intake service: run it with [`Intake::run`] until its token is cancelled.
#[derive(Debug, Clone)]
pub struct Intake {
    store: JobStore,
    catalog: Arc<Catalog>,
    topology: Topology,
    config: IntakeConfig,
}

impl Intake {
    /// An intake for every namespace of the topology.
    pub fn new(
        store: JobStore,
        catalog: Arc<Catalog>,
        topology: Topology,
        config: IntakeConfig,
    ) -> Self {
        Self {
            store,
            catalog,
            topology,
            config,
        }
    }

    /// Consumes until `token` is cancelled. Connection trouble ends the session; the loop then reconnects (backoff with jitter), redeclares the
    /// topology and starts the workers again. Returns `Ok` on cancellation.
    pub async fn run(self, token: CancellationToken) -> Result<()> {
        reconnecting(
            &token,
            "intake",
            |e| self.store.metrics().error("intake", e),
            || self.session(&token),
        )
        .await
    }

    async fn session(&self, token: &CancellationToken) -> Result<()> {
        let connection =
            amqp::connect_without_recovery(&self.config.amqp_url, &self.config.connection_name)
                .await?;
        let declare_channel = connection.create_channel().await?;
        self.topology.declare(&declare_channel).await?;
        info!(
            namespaces = self.topology.namespaces().len(),
            prefix = self.topology.names().prefix(),
            "intake consuming"
        );
        let children = token.child_token();
        let session = Arc::new(worker::Session {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            names: self.topology.names().clone(),
            config: self.config.clone(),
            connection,
        });
        let mut workers = JoinSet::new();
        for ns in self.topology.namespaces() {
            let w = worker::Worker::namespace(session.clone(), ns);
            workers.spawn(w.run(children.clone()));
        }
        workers.spawn(worker::Worker::unroutable(session.clone()).run(children.clone()));

        let result = loop {
            tokio::select! {
                _ = token.cancelled() => break Ok(()),
                joined = workers.join_next() => match joined {
                    None => break Ok(()),
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => break Err(e),
                    Some(Err(join)) => break Err(Error::Crashed(format!("intake worker: {join}"))),
                },
            }
        };
        children.cancel();
        let drained = tokio::time::timeout(self.config.shutdown_grace, async {
            while workers.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                remaining = workers.len(),
                "intake workers did not finish within the grace period; abandoning them (their unacked messages will be redelivered)"
            );
            workers.abort_all();
        }
        drop(declare_channel);
        if let Err(e) = session
            .connection
            .close(200, "intake stopping".into())
            .await
        {
            tracing::debug!(error = %e, "closing the intake connection");
        }
        result
    }
}
