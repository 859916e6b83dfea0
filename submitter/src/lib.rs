//! The admission loop: turns pending jobs into running Spark applications, in a fair,
//! priority-respecting order, only when the cluster can hold the driver and its executors.
//!
//! Data flow: pending jobs → [`footprint`] (each job's pods, sized exactly as Spark sizes them)
//! → [`ordering::decide`] (who goes next, over the capacity checker's view through
//! [`room::ClusterRoom`]: priority, fair shares, FIFO, holds and backfill, never-fits) →
//! [`admission`] confirms each admission with the capacity strategy and creates the
//! `SparkApplication` that [`spark_app`] renders from the same footprint, named and labelled by
//! [`naming`] so a retried create adopts instead of duplicating ([`kube_apps`]) → the
//! [`reconcile`] loop keeps the store in step with what the watches show of applications and
//! pods, which [`app_status`] classifies (states, failure categories, stuck detection),
//! deciding retries that learn from the failure. [`preemption`] chooses which running
//! applications a blocked higher-priority job may stop (pure), and [`preempt`] acts on it in
//! the round (requeue, delete, event, room held in the ledger for the preemptor);
//! [`estimate`] replays [`ordering::decide`] forward to say when each waiting job starts
//! (pure; not yet served). [`service`]
//! runs both loops; [`config`] and [`metrics`] are their settings and instruments.

#![forbid(unsafe_code)]

pub mod admission;
pub mod app_status;
pub mod config;
pub mod context;
pub mod estimate;
pub mod flight;
pub mod footprint;
pub mod kube_apps;
pub mod metrics;
pub mod naming;
pub mod ordering;
pub mod preempt;
pub mod preemption;
pub mod reconcile;
pub mod room;
pub mod service;
pub mod sizes;
pub mod spark_app;

/// The submitter's errors; each loop logs them, counts them and tries again next time.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] queues::Error),
    /// The capacity checker failed (not ready, API errors).
    #[error(transparent)]
    Capacity(#[from] capacity::Error),
    /// A Kubernetes call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// An application could not be rendered (a bug: the job was validated).
    #[error("cannot render the SparkApplication: {0}")]
    Render(String),
    /// A batch of admissions could not be recorded: every job of it shares the one error.
    #[error("recording a batch of admissions: {0}")]
    Batch(std::sync::Arc<queues::Error>),
}

impl Error {
    /// Metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Store(e) => e.metric_label(),
            Error::Capacity(e) => e.metric_label(),
            Error::Kube(_) => "kube",
            Error::Render(_) => "render",
            Error::Batch(e) => e.metric_label(),
        }
    }
}

/// Result alias for the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
