//! Event-driven admission: the migration `queued_notify` makes every transaction that leaves a
//! job `queued` send one `NOTIFY` on [`QUEUED_CHANNEL`] at commit, from whichever replica (or
//! tool) wrote it; the leader listens here and runs a round at once instead of waiting for the
//! interval. A notification is only a hint: the interval still runs rounds, so one lost while
//! the listener reconnects costs at most one interval.
//!
//! The same listener hears [`PENDING_CHANNEL`] (migration `pending_notify`): any change to what
//! the pending heads show, which tells the round's [`HeadsCache`] to read them again. Since a
//! connection that died silently hears nothing either, the listener asks its connection for a
//! `SELECT 1` every [`HEARTBEAT`]: an answer keeps the cache's heads usable, no answer within
//! [`HEARTBEAT_TIMEOUT`] ends the session and a new connection listens.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::JobStore;
use super::heads::HeadsCache;
use crate::error::{Error, Result};
use crate::outage::reconnecting;

/// The channel notified when a commit leaves a job queued: stored (the statement-level
/// `jobs_inserted_notify` trigger) or moved back to queued (`jobs_queued_notify`).
pub const QUEUED_CHANNEL: &str = "orchestrator_job_queued";

/// The channel notified when a commit changes what the pending heads show
/// (`jobs_inserted_notify` and the `jobs_pending_*` triggers).
pub const PENDING_CHANNEL: &str = "orchestrator_pending_changed";

/// How often the listener asks its connection to answer.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// The heartbeat, named for whoever reads `pg_stat_activity` (where it stays as the
/// connection's last statement).
const HEARTBEAT_SQL: &str = "SELECT 1 /* pending-job listener heartbeat */";

/// How long a heartbeat may wait for its answer before the connection counts as dead.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

/// Marks `cache` as not listening however the listening ends (error, cancel, task aborted).
struct Listening<'a>(&'a HeadsCache);

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.0.set_listening(false);
    }
}

impl JobStore {
    /// Calls `wake` after each committed transaction that made a job `queued`, and once each
    /// time listening (re)starts (jobs may have been queued while nobody listened), until
    /// `token` is cancelled; tells `cache` of every change to the pending heads and whether it
    /// listens. A lost connection is reopened with the outage backoff.
    pub async fn watch_pending(
        &self,
        token: &CancellationToken,
        cache: &HeadsCache,
        wake: impl Fn(),
    ) -> Result<()> {
        reconnecting(
            token,
            "pending-job listener",
            |_| {},
            || async {
                let mut listener = PgListener::connect_with(&self.pool).await?;
                listener
                    .listen_all([QUEUED_CHANNEL, PENDING_CHANNEL])
                    .await?;
                let _listening = Listening(cache);
                cache.set_listening(true);
                wake();
                let mut heartbeat = tokio::time::interval(HEARTBEAT);
                heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        // Notifications that arrive meanwhile wait in the listener's buffer;
                        // a cancel does not wait for the answer (a hung server gives none).
                        _ = heartbeat.tick() => {
                            let answer = tokio::time::timeout(
                                HEARTBEAT_TIMEOUT,
                                sqlx::query(HEARTBEAT_SQL).execute(&mut listener),
                            );
                            let Some(answer) = token.run_until_cancelled(answer).await else {
                                return Ok(());
                            };
                            answer.map_err(|_| Error::Unanswered(HEARTBEAT_TIMEOUT))??;
                            cache.answered();
                        }
                        received = listener.try_recv() => match received? {
                            Some(n) if n.channel() == QUEUED_CHANNEL => wake(),
                            Some(_) => cache.heard(),
                            // The connection dropped and sqlx reconnected: notifications may
                            // have been missed meanwhile.
                            None => {
                                cache.heard();
                                wake();
                            }
                        },
                    }
                }
            },
        )
        .await
    }
}
