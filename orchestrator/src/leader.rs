//! Leader election through a Kubernetes Lease: one replica admits jobs and fires cron, the
//! others stand by and take over when the lease expires (its duration after the leader died)
//! or at once when the leader steps down cleanly.
//!
//! [`elect`] runs `kube-lease-manager` and publishes "do I lead" on a watch channel; when the
//! Kubernetes API is unreachable the replica stops leading (it cannot prove its lease) and
//! tries again with backoff.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
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
        let mut pauses = backoff();
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
                    warn!(error = %e, "cannot set up the leader lease; retrying");
                    if sleep_or_cancel(next_pause(&mut pauses), &token).await {
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
                        pauses = backoff();
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
            if sleep_or_cancel(next_pause(&mut pauses), &token).await {
                return;
            }
        }
    });
    (rx, task)
}

/// The pauses between failed lease attempts: 0.5 s doubling to 10 s, with jitter, forever
/// (the loop ends by cancellation); restarted after each success.
fn backoff() -> ExponentialBackoff {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(10))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

fn next_pause(pauses: &mut ExponentialBackoff) -> Duration {
    pauses.next().unwrap_or(Duration::from_secs(10))
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
        for _ in 0..50 {
            let pauses: Vec<Duration> = backoff().take(12).collect();
            assert_eq!(pauses.len(), 12, "it never gives up on its own");
            assert!(pauses[0] >= Duration::from_millis(500), "{pauses:?}");
            assert!(pauses[0] < Duration::from_secs(1), "{pauses:?}");
            assert!(pauses[3] >= Duration::from_secs(4), "doubling: {pauses:?}");
            assert!(
                pauses.iter().all(|p| *p <= Duration::from_secs(20)),
                "capped (jitter at most doubles the 10 s cap): {pauses:?}"
            );
        }
    }
}
