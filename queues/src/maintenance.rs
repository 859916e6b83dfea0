//! The store's housekeeping loop: due retries become pending again, overdue pending jobs
//! expire into the DLQ (ttl), the depth gauges are refreshed, and — less often — retention
//! deletes finished jobs older than the configured age, in batches.
//!
//! Everything it does is also a [`JobStore`] method, so tests drive each step directly with
//! a chosen `now` instead of waiting for the clock.

use std::time::Duration;

use chrono::Utc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::Result;
use crate::metrics::QueueLabels;
use crate::store::JobStore;

/// Housekeeping settings.
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// How often retries, ttl expiry and gauges are handled.
    pub interval: Duration,
    /// Finished jobs older than this are deleted; `None` keeps everything.
    pub retention: Option<Duration>,
    /// How often retention runs.
    pub retention_interval: Duration,
    /// Rows per statement (retries promoted, jobs expired, rows deleted).
    pub batch: u32,
}

impl Default for MaintenanceConfig {
    /// Every second; retention of 30 days, checked hourly; batches of 1000.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            retention: Some(Duration::from_secs(30 * 24 * 3600)),
            retention_interval: Duration::from_secs(3600),
            batch: 1000,
        }
    }
}

/// Runs housekeeping until `token` is cancelled. Failures are logged and counted; the next
/// tick tries again (the tick itself is the backoff).
pub async fn run_maintenance(
    store: JobStore,
    config: MaintenanceConfig,
    token: CancellationToken,
) -> Result<()> {
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut retention_tick = tokio::time::interval(config.retention_interval);
    retention_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = housekeeping(&store, config.batch).await {
                    store.metrics().error("maintenance", &e);
                    warn!(error = %e, "housekeeping failed; retrying next tick");
                }
            }
            _ = retention_tick.tick() => {
                let Some(age) = config.retention else { continue };
                let Ok(age) = chrono::Duration::from_std(age) else { continue };
                match store.delete_finished_before(Utc::now() - age, config.batch).await {
                    Ok(report) => info!(jobs = report.jobs, dead_letters = report.dead_letters, outbox = report.outbox, "retention"),
                    Err(e) => {
                        store.metrics().error("maintenance", &e);
                        warn!(error = %e, "retention failed; retrying next time");
                    }
                }
            }
        }
    }
    Ok(())
}

/// One round: promote due retries, expire overdue jobs (both until done), refresh gauges.
pub async fn housekeeping(store: &JobStore, batch: u32) -> Result<()> {
    let now = Utc::now();
    loop {
        let n = store.promote_due_retries(now, batch).await?;
        if n > 0 {
            debug!(n, "retries due");
        }
        if n < u64::from(batch) {
            break;
        }
    }
    loop {
        let n = store.expire_overdue(now, batch).await?;
        if n > 0 {
            info!(n, "jobs expired (ttl)");
        }
        if n < u64::from(batch) {
            break;
        }
    }
    let metrics = store.metrics();
    let stats = store.queue_stats().await?;
    metrics.queue_depth.clear();
    metrics.queue_oldest_wait.clear();
    for q in stats {
        let labels = QueueLabels {
            namespace: q.namespace.clone(),
            priority: q.priority.as_str().to_owned(),
        };
        let depth = i64::try_from(q.queued + q.waiting).unwrap_or(i64::MAX);
        metrics.queue_depth.get_or_create(&labels).set(depth);
        if let Some(oldest) = q.oldest_queued_at {
            let age = (now - oldest).num_seconds().max(0);
            metrics.queue_oldest_wait.get_or_create(&labels).set(age);
        }
    }
    Ok(())
}
