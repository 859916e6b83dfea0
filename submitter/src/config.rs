//! `[submitter]` in the config file: how often and how much the admission loop decides, and
//! when a running application counts as stuck or lost.

use std::time::Duration;

use jobs::duration::JobDuration;
use serde::Deserialize;

/// The submitter's knobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitterConfig {
    /// Time between admission rounds (and tracker syncs) when nothing wakes them earlier.
    #[serde(default = "defaults::interval")]
    pub interval: JobDuration,
    /// Pending jobs read per (namespace, priority) queue each round: the look-ahead for
    /// fairness and backfill.
    #[serde(default = "defaults::heads_per_queue")]
    pub heads_per_queue: u32,
    /// A normal job waiting this long competes as high (anti-starvation).
    #[serde(default = "defaults::promote_after")]
    pub promote_after: JobDuration,
    /// Most applications created per round.
    #[serde(default = "defaults::max_admissions")]
    pub max_admissions_per_round: usize,
    /// Let jobs behind a blocked one use capacity it cannot (default). `false` is strict
    /// head-of-line order, kept as a baseline for the scheduling-quality benchmark.
    #[serde(default = "defaults::backfill")]
    pub backfill: bool,
    /// Most waiting jobs that set room aside each round: the longest-waiting jobs of the most
    /// urgent level that do not fit yet. Held room idles until its job fits, so a few
    /// reservations keep big jobs from being overtaken forever while backfill keeps the rest of
    /// the cluster busy; `0` lets every job that fits go first (big jobs may wait for promotion
    /// and luck).
    #[serde(default = "defaults::reservations")]
    pub reservations: usize,
    /// A driver running with executors Pending this long, or a driver no node took this long,
    /// is stuck: the application is deleted and the job retried (or dead-lettered). With
    /// autoscaling pools, keep it above the time a new node takes to join.
    #[serde(default = "defaults::stuck_after")]
    pub stuck_after: JobDuration,
    /// An active job whose application has been missing this long is lost (deleted by
    /// someone else): the attempt counts as failed.
    #[serde(default = "defaults::lost_after")]
    pub lost_after: JobDuration,
    /// Service account drivers run as.
    #[serde(default)]
    pub service_account: Option<String>,
    /// How long the Spark Operator keeps a finished application (`timeToLiveSeconds`).
    #[serde(default = "defaults::app_ttl")]
    pub app_ttl: Option<JobDuration>,
    /// Expected runtime of a job when neither its name nor its namespace has a finished run to
    /// learn from (start-time estimates).
    #[serde(default = "defaults::default_runtime")]
    pub default_runtime: JobDuration,
    /// How often the leader replays its queues forward for start-time estimates (a replay
    /// costs many placement decisions; it runs in the background, one at a time).
    #[serde(default = "defaults::estimate_every")]
    pub estimate_every: JobDuration,
    /// `[submitter.preemption]`: off unless enabled.
    #[serde(default)]
    pub preemption: crate::preemption::PreemptionConfig,
}

impl Default for SubmitterConfig {
    fn default() -> Self {
        Self {
            interval: defaults::interval(),
            heads_per_queue: defaults::heads_per_queue(),
            promote_after: defaults::promote_after(),
            max_admissions_per_round: defaults::max_admissions(),
            backfill: defaults::backfill(),
            reservations: defaults::reservations(),
            stuck_after: defaults::stuck_after(),
            lost_after: defaults::lost_after(),
            service_account: None,
            app_ttl: defaults::app_ttl(),
            default_runtime: defaults::default_runtime(),
            estimate_every: defaults::estimate_every(),
            preemption: crate::preemption::PreemptionConfig::default(),
        }
    }
}

impl SubmitterConfig {
    /// Every problem, each with its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.interval.0 < Duration::from_millis(50) || self.interval.0 > Duration::from_secs(60)
        {
            problems.push("submitter.interval: must be between 50ms and 60s".to_owned());
        }
        if !(1..=1000).contains(&self.heads_per_queue) {
            problems.push("submitter.heads_per_queue: must be between 1 and 1000".to_owned());
        }
        if !(1..=10_000).contains(&self.max_admissions_per_round) {
            problems
                .push("submitter.max_admissions_per_round: must be between 1 and 10000".to_owned());
        }
        if self.reservations > 1000 {
            problems.push("submitter.reservations: must be at most 1000".to_owned());
        }
        if self.stuck_after.0 < Duration::from_secs(1) {
            problems.push("submitter.stuck_after: must be at least 1s".to_owned());
        }
        if self.lost_after.0 < Duration::from_secs(1) {
            problems.push("submitter.lost_after: must be at least 1s".to_owned());
        }
        if self.default_runtime.0 < Duration::from_secs(1)
            || self.default_runtime.0 > Duration::from_secs(7 * 24 * 3600)
        {
            problems.push("submitter.default_runtime: must be between 1s and 7d".to_owned());
        }
        if self.estimate_every.0 < Duration::from_millis(100)
            || self.estimate_every.0 > Duration::from_secs(600)
        {
            problems.push("submitter.estimate_every: must be between 100ms and 10m".to_owned());
        }
        if let Err(more) = self.preemption.validate() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

mod defaults {
    use std::time::Duration;

    use jobs::duration::JobDuration;

    pub fn interval() -> JobDuration {
        JobDuration(Duration::from_secs(1))
    }
    pub fn heads_per_queue() -> u32 {
        20
    }
    pub fn promote_after() -> JobDuration {
        JobDuration(Duration::from_secs(3600))
    }
    pub fn max_admissions() -> usize {
        100
    }
    pub fn backfill() -> bool {
        true
    }
    pub fn reservations() -> usize {
        2
    }
    pub fn stuck_after() -> JobDuration {
        JobDuration(Duration::from_secs(300))
    }
    pub fn lost_after() -> JobDuration {
        JobDuration(Duration::from_secs(60))
    }
    pub fn default_runtime() -> JobDuration {
        JobDuration(Duration::from_secs(1800))
    }
    pub fn estimate_every() -> JobDuration {
        JobDuration(Duration::from_secs(5))
    }
    pub fn app_ttl() -> Option<JobDuration> {
        Some(JobDuration(Duration::from_secs(3600)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key and a way to put it out of range.
    type Spoil = (&'static str, fn(&mut SubmitterConfig));

    /// Each out-of-range value is refused with a problem naming its key; the defaults pass.
    #[test]
    fn every_out_of_range_key_is_named() {
        assert_eq!(SubmitterConfig::default().validate(), Ok(()));
        let ms = |n| JobDuration(Duration::from_millis(n));
        let cases: [Spoil; 8] = [
            ("interval", |c| {
                c.interval = JobDuration(Duration::from_millis(10))
            }),
            ("heads_per_queue", |c| c.heads_per_queue = 0),
            ("max_admissions_per_round", |c| {
                c.max_admissions_per_round = 10_001
            }),
            ("reservations", |c| c.reservations = 1001),
            ("stuck_after", |c| {
                c.stuck_after = JobDuration(Duration::ZERO)
            }),
            ("default_runtime", |c| {
                c.default_runtime = JobDuration(Duration::ZERO)
            }),
            ("estimate_every", |c| {
                c.estimate_every = JobDuration(Duration::from_millis(99))
            }),
            ("estimate_every", |c| {
                c.estimate_every = JobDuration(Duration::from_secs(601))
            }),
        ];
        for (key, spoil) in cases {
            let mut config = SubmitterConfig::default();
            spoil(&mut config);
            let problems = config.validate().expect_err(key);
            assert_eq!(problems.len(), 1, "{key}: {problems:?}");
            assert!(
                problems[0].starts_with(&format!("submitter.{key}:")),
                "{problems:?}"
            );
        }
        let fast = SubmitterConfig {
            estimate_every: ms(100),
            ..SubmitterConfig::default()
        };
        assert_eq!(
            fast.validate(),
            Ok(()),
            "100ms is the shortest period allowed"
        );
    }
}
