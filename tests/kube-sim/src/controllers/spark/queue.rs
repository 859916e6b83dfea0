//! The Spark Operator's work queue, as the real operator has one: a run is reconciled
//! when something about it changed (its SparkApplication, one of its pods) or when a
//! time it waits for has come (submission, executor request, driver-gone grace, the
//! end of its simulated work), never because some other app changed. A round costs
//! O(changes + due timers), not O(live apps).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use crate::store::Key;

use super::{Outcome, Phase, Run};

/// How long the operator waits for a vanished driver of a SUBMITTED app before failing it.
pub(super) const DRIVER_GONE_GRACE: Duration = Duration::from_secs(10);

/// Work (simulated seconds at full rate) counted as done although float rounding of
/// the due time left it this far short.
pub(super) const WORK_EPS: f64 = 1e-6;

/// A timer: (due at, sequence, run uid), earliest first. A timer is stale when the
/// run's current timer has another sequence (lazy invalidation).
type Timer = Reverse<(Duration, u64, String)>;

/// Apps in flight (by uid) and the queue that says which to reconcile next.
#[derive(Debug, Default)]
pub struct SparkState {
    runs: HashMap<String, Run>,
    /// (namespace, app name) → uid, to find the run of a pod by its app-name label.
    by_key: HashMap<Key, String>,
    /// Runs to reconcile in the next step (ordered, so a step is reproducible).
    dirty: BTreeSet<String>,
    timers: BinaryHeap<Timer>,
    seq: u64,
    reconciles: u64,
}

impl SparkState {
    /// Whether a run waits to be reconciled now: something changed, or a timer is due.
    pub fn pending(&self, now: Duration) -> bool {
        !self.dirty.is_empty() || self.due(now)
    }

    /// Whether a timer is due (possibly a stale one, which the next step drops).
    pub fn due(&self, now: Duration) -> bool {
        self.timers.peek().is_some_and(|Reverse(t)| t.0 <= now)
    }

    /// How many reconciles ran since start (for tests and profiling: it must grow
    /// with changes, not with the number of live apps).
    pub fn reconciles(&self) -> u64 {
        self.reconciles
    }

    /// An app was deleted: its run, index entry and queue entry go.
    pub fn forget(&mut self, uid: &str) {
        if let Some(run) = self.runs.remove(uid)
            && self.by_key.get(&run.key).is_some_and(|u| u == uid)
        {
            self.by_key.remove(&run.key);
        }
        self.dirty.remove(uid);
    }

    pub(super) fn contains(&self, uid: &str) -> bool {
        self.runs.contains_key(uid)
    }

    /// Start tracking a new run; it is reconciled in the next step.
    pub(super) fn insert(&mut self, uid: String, run: Run) {
        self.by_key.insert(run.key.clone(), uid.clone());
        self.dirty.insert(uid.clone());
        self.runs.insert(uid, run);
    }

    /// Queue the run `uid` (unless it is unknown or finished).
    pub(super) fn mark(&mut self, uid: &str) {
        if self
            .runs
            .get(uid)
            .is_some_and(|r| r.phase != Phase::Finished)
        {
            self.dirty.insert(uid.to_string());
        }
    }

    /// Queue the run of the app `key` (namespace, name), if there is one.
    pub(super) fn mark_key(&mut self, key: &Key) {
        if let Some(uid) = self.by_key.get(key).cloned() {
            self.mark(&uid);
        }
    }

    /// Take the runs to reconcile now, at most `limit`: the dirty ones and those whose timer
    /// is due. Those left over stay queued (a due timer taken is kept as dirty).
    pub(super) fn take_ready(&mut self, now: Duration, limit: usize) -> BTreeSet<String> {
        let mut ready = std::mem::take(&mut self.dirty);
        while ready.len() < limit && self.due(now) {
            let Some(Reverse((_, seq, uid))) = self.timers.pop() else {
                break;
            };
            if let Some(run) = self.runs.get_mut(&uid)
                && run.timer.is_some_and(|(_, s)| s == seq)
            {
                run.timer = None;
                ready.insert(uid);
            }
        }
        while ready.len() > limit
            && let Some(uid) = ready.pop_last()
        {
            self.dirty.insert(uid);
        }
        ready
    }

    /// Take a run out to reconcile it (put it back with [`SparkState::reconciled`]).
    /// A finished run stays where it is and is not returned.
    pub(super) fn take(&mut self, uid: &str) -> Option<Run> {
        if self.runs.get(uid)?.phase == Phase::Finished {
            return None;
        }
        self.runs.remove(uid)
    }

    /// Put a run back after a reconcile, with a timer for the next time it waits for.
    pub(super) fn reconciled(&mut self, uid: String, mut run: Run, submit_delay: Duration) {
        self.reconciles += 1;
        match next_due(&run, submit_delay) {
            Some(at) if run.timer.is_some_and(|(t, _)| t == at) => {}
            Some(at) => {
                self.seq += 1;
                self.timers.push(Reverse((at, self.seq, uid.clone())));
                run.timer = Some((at, self.seq));
            }
            None => run.timer = None,
        }
        self.runs.insert(uid, run);
    }
}

/// The work at which the driver ends: half the runtime for the executor OOM kill
/// (then the whole runtime), none for an app that cannot pull its image.
pub(super) fn target_work(run: &Run) -> Option<f64> {
    match run.outcome {
        Outcome::ImagePullBackOff => None,
        Outcome::ExecutorOomKilled if !run.oom_done => Some(run.runtime / 2.0),
        _ => Some(run.runtime),
    }
}

/// When the run must be reconciled even if nothing about it changes: submission,
/// the (re)request of executors, the end of the driver-gone grace, or the moment its
/// work reaches the target at the rate in force (the rate changes only through pod
/// changes, which queue the run anyway).
pub(super) fn next_due(run: &Run, submit_delay: Duration) -> Option<Duration> {
    match run.phase {
        Phase::New => Some(run.created + submit_delay),
        Phase::Submitted => run.driver_gone_since.map(|t| t + DRIVER_GONE_GRACE),
        Phase::Running => {
            let finish = target_work(run)
                .map(|target| target - run.work)
                .filter(|left| *left > WORK_EPS && run.rate > 0.0)
                .and_then(|left| Duration::try_from_secs_f64(left / run.rate).ok())
                .and_then(|d| run.last.checked_add(d));
            match (run.executors_at, finish) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        Phase::Finished => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn run(phase: Phase, outcome: Outcome) -> Run {
        Run {
            key: ("default".into(), "app".into()),
            phase,
            created: secs(100.0),
            sub: None,
            runtime: 10.0,
            outcome,
            work: 0.0,
            rate: 0.0,
            last: secs(200.0),
            executors_at: None,
            wanted: 2,
            next_exec: 1,
            oom_done: false,
            driver_gone_since: None,
            timer: None,
        }
    }

    #[test]
    fn due_times() {
        use Outcome::*;
        use Phase::*;
        // Each case changes a run that is RUNNING since 200 s with 4 of 10 s of work
        // done at full rate, executors all requested; submissions wait 3 s.
        type Case = (&'static str, fn(&mut Run), Option<f64>);
        let table: [Case; 13] = [
            ("running at full rate", |_| {}, Some(206.0)),
            ("running at half rate", |r| r.rate = 0.5, Some(212.0)),
            ("no executor up: no progress", |r| r.rate = 0.0, None),
            (
                "new: submit after the delay",
                |r| r.phase = New,
                Some(103.0),
            ),
            (
                "submitted: waits for pod changes",
                |r| r.phase = Submitted,
                None,
            ),
            (
                "submitted, driver gone: the grace",
                |r| (r.phase, r.driver_gone_since) = (Submitted, Some(secs(150.0))),
                Some(160.0),
            ),
            (
                "executor request comes first",
                |r| r.executors_at = Some(secs(201.0)),
                Some(201.0),
            ),
            (
                "finish comes before a retry",
                |r| (r.work, r.executors_at) = (9.5, Some(secs(201.0))),
                Some(200.5),
            ),
            (
                "failure after the runtime too",
                |r| r.outcome = Failed,
                Some(206.0),
            ),
            (
                "oom kill at half the runtime",
                |r| (r.outcome, r.work) = (ExecutorOomKilled, 1.0),
                Some(204.0),
            ),
            (
                "after the oom kill: the runtime",
                |r| (r.outcome, r.oom_done, r.work) = (ExecutorOomKilled, true, 6.0),
                Some(204.0),
            ),
            (
                "image pull failure never ends",
                |r| r.outcome = ImagePullBackOff,
                None,
            ),
            (
                "target reached: nothing to wait for",
                |r| r.work = 10.0,
                None,
            ),
        ];
        for (case, change, want) in table {
            let mut r = run(Running, Succeeded);
            (r.work, r.rate) = (4.0, 1.0);
            change(&mut r);
            assert_eq!(next_due(&r, secs(3.0)), want.map(secs), "{case}");
        }
        let mut finished = run(Finished, Succeeded);
        finished.executors_at = Some(secs(201.0));
        assert_eq!(next_due(&finished, secs(3.0)), None, "finished");
    }

    #[test]
    fn a_limited_take_leaves_the_rest_ready() {
        let mut q = SparkState::default();
        for (uid, name) in [("u1", "a"), ("u2", "b"), ("u3", "c")] {
            let mut r = run(Phase::New, Outcome::Succeeded);
            r.key.1 = name.into();
            q.insert(uid.into(), r);
        }
        let mut taken = Vec::new();
        for want in [2, 1, 0] {
            let ready = q.take_ready(Duration::ZERO, 2);
            assert_eq!(ready.len(), want);
            taken.extend(ready);
        }
        taken.sort();
        assert_eq!(taken, ["u1", "u2", "u3"], "each run once, none lost");
        assert!(!q.pending(Duration::ZERO));
    }

    #[test]
    fn stale_timers_are_dropped_and_changes_queue_one_run() {
        let mut q = SparkState::default();
        for (uid, name) in [("u1", "a"), ("u2", "b")] {
            let mut r = run(Phase::New, Outcome::Succeeded);
            r.key.1 = name.into();
            q.insert(uid.into(), r);
        }
        assert!(q.pending(Duration::ZERO));
        let ready = q.take_ready(Duration::ZERO, usize::MAX);
        assert_eq!(ready.into_iter().collect::<Vec<_>>(), ["u1", "u2"]);
        for uid in ["u1", "u2"] {
            let r = q.take(uid).unwrap();
            q.reconciled(uid.into(), r, secs(3.0));
        }
        assert_eq!(q.reconciles(), 2);
        assert!(!q.pending(secs(102.0)));
        // A pod of app "b" changed: only u2 is queued.
        q.mark_key(&("default".into(), "b".into()));
        q.mark_key(&("default".into(), "unknown".into()));
        assert_eq!(
            q.take_ready(secs(102.0), usize::MAX)
                .into_iter()
                .collect::<Vec<_>>(),
            ["u2"]
        );
        // u2 reconciled again with the same due time: no second timer.
        let r = q.take("u2").unwrap();
        q.reconciled("u2".into(), r, secs(3.0));
        assert_eq!(q.timers.len(), 2);
        // u1's app is deleted: its timer fires into nothing.
        q.forget("u1");
        assert!(q.pending(secs(103.0)));
        assert_eq!(
            q.take_ready(secs(103.0), usize::MAX)
                .into_iter()
                .collect::<Vec<_>>(),
            ["u2"]
        );
        assert!(q.timers.is_empty() && !q.pending(secs(1e6)));
    }
}
