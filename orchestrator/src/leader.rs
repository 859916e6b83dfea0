//! Leader election through a Kubernetes Lease: one replica admits jobs and fires cron, the
//! others stand by and take over when the lease expires (its duration after the leader died)
//! or at once when the leader steps down cleanly.
//!
//! [`elect`] runs `kube-lease-manager` and publishes "do I lead" on a watch channel; when the
//! Kubernetes API is unreachable the replica stops leading (it cannot prove its lease) and
//! tries again with backoff.

use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::LeaderConfig;
use crate::metrics::DaemonMetrics;

/// Starts electing. The receiver says whether this replica leads now; the task ends after
/// `token` is cancelled, having released the lease if it held it.
pub fn elect(
    client: kube::Client,
    config: &LeaderConfig,
    identity: String,
    metrics: Arc<DaemonMetrics>,
    token: CancellationToken,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    if !config.enabled {
        info!(replica = %identity, "leader election off: this replica leads");
        metrics.set_leader(&identity, true);
        let _ = tx.send(true);
        let task = tokio::spawn(async move {
            token.cancelled().await;
            drop(tx);
        });
        return (rx, task);
    }
    let config = config.clone();
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            let duration = config.lease_duration.0.as_secs().max(2);
            let built = LeaseManagerBuilder::new(client.clone(), &config.lease_name)
                .with_namespace(&config.lease_namespace)
                .with_identity(&identity)
                .with_duration(duration)
                .with_grace((duration / 3).max(1))
                .build()
                .await;
            let manager = match built {
                Ok(m) => m,
                Err(e) => {
                    failures += 1;
                    warn!(error = %e, "cannot set up the leader lease; retrying");
                    if sleep_or_cancel(backoff(failures), &token).await {
                        return;
                    }
                    continue;
                }
            };
            let (mut lease_rx, lease_task) = manager.watch().await;
            loop {
                let leads = *lease_rx.borrow_and_update();
                if *tx.borrow() != leads {
                    info!(replica = %identity, leads, "leadership changed");
                    metrics.set_leader(&identity, leads);
                    let _ = tx.send(leads);
                }
                tokio::select! {
                    () = token.cancelled() => {
                        // Dropping the receiver makes the manager release the lease.
                        drop(lease_rx);
                        let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
                        metrics.set_leader(&identity, false);
                        let _ = tx.send(false);
                        return;
                    }
                    changed = lease_rx.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        failures = 0;
                    }
                }
            }
            // The manager stopped (API errors): we can no longer prove the lease.
            match lease_task.await {
                Ok(Err(e)) => warn!(error = %e, "leader lease lost"),
                Ok(Ok(_)) => warn!("leader lease manager stopped"),
                Err(e) => warn!(error = %e, "leader lease task failed"),
            }
            metrics.set_leader(&identity, false);
            let _ = tx.send(false);
            failures += 1;
            if sleep_or_cancel(backoff(failures), &token).await {
                return;
            }
        }
    });
    (rx, task)
}

/// 0.5 s doubling to 10 s, with up to 50% jitter.
fn backoff(failures: u32) -> Duration {
    let base = 0.5 * 2f64.powi(i32::try_from(failures.min(5)).unwrap_or(5));
    let jitter = 1.0 + rand::random::<f64>() * 0.5;
    Duration::from_secs_f64((base * jitter).min(10.0))
}

/// Sleeps; `true` if cancelled first.
async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = token.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

/// This process's default identity: host name and process id.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "orchestrator".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(1) >= Duration::from_secs(1));
        assert!(backoff(1) <= Duration::from_millis(1500));
        for n in [5, 6, 50, u32::MAX] {
            assert_eq!(
                backoff(n),
                Duration::from_secs(10),
                "capped from the fifth failure"
            );
        }
    }
}
