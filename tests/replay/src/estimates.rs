//! Start-time estimates as the replay sees them, and their error.
//!
//! While a job waits, the replay reads the daemon's `estimatedStartAt` from the store every
//! sample period. Two are kept per job: the first one seen (the estimate a user gets right
//! after enqueueing) and the latest (the one its last wait ended with — a preempted job waits
//! again). Each is compared with the admission that followed it: the job's first
//! SparkApplication created after the estimate was seen. The error is the absolute difference
//! in simulated seconds; a job never admitted after an estimate has none.

use serde::Serialize;

use crate::metrics::percentile;
use crate::record::Recorder;

/// One estimate: when the replay saw it and the start it promised (simulated seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Mark {
    /// When it was read.
    pub seen: f64,
    /// The estimated start.
    pub estimate: f64,
}

/// The first and the latest estimate of one job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Marks {
    /// The first estimate seen.
    pub first: Option<Mark>,
    /// The latest estimate seen.
    pub last: Option<Mark>,
}

impl Marks {
    /// Notes an estimate read at `seen`.
    pub fn note(&mut self, seen: f64, estimate: f64) {
        let mark = Mark { seen, estimate };
        self.first.get_or_insert(mark);
        self.last = Some(mark);
    }
}

/// Error percentiles of one kind of estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// Jobs measured.
    pub jobs: usize,
    /// Median |estimated − actual| (s).
    pub p50: f64,
    /// p90 (s).
    pub p90: f64,
}

impl Spread {
    /// The spread of `errors` (`None` when there are none).
    pub fn of(errors: &[f64]) -> Option<Spread> {
        Some(Spread {
            jobs: errors.len(),
            p50: percentile(errors, 50.0)?,
            p90: percentile(errors, 90.0)?,
        })
    }
}

/// The errors of the first and of the latest estimates (see the module docs).
pub fn errors(rec: &Recorder) -> (Vec<f64>, Vec<f64>) {
    let mut created: Vec<Vec<f64>> = vec![Vec::new(); rec.jobs.len()];
    for app in rec.apps.values() {
        if let Some(c) = created.get_mut(app.job) {
            c.push(app.created);
        }
    }
    let admitted_after = |job: usize, seen: f64| {
        created
            .get(job)?
            .iter()
            .copied()
            .filter(|&c| c >= seen)
            .min_by(f64::total_cmp)
    };
    let error = |job: usize, mark: Option<Mark>| {
        let m = mark?;
        Some((admitted_after(job, m.seen)? - m.estimate).abs())
    };
    let mut first = Vec::new();
    let mut last = Vec::new();
    for (&job, marks) in &rec.estimates {
        first.extend(error(job, marks.first));
        last.extend(error(job, marks.last));
    }
    (first, last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;
    use crate::record::AppTrack;

    #[test]
    fn each_estimate_is_compared_with_the_admission_after_it() {
        let trace = generate::deadlock(3, 60.0);
        let ids: Vec<String> = (0..3).map(|i| format!("id-{i}")).collect();
        let mut rec = Recorder::new(&trace, &ids);
        // Job 0: estimated 100 at t=10, then 130 at t=70; admitted at 120, preempted, waited
        // again with an estimate of 400 at t=300, admitted again at 420.
        rec.estimate_seen("id-0", 10.0, 100.0);
        rec.estimate_seen("id-0", 70.0, 130.0);
        rec.estimate_seen("id-0", 300.0, 400.0);
        // Job 1: estimated, never admitted. Job 2: admitted without an estimate.
        rec.estimate_seen("id-1", 10.0, 50.0);
        rec.estimate_seen("unknown", 10.0, 50.0);
        for (key, job, created) in [("a", 0, 120.0), ("b", 0, 420.0), ("c", 2, 5.0)] {
            let mut app = AppTrack::default();
            app.job = job;
            app.created = created;
            rec.apps.insert(key.into(), app);
        }
        let (first, last) = errors(&rec);
        assert_eq!(first, [20.0], "first estimate 100 vs admitted 120");
        assert_eq!(last, [20.0], "last estimate 400 vs admitted again at 420");
        assert_eq!(rec.estimates[&0].first.unwrap().estimate, 100.0);
        assert_eq!(rec.estimates.len(), 2, "unknown ids are ignored");
        let s = Spread::of(&[10.0, 20.0, 30.0, 40.0]).unwrap();
        assert_eq!((s.jobs, s.p50, s.p90), (4, 20.0, 40.0));
        assert_eq!(Spread::of(&[]), None);
    }
}
