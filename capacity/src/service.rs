//! The configured strategy and its background work, for the daemon: build one [`Capacity`]
//! from config, hand [`Capacity::checker`] to the submitter, spawn [`Capacity::run`] with a
//! child token, and gate readiness on [`Capacity::wait_ready`].

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{CapacityConfig, Strategy};
use crate::dryrun::DryRunChecker;
use crate::metrics::Metrics;
use crate::placeholders::PlaceholderChecker;
use crate::snapshot::SnapshotChecker;
use crate::summary::ClusterSummary;
use crate::{CapacityChecker, Result};

/// The capacity checker chosen in config, with the tasks that keep it current. Clones share
/// the same checker (run it once).
#[derive(Clone)]
pub struct Capacity {
    snapshot: Arc<SnapshotChecker>,
    placeholders: Option<Arc<PlaceholderChecker>>,
    checker: Arc<dyn CapacityChecker>,
}

impl Capacity {
    /// Builds the strategy; nothing talks to the API server until [`Capacity::run`]. The
    /// config should have passed [`CapacityConfig::validate`].
    pub fn new(client: kube::Client, config: &CapacityConfig, metrics: Metrics) -> Self {
        let snapshot = Arc::new(SnapshotChecker::new(client, config, metrics));
        let (checker, placeholders): (Arc<dyn CapacityChecker>, _) = match config.strategy {
            Strategy::Snapshot => (snapshot.clone(), None),
            Strategy::DryRun => (
                Arc::new(DryRunChecker::new(snapshot.clone(), config.dry_run.clone())),
                None,
            ),
            Strategy::Placeholders => {
                let p = Arc::new(PlaceholderChecker::new(
                    snapshot.clone(),
                    config.placeholders.clone(),
                ));
                (p.clone(), Some(p))
            }
        };
        Capacity {
            snapshot,
            placeholders,
            checker,
        }
    }

    /// The checker the submitter uses.
    pub fn checker(&self) -> Arc<dyn CapacityChecker> {
        self.checker.clone()
    }

    /// The snapshot underneath every strategy (diagnostics, tests).
    pub fn snapshot(&self) -> &Arc<SnapshotChecker> {
        &self.snapshot
    }

    /// The cluster per pool now (the console's cluster view; see [`crate::summary`]).
    pub fn summary(&self) -> ClusterSummary {
        self.snapshot.summary()
    }

    /// How far application `app`'s pods have come.
    pub fn app_pods(&self, namespace: &str, app: &str) -> crate::PodProgress {
        self.snapshot.app_pods(namespace, app)
    }

    /// Waits until the watch caches have synced, at most `timeout`; `Err(NotReady)` after.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.snapshot.wait_ready(timeout).await
    }

    /// Runs the watches (and, for placeholders, deletions and the sweeper) until `token` is
    /// cancelled.
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        match &self.placeholders {
            None => self.snapshot.run(token).await,
            Some(p) => {
                let (a, b) = tokio::join!(self.snapshot.run(token.clone()), p.run(token));
                a.and(b)
            }
        }
    }
}
