//! Estimates in the running daemon: every few seconds the leader's admission round hands its
//! own candidates to a background task that replays them forward with
//! [`estimate`](super::estimate) — over the view the round decided on, the running applications
//! where the tracker's watch shows their pods, and runtimes learned from the store — and writes
//! each pending job's estimated start to the store, where every replica's API reads it
//! (`estimatedStartAt`). A replay costs many decisions, so it runs on a blocking thread, never
//! in the round's way, and one at a time.
//!
//! Known gaps: only the heads the round reads (`heads_per_queue` per queue) are estimated; an
//! application whose pods are not bound yet is assumed to hold its ledger room until the end of
//! the replay (pessimistic for a few seconds after each admission); a preemptor whose room is
//! held is estimated to start now.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capacity::{ClusterView, Resources};
use chrono::{DateTime, Utc};
use jobs::JobId;
use queues::JobStore;

use super::{Running, Runtimes, Waiting, estimate};
use crate::context::Context;
use crate::kube_apps::Observer;
use crate::ordering::{Candidate, Policy};

/// Finished runs read to learn runtimes.
const SAMPLES: u32 = 5_000;

/// A replay that took `t` is followed by the next no sooner than `REST_PER_REPLAY × t` after
/// it started: over a deep backlog a replay costs seconds of a core, and the round, the
/// tracker and the API must keep the rest (at most a tenth of one core goes to estimates).
const REST_PER_REPLAY: u32 = 10;

/// When the last replay started, how long it took, and whether one is still running.
#[derive(Debug, Default)]
pub struct LastRun {
    at: Mutex<Option<Instant>>,
    running: Arc<AtomicBool>,
    took_ms: Arc<AtomicU64>,
}

/// The least time between two replays' starts: the configured `every`, stretched for a
/// replay that took long.
pub fn spacing(every: Duration, last_took: Duration) -> Duration {
    every.max(last_took.saturating_mul(REST_PER_REPLAY))
}

impl LastRun {
    /// Whether a replay is due (none running, none started within `every`, the
    /// `[submitter] estimate_every`); marks the time (a round that then fails before [`spawn`]
    /// just skips this turn).
    pub fn due(&self, every: Duration) -> bool {
        let mut at = self
            .at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let took = Duration::from_millis(self.took_ms.load(Ordering::Acquire));
        let spacing = spacing(every, took);
        if self.running.load(Ordering::Acquire) || at.is_some_and(|t| t.elapsed() < spacing) {
            return false;
        }
        *at = Some(Instant::now());
        true
    }
}

/// Clears the running flag and records how long the replay took, however the task ends
/// (cancelled with the runtime included).
struct Busy {
    running: Arc<AtomicBool>,
    took_ms: Arc<AtomicU64>,
    started: Instant,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let took = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.took_ms.store(took, Ordering::Release);
        self.running.store(false, Ordering::Release);
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

/// What the round decided on (owned: the replay outlives the round).
pub struct Input {
    /// The view before this round's admissions.
    pub view: Arc<ClusterView>,
    /// Every candidate of the round.
    pub waiting: Vec<Named>,
    /// Preemptors whose room is held (estimated to start now).
    pub held: Vec<JobId>,
    /// Running usage per namespace.
    pub usage: BTreeMap<String, Resources>,
    /// Entitlements per namespace.
    pub entitlements: BTreeMap<String, Resources>,
    /// The round's policy.
    pub policy: Policy,
}

/// Starts the replay in the background (after [`LastRun::due`] said so; rounds run one at a
/// time, so no other replay starts between the two).
pub fn spawn(ctx: &Context, observer: Option<&Observer>, now: DateTime<Utc>, input: Input) {
    ctx.estimated.running.store(true, Ordering::Release);
    let guard = Busy {
        running: ctx.estimated.running.clone(),
        took_ms: ctx.estimated.took_ms.clone(),
        started: Instant::now(),
    };
    let store = ctx.store.clone();
    let metrics = ctx.metrics.clone();
    let default_runtime = ctx.config.default_runtime.0;
    let pods = observer.map(Observer::placed_pods).unwrap_or_default();
    tokio::spawn(async move {
        let _guard = guard;
        if let Err(e) = refresh(&store, pods, default_runtime, now, input).await {
            metrics.error("admission", e.metric_label());
            tracing::warn!(error = %e, "cannot refresh start estimates; next time");
        }
    });
}

type Pods = std::collections::HashMap<(String, String), Vec<(String, Resources)>>;

/// Replays and writes the estimates (see the module docs); returns how many jobs it marked.
async fn refresh(
    store: &JobStore,
    mut pods: Pods,
    default_runtime: Duration,
    now: DateTime<Utc>,
    input: Input,
) -> crate::Result<usize> {
    let samples = store.runtime_samples(SAMPLES).await?;
    let runtimes = Runtimes::from_history(samples, default_runtime);
    let running: Vec<Running> = store
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
    let Input {
        view,
        waiting,
        held,
        usage,
        entitlements,
        policy,
    } = input;
    let ids: Vec<JobId> = waiting
        .iter()
        .map(|n| n.candidate.id)
        .chain(held.iter().copied())
        .collect();
    let waiting: Vec<Waiting> = waiting
        .into_iter()
        .map(|n| Waiting {
            runtime: runtimes.expect(&n.candidate.namespace, &n.name),
            candidate: n.candidate,
        })
        .collect();
    let starts = in_background(move || {
        estimate(now, &view, running, waiting, &usage, &entitlements, &policy)
    })
    .await
    .unwrap_or_default();
    let marks: Vec<(JobId, Option<DateTime<Utc>>)> = ids
        .into_iter()
        .map(|id| {
            let at = if held.contains(&id) {
                Some(now)
            } else {
                starts.get(&id).copied()
            };
            (id, at)
        })
        .collect();
    store.set_estimates(&marks).await?;
    Ok(marks.len())
}

/// The nice value of the replay's thread: the scheduler gives it about a tenth of what a
/// normal thread gets when both want a core, so on a busy machine the rounds, the tracker and
/// the API go first and the replay takes what is left (it ran on a normal blocking thread
/// before, and the rounds it overlapped took half as long again). Not the lowest value
/// (`SCHED_IDLE` or 19): a machine that is never idle must still see estimates.
const REPLAY_NICE: i32 = 10;

/// Runs `work` on a thread of its own at [`REPLAY_NICE`] (on Linux, nice is per thread) and
/// returns its result; `None` if the thread cannot be started or `work` panics.
async fn in_background<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("start-estimates".to_owned())
        .spawn(move || {
            lower_priority();
            // The receiver is gone only when the round's runtime shut down meanwhile.
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the start-estimate thread");
        return None;
    }
    rx.await.ok()
}

/// Lowers the calling thread's priority to [`REPLAY_NICE`], or leaves it where a process
/// started nicer already put it; the replay still runs when it cannot (raising nice needs no
/// privilege, so this is not expected).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        let thread = Some(rustix::thread::gettid());
        let lowered = getpriority_process(thread)
            .and_then(|nice| setpriority_process(thread, nice.max(REPLAY_NICE)));
        if let Err(e) = lowered {
            tracing::debug!(error = %e, "cannot lower the start-estimate thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_due_every_few_seconds_and_never_two_at_once() {
        let every = Duration::from_secs(5);
        let last = LastRun::default();
        assert!(last.due(every), "the first one");
        assert!(!last.due(every), "not again within the period");
        assert!(last.due(Duration::ZERO), "a shorter period is due at once");
        *last.at.lock().unwrap() = Some(Instant::now() - every);
        last.running.store(true, Ordering::Release);
        assert!(!last.due(every), "one still running");
        drop(Busy {
            running: last.running.clone(),
            took_ms: last.took_ms.clone(),
            started: Instant::now(),
        });
        assert!(last.due(every), "its end frees the next");
    }

    #[test]
    fn a_long_replay_stretches_the_time_to_the_next() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        for (every, took, spaced) in [
            (s(5), ms(0), s(5)),
            (s(5), ms(200), s(5)),
            (s(5), ms(500), s(5)),
            (s(5), ms(800), s(8)),
            (s(1), s(3), s(30)),
            (s(5), Duration::MAX, Duration::MAX),
        ] {
            assert_eq!(
                spacing(every, took),
                spaced,
                "every {every:?}, took {took:?}"
            );
        }
        // The last replay's time is what `due` stretches by.
        let last = LastRun::default();
        last.took_ms.store(1_000, Ordering::Release);
        *last.at.lock().unwrap() = Some(Instant::now() - s(6));
        assert!(!last.due(s(5)), "6 s after a replay of 1 s: 10 s are due");
        *last.at.lock().unwrap() = Some(Instant::now() - s(11));
        assert!(last.due(s(5)));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_replay_runs_at_a_lower_priority_than_the_rounds() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let ours = nice();
        let replay = in_background(nice).await.unwrap();
        assert_eq!(replay, ours.max(REPLAY_NICE));
        assert_eq!(nice(), ours, "the caller's thread is left alone");
    }
}
