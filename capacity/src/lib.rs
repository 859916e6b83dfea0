//! Capacity checking: can the cluster run a Spark application's driver **and** its executors
//! right now — and if not, is it worth waiting?
//!
//! **Vocabulary** (the contract with the submitter): [`model`] describes demands (a gang of
//! pods), [`view`] what the cluster offers, [`verdict`] the answer (fits / wait / never).
//!
//! **Pure decisions**: [`fit`] holds the scheduler's usage-free filters (selectors, taints,
//! cordons) and `fits_ever` (never vs wait); [`pack`] packs a gang best-fit-decreasing over a
//! [`pack::WorkingSet`] of free capacity (existing nodes and nodes autoscaling pools can add)
//! and holds room for a blocked head; [`decide`] orders the checks into a verdict and
//! [`shortfall`] explains a wait; [`ledger`] remembers capacity promised to admitted gangs until
//! their pods carry it. [`quantity`] and [`convert`] turn Kubernetes objects into this data.
//!
//! **Data flow**: kube watchers ([`snapshot`]) feed Node, Pod and ResourceQuota events into the
//! incremental [`cache`] (per-node and per-namespace sums, the ledger converting as pods
//! appear) → `view()` copies it for the submitter's ordering round, `check()` packs one gang
//! over it → the [`dryrun`] and [`placeholders`] strategies confirm a snapshot fit with the API
//! server (admission) or the scheduler (pause pods, built by [`podspec`]) → `reserve()` records
//! the placement in the ledger, `release()` drops it. [`service::Capacity`] wires the strategy
//! chosen in [`config`] with its background tasks; [`metrics`] exports verdicts, latency,
//! cluster and ledger gauges. [`testing`] has builders for tests and benchmarks.

#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod convert;
pub mod decide;
pub mod dryrun;
pub mod fit;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod pack;
pub mod placeholders;
pub mod podspec;
pub mod progress;
pub mod quantity;
pub mod service;
pub mod shortfall;
pub mod snapshot;
pub mod summary;
pub mod testing;
pub mod verdict;
pub mod view;

pub use model::{GangDemand, PodDemand, PodRole, Resources, Taint, TaintEffect, Toleration};
pub use verdict::{
    NeverKind, NeverReason, Placement, Resource, ScaleUp, Verdict, WaitKind, WaitReason,
};
pub use view::{AutoscalePool, ClusterView, NodeView, QuotaView};

pub use config::{CapacityConfig, Strategy};
pub use decide::decide;
pub use fit::fits_ever;
pub use ledger::Ledger;
pub use metrics::Metrics;
pub use pack::WorkingSet;
pub use progress::{DriverState, PodProgress};
pub use service::Capacity;
pub use shortfall::Shortfall;
pub use summary::ClusterSummary;

/// Errors of the capacity checker (the API server unreachable, a cache not yet synced, …).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster state is not known yet (watch caches still syncing).
    #[error("the cluster snapshot is not ready: {0}")]
    NotReady(String),
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(String),
}

impl Error {
    /// Metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::NotReady(_) => "not-ready",
            Error::Kube(_) => "kube",
        }
    }
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A capacity-checking strategy (snapshot, dry-run, placeholders), chosen in config.
///
/// The submitter calls [`view`](CapacityChecker::view) to order and backfill jobs, then
/// [`check`](CapacityChecker::check) for each job it wants to admit, and
/// [`reserve`](CapacityChecker::reserve) right after a `Fits` so that the next decision does
/// not spend the same room before the application's pods exist.
#[async_trait::async_trait]
pub trait CapacityChecker: Send + Sync {
    /// Strategy name for metrics and logs (`snapshot`, `dry-run`, `placeholders`).
    fn name(&self) -> &'static str;

    /// The cluster now, ledger reservations counted as requested. Cheap (no API call); shared
    /// while the cluster and the ledger stay as they are.
    fn view(&self) -> Result<std::sync::Arc<ClusterView>>;

    /// Whether placements are binding: the submitter pins each admitted gang's pods to the
    /// nodes of its placement, and the ledger offers those nodes to no other gang until all
    /// its pods are bound ([`Ledger::with_exclusive_nodes`]).
    fn binding_placements(&self) -> bool;

    /// The verdict for one gang now, including the strategy's own confirmation.
    async fn check(&self, demand: &GangDemand) -> Result<Verdict>;

    /// Promises the placed capacity to the gang until its pods appear (or the entry expires).
    fn reserve(&self, demand: &GangDemand, placement: &Placement);

    /// Drops a promise (submission failed, job cancelled or finished).
    fn release(&self, key: &str);
}
