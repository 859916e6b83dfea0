//! Estimates in the running daemon: every few seconds the leader's admission round replays its
//! own candidates forward with [`estimate`](super::estimate) — over the view the round decided
//! on, the running applications where the tracker's watch shows their pods, and runtimes learned
//! from the store — and writes each pending job's estimated start to the store, where every
//! replica's API reads it (`estimatedStartAt`).
//!
//! Known gaps: only the heads the round reads (`heads_per_queue` per queue) are estimated; an
//! application whose pods are not bound yet is assumed to hold its ledger room until the end of
//! the replay (pessimistic for a few seconds after each admission); a preemptor whose room is
//! held is estimated to start now.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use capacity::{ClusterView, Resources};
use chrono::{DateTime, Utc};
use jobs::JobId;

use super::{Running, Runtimes, Waiting, estimate};
use crate::Result;
use crate::context::Context;
use crate::kube_apps::Observer;
use crate::ordering::{Candidate, Policy};

/// How often the round replays for estimates (a replay costs many decisions).
pub const EVERY: Duration = Duration::from_secs(5);

/// Finished runs read to learn runtimes.
const SAMPLES: u32 = 5_000;

/// When the last estimates were written (`None`: never).
#[derive(Debug, Default)]
pub struct LastRun(Mutex<Option<Instant>>);

impl LastRun {
    /// Whether a replay is due, marking it done if so.
    pub fn due(&self) -> bool {
        let mut last = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// A candidate with the name its runtime is learned under.
#[derive(Debug, Clone)]
pub struct Named {
    /// The candidate as the round saw it.
    pub candidate: Candidate,
    /// The job's name.
    pub name: String,
}

/// What the round decided on.
pub struct Input<'a> {
    /// The view before this round's admissions.
    pub view: &'a ClusterView,
    /// Every candidate of the round.
    pub waiting: Vec<Named>,
    /// Preemptors whose room is held (estimated to start now).
    pub held: Vec<JobId>,
    /// Running usage per namespace.
    pub usage: &'a BTreeMap<String, Resources>,
    /// Entitlements per namespace.
    pub entitlements: &'a BTreeMap<String, Resources>,
    /// The round's policy.
    pub policy: &'a Policy,
}

/// Replays and writes the estimates (see the module docs).
pub async fn refresh(
    ctx: &Context,
    observer: Option<&Observer>,
    now: DateTime<Utc>,
    input: Input<'_>,
) -> Result<usize> {
    let samples = ctx.store.runtime_samples(SAMPLES).await?;
    let runtimes = Runtimes::from_history(samples, ctx.config.default_runtime.0);
    let mut pods = observer.map(Observer::placed_pods).unwrap_or_default();
    let running: Vec<Running> = ctx
        .store
        .running_attempts()
        .await?
        .into_iter()
        .filter_map(|a| {
            let pods = pods.remove(&(a.namespace.clone(), a.spark_app_name.clone()))?;
            let started = a.started_at.unwrap_or(now);
            let expected = chrono::Duration::from_std(runtimes.expect(&a.namespace, &a.name))
                .unwrap_or(chrono::Duration::MAX);
            Some(Running {
                ends_at: started
                    .checked_add_signed(expected)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
                    .max(now),
                namespace: a.namespace,
                pods,
            })
        })
        .collect();
    let ids: Vec<JobId> = input
        .waiting
        .iter()
        .map(|n| n.candidate.id)
        .chain(input.held.iter().copied())
        .collect();
    let waiting: Vec<Waiting> = input
        .waiting
        .into_iter()
        .map(|n| Waiting {
            runtime: runtimes.expect(&n.candidate.namespace, &n.name),
            candidate: n.candidate,
        })
        .collect();
    let starts = estimate(
        now,
        input.view,
        running,
        waiting,
        input.usage,
        input.entitlements,
        input.policy,
    );
    let marks: Vec<(JobId, Option<DateTime<Utc>>)> = ids
        .into_iter()
        .map(|id| {
            let at = if input.held.contains(&id) {
                Some(now)
            } else {
                starts.get(&id).copied()
            };
            (id, at)
        })
        .collect();
    ctx.store.set_estimates(&marks).await?;
    Ok(marks.len())
}
