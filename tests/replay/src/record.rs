//! What a replay records, fed by events as they happen (simulated seconds since the replay
//! started): per job its milestones, per SparkApplication its pods' phases and the episodes
//! in which its driver ran while an executor was pending, and periodic cluster samples.
//!
//! The [`Recorder`] is plain data driven by method calls, so the watch plumbing in
//! [`crate::replay`] stays thin and the bookkeeping is unit-tested.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::estimates::Marks;
use crate::trace::{Priority, TraceJob};

/// One job's milestones (simulated seconds since the replay started).
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Job name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Queue level.
    pub priority: Priority,
    /// Trace tag.
    pub tag: Option<String>,
    /// Executors it needs to make progress.
    pub required_executors: u32,
    /// Published (or, without the orchestrator, created).
    pub enqueued: Option<f64>,
    /// Its first SparkApplication appeared.
    pub admitted: Option<f64>,
    /// A driver of it first ran.
    pub driver_running: Option<f64>,
    /// All its required executors first ran at once.
    pub executors_ready: Option<f64>,
    /// It reached its end (see [`Recorder::finish_job`]).
    pub finished: Option<f64>,
    /// How it ended (`succeeded`, `dead`, `COMPLETED`, `FAILED`, …), if it did.
    pub end_state: Option<String>,
    /// SparkApplications created for it (attempts).
    pub applications: u32,
    /// Its applications' longest stretch with the driver running and an executor pending
    /// (simulated seconds; set by [`Recorder::close`]).
    pub longest_stuck: f64,
}

impl JobRecord {
    /// A record for a trace line, nothing happened yet.
    pub fn new(job: &TraceJob) -> Self {
        Self {
            name: job.name.clone(),
            namespace: job.namespace.clone(),
            priority: job.priority,
            tag: job.tag.clone(),
            required_executors: job.executor.required(),
            enqueued: None,
            admitted: None,
            driver_running: None,
            executors_ready: None,
            finished: None,
            end_state: None,
            applications: 0,
            longest_stuck: 0.0,
        }
    }

    /// Enqueue → all required executors running: how long the job waited to compute.
    pub fn wait(&self) -> Option<f64> {
        Some(self.executors_ready? - self.enqueued?)
    }
}

/// Pod phase, as far as the replay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Not scheduled or not started.
    Pending,
    /// Running.
    Running,
    /// Succeeded or failed.
    Done,
}

impl Phase {
    /// From `status.phase`.
    pub fn parse(phase: Option<&str>) -> Phase {
        match phase {
            Some("Running") => Phase::Running,
            Some("Succeeded") | Some("Failed") => Phase::Done,
            _ => Phase::Pending,
        }
    }
}

/// A stretch of time in which an application's driver ran while an executor was pending.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Episode {
    /// Start.
    pub start: f64,
    /// End (`None`: still going when the replay ended).
    pub end: Option<f64>,
}

/// One SparkApplication.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AppTrack {
    /// Index of its job in the trace.
    pub job: usize,
    /// First seen.
    pub created: f64,
    /// Terminal state and when (`COMPLETED`, `FAILED`).
    pub terminal: Option<(f64, String)>,
    /// Deleted (by the stuck detector, the TTL, …).
    pub gone: Option<f64>,
    /// Driver-running-executors-pending stretches.
    pub stuck: Vec<Episode>,
    #[serde(skip)]
    driver: HashMap<String, Phase>,
    #[serde(skip)]
    executors: HashMap<String, Phase>,
}

impl AppTrack {
    fn driver_running(&self) -> bool {
        self.driver.values().any(|p| *p == Phase::Running)
    }
    fn executors_pending(&self) -> bool {
        self.executors.values().any(|p| *p == Phase::Pending)
    }
    fn executors_running(&self) -> u32 {
        self.executors
            .values()
            .filter(|p| **p == Phase::Running)
            .count() as u32
    }

    /// Opens or closes a stuck episode as the condition now holds or not.
    fn update_stuck(&mut self, t: f64) {
        let stuck = self.driver_running() && self.executors_pending();
        let open = self.stuck.last().is_some_and(|e| e.end.is_none());
        if stuck && !open {
            self.stuck.push(Episode {
                start: t,
                end: None,
            });
        } else if !stuck
            && open
            && let Some(e) = self.stuck.last_mut()
        {
            e.end = Some(t);
        }
    }
}

/// One cluster sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// When.
    pub t: f64,
    /// Requested cpu of scheduled, unfinished pods (millicores).
    pub cpu_requested: u64,
    /// Allocatable cpu (millicores).
    pub cpu_allocatable: u64,
    /// Requested memory (bytes).
    pub memory_requested: u64,
    /// Allocatable memory (bytes).
    pub memory_allocatable: u64,
    /// Jobs enqueued but without an application yet.
    pub waiting: usize,
    /// Whether at least one of them would fit the free capacity now (gang bin-packed on the
    /// real nodes).
    pub waiting_fits: bool,
}

/// Role of a Spark pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Driver.
    Driver,
    /// Executor.
    Executor,
}

/// Everything a replay records.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Per trace line.
    pub jobs: Vec<JobRecord>,
    /// By `namespace/name`.
    pub apps: BTreeMap<String, AppTrack>,
    /// Cluster samples.
    pub samples: Vec<Sample>,
    /// Stretches in which the replay process itself did not run (simulated seconds each):
    /// simulated time went on meanwhile, so what happened in them was seen late.
    pub stalls: Vec<f64>,
    /// `FailedScheduling` events (a pod found no node), counted at the end.
    pub failed_scheduling: u32,
    /// Pods evicted for a higher-priority pod, counted at the end.
    pub preempted: u32,
    /// Jobs sent back to their queue by the orchestrator's preemption (from the store).
    pub preemptions: u32,
    /// Work lost to those preemptions, simulated cpu·seconds.
    pub lost_cpu_seconds: f64,
    /// Start estimates seen per job (by trace line).
    pub estimates: BTreeMap<usize, Marks>,
    by_id: HashMap<String, usize>,
}

impl Recorder {
    /// A recorder for a trace whose jobs carry these ids (same order).
    pub fn new(trace: &[TraceJob], ids: &[String]) -> Self {
        Self {
            jobs: trace.iter().map(JobRecord::new).collect(),
            apps: BTreeMap::new(),
            samples: Vec::new(),
            stalls: Vec::new(),
            failed_scheduling: 0,
            preempted: 0,
            preemptions: 0,
            lost_cpu_seconds: 0.0,
            estimates: BTreeMap::new(),
            by_id: ids
                .iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect(),
        }
    }

    /// Index of the job with this id.
    pub fn job_index(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// At simulated time `seen` the pending job `job_id` had the estimated start `estimate`.
    pub fn estimate_seen(&mut self, job_id: &str, seen: f64, estimate: f64) {
        if let Some(job) = self.job_index(job_id) {
            self.estimates.entry(job).or_default().note(seen, estimate);
        }
    }

    /// The job was published / created.
    pub fn enqueued(&mut self, job: usize, t: f64) {
        if let Some(j) = self.jobs.get_mut(job) {
            j.enqueued.get_or_insert(t);
        }
    }

    /// An application of a job was seen (created or updated) in `state`.
    pub fn app_seen(&mut self, key: &str, job_id: &str, state: &str, t: f64) {
        let Some(job) = self.job_index(job_id) else {
            return;
        };
        let app = self.apps.entry(key.to_owned()).or_insert_with(|| {
            if let Some(j) = self.jobs.get_mut(job) {
                j.applications += 1;
                j.admitted.get_or_insert(t);
            }
            AppTrack {
                job,
                created: t,
                ..AppTrack::default()
            }
        });
        if app.terminal.is_none() && matches!(state, "COMPLETED" | "FAILED") {
            app.terminal = Some((t, state.to_owned()));
        }
    }

    /// An application was deleted.
    pub fn app_gone(&mut self, key: &str, t: f64) {
        if let Some(app) = self.apps.get_mut(key) {
            app.gone.get_or_insert(t);
            app.driver.clear();
            app.executors.clear();
            app.update_stuck(t);
        }
    }

    /// A pod of application `app_key` (job `job_id`) is in `phase` (`None`: deleted).
    pub fn pod(
        &mut self,
        app_key: &str,
        job_id: &str,
        pod: &str,
        role: Role,
        phase: Option<Phase>,
        t: f64,
    ) {
        if !self.apps.contains_key(app_key) {
            // Pods can be seen before their application's event arrives.
            self.app_seen(app_key, job_id, "", t);
        }
        let Some(app) = self.apps.get_mut(app_key) else {
            return;
        };
        let pods = match role {
            Role::Driver => &mut app.driver,
            Role::Executor => &mut app.executors,
        };
        match phase {
            Some(p) => {
                pods.insert(pod.to_owned(), p);
            }
            None => {
                pods.remove(pod);
            }
        }
        app.update_stuck(t);
        let (driver, running, job) = (app.driver_running(), app.executors_running(), app.job);
        if driver && let Some(j) = self.jobs.get_mut(job) {
            j.driver_running.get_or_insert(t);
            if running >= j.required_executors {
                j.executors_ready.get_or_insert(t);
            }
        }
    }

    /// Jobs enqueued that have no application yet.
    pub fn waiting(&self) -> Vec<usize> {
        self.jobs
            .iter()
            .enumerate()
            .filter(|(_, j)| j.enqueued.is_some() && j.admitted.is_none())
            .map(|(i, _)| i)
            .collect()
    }

    /// Applications in a terminal state, counted per job (for the run-without-a-store stop
    /// condition): jobs whose latest application ended.
    pub fn jobs_with_ended_app(&self) -> usize {
        let mut ended = vec![false; self.jobs.len()];
        for app in self.apps.values() {
            if let Some(e) = ended.get_mut(app.job) {
                *e |= app.terminal.is_some();
            }
        }
        ended.into_iter().filter(|e| *e).count()
    }

    /// At the replay's end: each job's longest stuck stretch over its applications (an open
    /// one counted up to `end`).
    pub fn close(&mut self, end: f64) {
        for app in self.apps.values() {
            if let Some(j) = self.jobs.get_mut(app.job) {
                j.longest_stuck = j
                    .longest_stuck
                    .max(crate::metrics::longest_episode(&app.stuck, end));
            }
        }
    }

    /// Marks job `job` ended in `state`: its finish time is the last terminal or deletion
    /// event of its applications (or `fallback` when none was seen).
    pub fn finish_job(&mut self, job: usize, state: &str, fallback: f64) {
        let last = self
            .apps
            .values()
            .filter(|a| a.job == job)
            .filter_map(|a| a.terminal.as_ref().map(|(t, _)| *t).or(a.gone))
            .fold(None, |acc: Option<f64>, t| {
                Some(acc.map_or(t, |a| a.max(t)))
            });
        if let Some(j) = self.jobs.get_mut(job) {
            j.finished = Some(last.unwrap_or(fallback));
            j.end_state = Some(state.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate;

    fn recorder() -> Recorder {
        let trace = generate::deadlock(2, 60.0);
        Recorder::new(&trace, &["id0".into(), "id1".into()])
    }

    #[test]
    fn milestones_follow_pod_phases() {
        let mut r = recorder();
        r.enqueued(0, 1.0);
        assert_eq!(r.waiting(), [0]);
        r.app_seen("ns-00/a", "id0", "", 2.0);
        assert!(r.waiting().is_empty());
        r.pod(
            "ns-00/a",
            "id0",
            "d",
            Role::Driver,
            Some(Phase::Pending),
            3.0,
        );
        r.pod(
            "ns-00/a",
            "id0",
            "d",
            Role::Driver,
            Some(Phase::Running),
            5.0,
        );
        for (i, t) in [(1, 6.0), (2, 7.0)] {
            r.pod(
                "ns-00/a",
                "id0",
                &format!("e{i}"),
                Role::Executor,
                Some(Phase::Running),
                t,
            );
        }
        assert_eq!(r.jobs[0].executors_ready, None, "3 required, 2 running");
        r.pod(
            "ns-00/a",
            "id0",
            "e3",
            Role::Executor,
            Some(Phase::Running),
            9.0,
        );
        let j = &r.jobs[0];
        assert_eq!(
            (j.admitted, j.driver_running, j.executors_ready),
            (Some(2.0), Some(5.0), Some(9.0))
        );
        assert_eq!(j.wait(), Some(8.0));
        assert!(r.apps["ns-00/a"].stuck.is_empty());
        r.app_seen("ns-00/a", "id0", "COMPLETED", 70.0);
        r.app_seen("ns-00/a", "id0", "COMPLETED", 75.0);
        assert_eq!(r.jobs_with_ended_app(), 1);
        r.finish_job(0, "succeeded", 99.0);
        assert_eq!(r.jobs[0].finished, Some(70.0));
        assert_eq!(r.jobs[0].applications, 1);
    }

    #[test]
    fn driver_running_with_a_pending_executor_is_an_episode() {
        let mut r = recorder();
        r.pod(
            "ns-01/b",
            "id1",
            "d",
            Role::Driver,
            Some(Phase::Running),
            10.0,
        );
        r.pod(
            "ns-01/b",
            "id1",
            "e1",
            Role::Executor,
            Some(Phase::Pending),
            11.0,
        );
        r.pod(
            "ns-01/b",
            "id1",
            "e2",
            Role::Executor,
            Some(Phase::Pending),
            11.5,
        );
        r.pod(
            "ns-01/b",
            "id1",
            "e1",
            Role::Executor,
            Some(Phase::Running),
            20.0,
        );
        assert_eq!(
            r.apps["ns-01/b"].stuck,
            [Episode {
                start: 11.0,
                end: None
            }]
        );
        r.pod(
            "ns-01/b",
            "id1",
            "e2",
            Role::Executor,
            Some(Phase::Running),
            30.0,
        );
        r.pod(
            "ns-01/b",
            "id1",
            "e3",
            Role::Executor,
            Some(Phase::Pending),
            40.0,
        );
        r.app_gone("ns-01/b", 50.0);
        assert_eq!(
            r.apps["ns-01/b"].stuck,
            [
                Episode {
                    start: 11.0,
                    end: Some(30.0)
                },
                Episode {
                    start: 40.0,
                    end: Some(50.0)
                }
            ]
        );
        assert_eq!(
            r.jobs[1].admitted,
            Some(10.0),
            "pods before the app event count"
        );
        r.finish_job(1, "dead", 99.0);
        assert_eq!(
            r.jobs[1].finished,
            Some(50.0),
            "deleted app: its deletion time"
        );
        r.close(99.0);
        assert_eq!(r.jobs[1].longest_stuck, 19.0, "the longer of 19 s and 10 s");
        assert_eq!(r.jobs[0].longest_stuck, 0.0);
    }

    #[test]
    fn unknown_jobs_are_ignored() {
        let mut r = recorder();
        r.app_seen("x/y", "someone-else", "RUNNING", 1.0);
        r.pod(
            "x/y",
            "someone-else",
            "p",
            Role::Driver,
            Some(Phase::Running),
            1.0,
        );
        assert!(r.apps.is_empty());
    }
}
