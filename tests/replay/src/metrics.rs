//! The report's figures as pure functions of what a replay recorded.
//!
//! - **wait**: enqueue → all required executors running (the job computing). Measured the same
//!   way for every policy: without the orchestrator a job "waits" as pending pods, not in a
//!   queue, so the queue-only wait would flatter it. A job that never got there has an
//!   infinite wait (shown as `never`).
//! - **stuck**: applications whose driver ran while an executor was pending for longer than
//!   the limit, in one stretch (an episode still open at the end counts up to the end).
//! - **utilization while work that fits waited**: mean requested/allocatable over the samples
//!   in which some enqueued, not yet admitted job's gang would have fit the free capacity.

use serde::Serialize;

use crate::estimates::{self, Spread};
use crate::record::{AppTrack, Episode, JobRecord, Recorder, Sample};
use crate::trace::Priority;

/// Nearest-rank percentile (`p` in 0..=100) of `values`; `None` when empty. Infinite values
/// sort last.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// The longest stuck stretch among `episodes`, an open one counted up to `end`.
pub fn longest_episode(episodes: &[Episode], end: f64) -> f64 {
    episodes
        .iter()
        .map(|e| e.end.unwrap_or(end) - e.start)
        .fold(0.0, f64::max)
}

/// Applications stuck longer than `limit` in one stretch.
pub fn stuck_apps<'a>(apps: impl IntoIterator<Item = &'a AppTrack>, limit: f64, end: f64) -> usize {
    apps.into_iter()
        .filter(|a| longest_episode(&a.stuck, end) > limit)
        .count()
}

/// Mean cpu and memory utilization (0..=1) over the samples that satisfy `keep`; `None` if
/// none does.
pub fn mean_utilization(samples: &[Sample], keep: impl Fn(&Sample) -> bool) -> Option<(f64, f64)> {
    let kept: Vec<&Sample> = samples
        .iter()
        .filter(|s| keep(s) && s.cpu_allocatable > 0 && s.memory_allocatable > 0)
        .collect();
    if kept.is_empty() {
        return None;
    }
    let n = kept.len() as f64;
    let cpu = kept
        .iter()
        .map(|s| s.cpu_requested as f64 / s.cpu_allocatable as f64)
        .sum::<f64>()
        / n;
    let mem = kept
        .iter()
        .map(|s| s.memory_requested as f64 / s.memory_allocatable as f64)
        .sum::<f64>()
        / n;
    Some((cpu, mem))
}

/// Wait percentiles of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Waits {
    /// Jobs.
    pub jobs: usize,
    /// p50 (s).
    pub p50: f64,
    /// p95 (s).
    pub p95: f64,
    /// p99 (s).
    pub p99: f64,
    /// Max (s): starvation.
    pub max: f64,
}

/// The waits (infinite for jobs that never started computing) of jobs matching `keep`.
pub fn waits(jobs: &[JobRecord], keep: impl Fn(&JobRecord) -> bool) -> Option<Waits> {
    let w: Vec<f64> = jobs
        .iter()
        .filter(|j| keep(j) && j.enqueued.is_some())
        .map(|j| j.wait().unwrap_or(f64::INFINITY))
        .collect();
    Some(Waits {
        jobs: w.len(),
        p50: percentile(&w, 50.0)?,
        p95: percentile(&w, 95.0)?,
        p99: percentile(&w, 99.0)?,
        max: percentile(&w, 100.0)?,
    })
}

/// One policy's line in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Policy name.
    pub policy: String,
    /// Jobs in the trace.
    pub jobs: usize,
    /// Jobs that reached an end (succeeded, failed for good or dead-lettered).
    pub finished: usize,
    /// Jobs that succeeded.
    pub succeeded: usize,
    /// Applications stuck longer than the limit.
    pub stuck: usize,
    /// The stuck limit (s).
    pub stuck_limit: f64,
    /// High-priority waits.
    pub high: Option<Waits>,
    /// Normal-priority waits.
    pub normal: Option<Waits>,
    /// First enqueue → last finish (s); the replay's end if not every job finished.
    pub makespan: f64,
    /// Mean utilization (cpu, memory) while work that fits waited.
    pub util_fits_waiting: Option<(f64, f64)>,
    /// Share of samples in which work that fits waited.
    pub fits_waiting_share: f64,
    /// Mean utilization (cpu, memory) over the makespan.
    pub util_overall: Option<(f64, f64)>,
    /// Stretches in which the replayer itself stalled, and the longest (simulated s).
    pub stalls: (usize, f64),
    /// `FailedScheduling` events and preempted pods.
    pub unschedulable: (u32, u32),
    /// Jobs the orchestrator preempted (sent back to their queue), times.
    pub preemptions: u32,
    /// Work lost to preemption, simulated cpu·seconds.
    pub lost_cpu_seconds: f64,
    /// Error of the first start estimate each job got.
    pub estimate_first: Option<Spread>,
    /// Error of the estimate each job's last wait ended with.
    pub estimate_last: Option<Spread>,
}

/// Summarizes a replay that ended at `end`.
pub fn summarize(policy: &str, recorder: &Recorder, stuck_limit: f64, end: f64) -> Summary {
    let (jobs, samples) = (&recorder.jobs, &recorder.samples);
    let finished = jobs.iter().filter(|j| j.finished.is_some()).count();
    let succeeded = jobs
        .iter()
        .filter(|j| matches!(j.end_state.as_deref(), Some("succeeded" | "COMPLETED")))
        .count();
    let first = jobs
        .iter()
        .filter_map(|j| j.enqueued)
        .fold(f64::INFINITY, f64::min);
    let last = if finished == jobs.len() {
        jobs.iter().filter_map(|j| j.finished).fold(0.0, f64::max)
    } else {
        end
    };
    let makespan = if first.is_finite() { last - first } else { 0.0 };
    let in_span: Vec<Sample> = samples
        .iter()
        .filter(|s| s.t >= first && s.t <= last)
        .copied()
        .collect();
    let fits = in_span.iter().filter(|s| s.waiting_fits).count();
    let (estimate_first, estimate_last) = estimates::errors(recorder);
    Summary {
        policy: policy.to_owned(),
        jobs: jobs.len(),
        finished,
        succeeded,
        stuck: stuck_apps(recorder.apps.values(), stuck_limit, end),
        stuck_limit,
        high: waits(jobs, |j| j.priority == Priority::High),
        normal: waits(jobs, |j| j.priority == Priority::Normal),
        makespan,
        util_fits_waiting: mean_utilization(&in_span, |s| s.waiting_fits),
        fits_waiting_share: if in_span.is_empty() {
            0.0
        } else {
            fits as f64 / in_span.len() as f64
        },
        util_overall: mean_utilization(&in_span, |_| true),
        stalls: (
            recorder.stalls.len(),
            recorder.stalls.iter().copied().fold(0.0, f64::max),
        ),
        unschedulable: (recorder.failed_scheduling, recorder.preempted),
        preemptions: recorder.preemptions,
        lost_cpu_seconds: recorder.lost_cpu_seconds,
        estimate_first: Spread::of(&estimate_first),
        estimate_last: Spread::of(&estimate_last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 95.0), Some(95.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&v, 100.0), Some(100.0));
        assert_eq!(percentile(&v, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&v, 101.0), None);
        // Order does not matter; infinities (never started) sort last.
        assert_eq!(percentile(&[3.0, f64::INFINITY, 1.0, 2.0], 75.0), Some(3.0));
        assert_eq!(
            percentile(&[3.0, f64::INFINITY, 1.0, 2.0], 100.0),
            Some(f64::INFINITY)
        );
    }

    #[test]
    fn stuck_counts_only_stretches_longer_than_the_limit() {
        let ep = |start, end| Episode { start, end };
        let app = |stuck| {
            let mut a = AppTrack::default();
            a.stuck = stuck;
            a
        };
        let apps = [
            app(vec![ep(0.0, Some(50.0)), ep(100.0, Some(150.0))]), // 2 × 50 s: not stuck
            app(vec![ep(0.0, Some(200.0))]),                        // 200 s: stuck
            app(vec![ep(900.0, None)]),                             // open, 100 s at end
            app(vec![]),
        ];
        assert_eq!(stuck_apps(&apps, 120.0, 1000.0), 1);
        assert_eq!(stuck_apps(&apps, 60.0, 1000.0), 2);
        assert_eq!(stuck_apps(&apps, 120.0, 1100.0), 2, "the open one grows");
        assert_eq!(longest_episode(&apps[0].stuck, 0.0), 50.0);
    }

    fn sample(t: f64, cpu: u64, mem: u64, fits: bool) -> Sample {
        Sample {
            t,
            cpu_requested: cpu,
            cpu_allocatable: 100,
            memory_requested: mem,
            memory_allocatable: 200,
            waiting: usize::from(fits),
            waiting_fits: fits,
        }
    }

    #[test]
    fn utilization_only_over_the_kept_samples() {
        let s = [
            sample(0.0, 90, 100, true),
            sample(1.0, 70, 200, true),
            sample(2.0, 10, 0, false),
        ];
        let (cpu, mem) = mean_utilization(&s, |s| s.waiting_fits).unwrap();
        assert!((cpu - 0.8).abs() < 1e-9 && (mem - 0.75).abs() < 1e-9);
        let (cpu, _) = mean_utilization(&s, |_| true).unwrap();
        assert!((cpu - 170.0 / 300.0).abs() < 1e-9);
        assert_eq!(mean_utilization(&s[2..], |s| s.waiting_fits), None);
    }

    #[test]
    fn summary_of_a_small_replay() {
        let trace = generate::deadlock(3, 60.0);
        let mut jobs: Vec<JobRecord> = trace.iter().map(JobRecord::new).collect();
        jobs[1].priority = Priority::High;
        for (i, j) in jobs.iter_mut().enumerate() {
            j.enqueued = Some(0.0);
            j.end_state = Some("succeeded".into());
            if i < 2 {
                j.executors_ready = Some(10.0 * (i + 1) as f64);
                j.finished = Some(100.0);
            }
        }
        let mut recorder = Recorder::default();
        recorder.jobs = jobs;
        recorder.samples = vec![sample(0.0, 50, 100, true), sample(50.0, 100, 200, false)];
        recorder.stalls = vec![15.0, 45.0];
        let s = summarize("x", &recorder, 120.0, 500.0);
        assert_eq!((s.jobs, s.finished), (3, 2));
        assert_eq!(s.makespan, 500.0, "not all finished: up to the end");
        let high = s.high.unwrap();
        assert_eq!((high.jobs, high.p95), (1, 20.0));
        let normal = s.normal.unwrap();
        assert_eq!((normal.p50, normal.max), (10.0, f64::INFINITY));
        assert_eq!(s.fits_waiting_share, 0.5);
        assert_eq!(s.util_fits_waiting, Some((0.5, 0.5)));
        assert_eq!(s.stalls, (2, 45.0));
    }
}
