//! Runs the admission loop and the tracker until cancelled. Only the leader runs this; the
//! daemon starts it on winning the lease and cancels it on losing it.
//!
//! A round runs every `[submitter] interval` and, in between, as soon as a job becomes queued
//! anywhere (the store's `NOTIFY`, see `JobStore::watch_pending`): a burst of stored jobs does
//! not wait for the next tick, and wakes arriving during a round fold into one more round,
//! which starts deciding as soon as the round before hands its turn on (once its admissions
//! are confirmed, see [`crate::admission`]).

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::Result;
use crate::admission::{RoundReport, round_deciding};
use crate::context::Context;
use crate::kube_apps::Observer;
use crate::reconcile::{TrackerState, sync};

/// Rounds running at once, at most: one finishing its creates while the next decides.
const ROUNDS_AT_ONCE: usize = 2;

/// The submitter: both loops over ctx parts.
pub struct Submitter {
    ctx: Arc<Context>,
}

impl Submitter {
    /// A submitter over its parts.
    pub fn new(ctx: Context) -> Self {
        Self { ctx: Arc::new(ctx) }
    }

    /// The ctx parts (store, checker, catalog, …).
    pub fn ctx(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Logs how a round ended; whether it failed.
    fn ended(&self, ended: Result<Result<RoundReport>, tokio::task::JoinError>) -> bool {
        let result = match ended {
            Ok(result) => result,
            Err(e) => {
                tracing::warn!(error = %e, "admission round task ended abnormally");
                return true;
            }
        };
        match result {
            Ok(r) => {
                if !r.admitted.is_empty() || !r.dead.is_empty() {
                    tracing::debug!(
                        admitted = r.admitted.len(),
                        waiting = r.waiting,
                        dead = r.dead.len(),
                        "admission round"
                    );
                }
                false
            }
            Err(e) => {
                self.ctx.metrics.error("admission", e.metric_label());
                tracing::warn!(error = %e, "admission round failed; next round in {:?}", self.ctx.config.interval.0);
                true
            }
        }
    }

    /// Runs until `token` is cancelled. Rounds in progress finish before it returns, so
    /// nothing is left half-decided (creates are idempotent anyway).
    pub async fn run(&self, token: CancellationToken) {
        let observer = Observer::start(self.ctx.client.clone(), token.child_token());
        // Aborted if this future is dropped mid-round (a killed daemon), not left running.
        let tracker = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(track(
            self.ctx.clone(),
            observer.clone(),
            token.clone(),
        )));
        let queued = Arc::new(Notify::new());
        let _listener = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(listen(
            self.ctx.clone(),
            token.clone(),
            queued.clone(),
        )));
        let mut tick = tokio::time::interval(self.ctx.config.interval.0);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // After a failed round only the interval starts the next one: jobs queued at a high
        // rate must not turn a failing round (Kubernetes away) into a hot loop.
        let mut failed = false;
        // At most two rounds at once: one finishing its creates, the next deciding (see
        // `admission::round`). Dropping the set (a killed daemon) aborts them.
        let mut rounds = JoinSet::new();
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                Some(ended) = rounds.join_next(), if !rounds.is_empty() => {
                    failed = self.ended(ended);
                    continue;
                }
                _ = tick.tick() => {}
                _ = queued.notified(), if !failed => {}
            }
            while rounds.len() >= ROUNDS_AT_ONCE {
                if let Some(ended) = rounds.join_next().await {
                    failed = self.ended(ended);
                }
            }
            let (ctx, observer, token) = (self.ctx.clone(), observer.clone(), token.clone());
            rounds.spawn(async move {
                // A round still waiting for its turn when the daemon stops does not start.
                let deciding = tokio::select! {
                    _ = token.cancelled() => return Ok(RoundReport::default()),
                    deciding = ctx.deciding.clone().lock_owned() => deciding,
                };
                round_deciding(&ctx, Some(&observer), Utc::now(), deciding).await
            });
        }
        while let Some(ended) = rounds.join_next().await {
            self.ended(ended);
        }
        if let Err(e) = tracker.await {
            tracing::warn!(error = %e, "tracker task ended abnormally");
        }
    }
}

/// Listens for pending jobs' changes until `token` is cancelled (connection losses are
/// retried inside): notifies `queued` when a job became queued, and keeps `ctx.heads` told
/// what changed. The daemon's leader runs it beside its rounds; so does the round bench.
pub async fn listen(ctx: Arc<Context>, token: CancellationToken, queued: Arc<Notify>) {
    let _ = ctx
        .store
        .watch_pending(&token, &ctx.heads, || queued.notify_one())
        .await;
}

async fn track(ctx: Arc<Context>, observer: Observer, token: CancellationToken) {
    tokio::select! {
        _ = token.cancelled() => return,
        _ = observer.ready() => {}
    }
    let mut state = TrackerState::default();
    let mut tick = tokio::time::interval(ctx.config.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = sync(&ctx, &mut state, &observer, Utc::now()).await {
                    ctx.metrics.error("tracker", e.metric_label());
                    tracing::warn!(error = %e, "tracker sync failed");
                }
            }
        }
    }
}
