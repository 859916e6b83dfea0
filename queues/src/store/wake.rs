//! Event-driven admission: the migration `queued_notify` makes every transaction that leaves a
//! job `queued` send one `NOTIFY` on [`QUEUED_CHANNEL`] at commit, from whichever replica (or
//! tool) wrote it; the leader listens here and runs a round at once instead of waiting for the
//! interval. A notification is only a hint: the interval still runs rounds, so one lost while
//! the listener reconnects costs at most one interval.

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::JobStore;
use crate::error::Result;
use crate::outage::reconnecting;

/// The channel the `jobs_queued_notify` trigger notifies.
pub const QUEUED_CHANNEL: &str = "orchestrator_job_queued";

impl JobStore {
    /// Calls `wake` after each committed transaction that made a job `queued`, and once each
    /// time listening (re)starts (jobs may have been queued while nobody listened), until
    /// `token` is cancelled. A lost connection is reopened with the outage backoff.
    pub async fn watch_queued(&self, token: &CancellationToken, wake: impl Fn()) -> Result<()> {
        reconnecting(
            token,
            "queued-job listener",
            |_| {},
            || async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener.listen(QUEUED_CHANNEL).await?;
                wake();
                loop {
                    // `try_recv` returns `None` when the connection dropped and sqlx reconnected:
                    // notifications may have been missed meanwhile, so that wakes too.
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        received = listener.try_recv() => {
                            received?;
                            wake();
                        }
                    }
                }
            },
        )
        .await
    }
}
