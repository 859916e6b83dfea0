//! What a submitted application is doing, from its `SparkApplication` status and its pods —
//! and what to do about a failure. Pure functions; the watch loop feeds them.
//!
//! The Spark Operator reports `SUBMITTED → RUNNING → COMPLETED/FAILED` (with
//! `SUBMISSION_FAILED`, `FAILING`, … in between). The pods say more: an executor killed for
//! memory (`OOMKilled`, exit 137), an image that cannot be pulled, a driver running while its
//! executors stay Pending — the stuck state this orchestrator exists to prevent and, should it
//! happen anyway (a node lost, capacity taken by something outside our view), to end.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A pod as the classifier needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PodObservation {
    /// `status.phase`.
    pub phase: PodPhase,
    /// When the pod was created.
    pub created: Option<DateTime<Utc>>,
    /// The scheduler placed it (`spec.nodeName` is set).
    pub scheduled: bool,
    /// Containers' states.
    pub containers: Vec<ContainerObservation>,
}

/// Kubernetes pod phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodPhase {
    /// Not all containers started (unscheduled, pulling, …).
    #[default]
    Pending,
    /// Bound and running.
    Running,
    /// All containers exited 0.
    Succeeded,
    /// A container exited non-zero or the pod was killed.
    Failed,
    /// The node stopped reporting.
    Unknown,
}

impl PodPhase {
    /// Parses `status.phase`.
    pub fn parse(s: &str) -> Self {
        match s {
            "Running" => PodPhase::Running,
            "Succeeded" => PodPhase::Succeeded,
            "Failed" => PodPhase::Failed,
            "Unknown" => PodPhase::Unknown,
            _ => PodPhase::Pending,
        }
    }
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerObservation {
    /// `state.waiting.reason` (e.g. `ImagePullBackOff`).
    pub waiting_reason: Option<String>,
    /// `state.terminated` or `lastState.terminated`: reason and exit code.
    pub terminated: Option<(String, i32)>,
}

/// A SparkApplication and its pods.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppObservation {
    /// `status.applicationState.state` (empty before the operator's first reconcile).
    pub state: String,
    /// `status.applicationState.errorMessage`.
    pub error_message: Option<String>,
    /// The driver pod, once it exists.
    pub driver: Option<PodObservation>,
    /// Executor pods that exist.
    pub executors: Vec<PodObservation>,
}

impl AppObservation {
    /// The application has run its course: the operator says it ended (or is ending), or its
    /// driver has exited — which the tracker already counts as the attempt's end, before the
    /// operator's status catches up.
    pub fn finished(&self) -> bool {
        matches!(
            self.state.as_str(),
            "COMPLETED" | "SUCCEEDING" | "FAILED" | "FAILING" | "SUBMISSION_FAILED"
        ) || self
            .driver
            .as_ref()
            .is_some_and(|d| matches!(d.phase, PodPhase::Succeeded | PodPhase::Failed))
    }
}

/// Why an attempt failed, as far as the orchestrator acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// An executor was killed for exceeding its memory: retry with more.
    ExecutorOom,
    /// The driver was killed for exceeding its memory: retry with more.
    DriverOom,
    /// The image cannot be pulled (missing, or no credentials): retrying will not help.
    ImagePull,
    /// The operator refused the application (`SUBMISSION_FAILED`, invalid spec): retrying will
    /// not help.
    InvalidSpec,
    /// The driver ran with executors Pending past the limit; the application was stopped.
    Stuck,
    /// The application failed for its own reasons (non-zero exit).
    Application,
    /// The application or its driver disappeared.
    Lost,
}

impl FailureKind {
    /// Whether another attempt can succeed.
    pub fn retryable(self) -> bool {
        !matches!(self, FailureKind::ImagePull | FailureKind::InvalidSpec)
    }

    /// Wire and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ExecutorOom => "executor-oom",
            FailureKind::DriverOom => "driver-oom",
            FailureKind::ImagePull => "image-pull",
            FailureKind::InvalidSpec => "invalid-spec",
            FailureKind::Stuck => "stuck",
            FailureKind::Application => "application",
            FailureKind::Lost => "lost",
        }
    }
}

/// Where an attempt is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Created; the driver is not running yet.
    Submitted,
    /// The driver runs; `executors_running` of the gang's executors are up.
    Running {
        /// Executors Running.
        executors_running: u32,
    },
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully (or will not start).
    Failed {
        /// Category.
        kind: FailureKind,
        /// For humans.
        message: String,
    },
}

const OOM_EXIT: i32 = 137;
const PULL_REASONS: [&str; 4] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];

/// Classifies an application. `stuck` is given when the driver has been running with fewer
/// than `required_executors` executors Running for longer than the limit (see [`stuck_since`]).
pub fn classify(obs: &AppObservation, stuck: bool) -> Phase {
    // Evidence in the pods beats the operator's summary, which lags and is less specific.
    let pods = obs.driver.iter().chain(&obs.executors);
    if let Some(reason) = pods.flat_map(|p| &p.containers).find_map(|c| {
        c.waiting_reason
            .as_deref()
            .filter(|r| PULL_REASONS.contains(r))
    }) {
        return Phase::Failed {
            kind: FailureKind::ImagePull,
            message: format!("the image cannot be pulled ({reason})"),
        };
    }
    let oom = |p: &PodObservation| {
        p.containers.iter().any(
            |c| matches!(&c.terminated, Some((r, code)) if r == "OOMKilled" || *code == OOM_EXIT),
        )
    };
    let finished_failed = matches!(obs.state.as_str(), "FAILED" | "FAILING");
    if obs.executors.iter().any(oom) {
        return Phase::Failed {
            kind: FailureKind::ExecutorOom,
            message: "an executor was killed for exceeding its memory (OOMKilled)".into(),
        };
    }
    if obs.driver.as_ref().is_some_and(oom) {
        return Phase::Failed {
            kind: FailureKind::DriverOom,
            message: "the driver was killed for exceeding its memory (OOMKilled)".into(),
        };
    }
    let operator_message = || obs.error_message.clone().filter(|m| !m.is_empty());
    match obs.state.as_str() {
        "COMPLETED" | "SUCCEEDING" => return Phase::Succeeded,
        "SUBMISSION_FAILED" => {
            return Phase::Failed {
                kind: FailureKind::InvalidSpec,
                message: operator_message().unwrap_or_else(|| {
                    "the Spark Operator could not submit the application".into()
                }),
            };
        }
        _ if finished_failed => {
            return Phase::Failed {
                kind: FailureKind::Application,
                message: operator_message().unwrap_or_else(|| "the application failed".into()),
            };
        }
        _ => {}
    }
    if stuck {
        let driver_ran = obs.driver.as_ref().is_some_and(|d| d.scheduled);
        return Phase::Failed {
            kind: FailureKind::Stuck,
            message: if driver_ran {
                "the driver ran while executors stayed Pending".into()
            } else {
                "the driver found no node it may run on".into()
            },
        };
    }
    match obs.driver.as_ref().map(|d| d.phase) {
        Some(PodPhase::Running) => Phase::Running {
            executors_running: obs
                .executors
                .iter()
                .filter(|e| e.phase == PodPhase::Running)
                .count() as u32,
        },
        Some(PodPhase::Succeeded) => Phase::Succeeded,
        Some(PodPhase::Failed) => Phase::Failed {
            kind: FailureKind::Application,
            message: operator_message().unwrap_or_else(|| "the driver failed".into()),
        },
        _ => Phase::Submitted,
    }
}

/// Since when the application has been stuck, given when that was first seen (`previous`);
/// `None` when not stuck. Stuck is the driver Running with fewer than `required` executors
/// Running, or the driver not placed on any node: its admission's room was taken or its node
/// left, and it would hold its place in the scheduler's queue indefinitely.
pub fn stuck_since(
    obs: &AppObservation,
    required: u32,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let driver = obs.driver.as_ref();
    let driver_running = driver.is_some_and(|d| d.phase == PodPhase::Running);
    let driver_unplaced = driver.is_some_and(|d| d.phase == PodPhase::Pending && !d.scheduled);
    let running = obs
        .executors
        .iter()
        .filter(|e| e.phase == PodPhase::Running)
        .count() as u32;
    ((driver_running && running < required) || driver_unplaced).then(|| previous.unwrap_or(now))
}

/// Whether a stuck condition has lasted past the limit.
pub fn is_stuck(since: Option<DateTime<Utc>>, now: DateTime<Utc>, limit: Duration) -> bool {
    since.is_some_and(|s| (now - s).to_std().is_ok_and(|d| d >= limit))
}

/// What to do after a failed attempt. Backoff timing and the attempt budget belong to the job
/// store (it schedules retries durably); this decides what only the failure tells.
#[derive(Debug, Clone, PartialEq)]
pub enum RetryDecision {
    /// Run again (if the policy still allows): at once when `immediate` (the attempt never
    /// really ran), else after the policy's backoff; with memory grown by these factors.
    Retry {
        /// Requeue without backoff.
        immediate: bool,
        /// Executor memory growth for the next attempt (1.0 = unchanged).
        executor_memory_factor: f64,
        /// Driver memory growth for the next attempt.
        driver_memory_factor: f64,
    },
    /// Give up now: another attempt would fail the same way.
    DeadLetter,
}

/// Memory grows by this factor after each out-of-memory failure…
pub const OOM_GROWTH: f64 = 1.5;
/// …up to this factor of the original request in total.
pub const OOM_GROWTH_CAP: f64 = 3.0;

/// Decides the next step after an attempt failed with `kind`. `memory_factor_so_far` is the
/// (executor, driver) growth already applied by earlier out-of-memory retries.
pub fn retry_decision(kind: FailureKind, memory_factor_so_far: (f64, f64)) -> RetryDecision {
    if !kind.retryable() {
        return RetryDecision::DeadLetter;
    }
    let grow = |so_far: f64, oom: bool| {
        if oom {
            (so_far * OOM_GROWTH).min(OOM_GROWTH_CAP)
        } else {
            so_far
        }
    };
    RetryDecision::Retry {
        // A stuck attempt never made progress and its capacity is free again.
        immediate: kind == FailureKind::Stuck,
        executor_memory_factor: grow(memory_factor_so_far.0, kind == FailureKind::ExecutorOom),
        driver_memory_factor: grow(memory_factor_so_far.1, kind == FailureKind::DriverOom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(phase: PodPhase) -> PodObservation {
        PodObservation {
            phase,
            created: None,
            scheduled: true,
            containers: vec![ContainerObservation::default()],
        }
    }

    fn with_container(phase: PodPhase, c: ContainerObservation) -> PodObservation {
        PodObservation {
            phase,
            created: None,
            scheduled: true,
            containers: vec![c],
        }
    }

    fn app(
        state: &str,
        driver: Option<PodObservation>,
        executors: Vec<PodObservation>,
    ) -> AppObservation {
        AppObservation {
            state: state.into(),
            error_message: None,
            driver,
            executors,
        }
    }

    #[test]
    fn states_from_operator_and_pods() {
        let cases: Vec<(&str, AppObservation, Phase)> = vec![
            ("new", app("", None, vec![]), Phase::Submitted),
            (
                "driver pending",
                app("SUBMITTED", Some(pod(PodPhase::Pending)), vec![]),
                Phase::Submitted,
            ),
            (
                "driver running",
                app(
                    "RUNNING",
                    Some(pod(PodPhase::Running)),
                    vec![pod(PodPhase::Running), pod(PodPhase::Pending)],
                ),
                Phase::Running {
                    executors_running: 1,
                },
            ),
            (
                "completed",
                app("COMPLETED", Some(pod(PodPhase::Succeeded)), vec![]),
                Phase::Succeeded,
            ),
            (
                "driver succeeded before the operator noticed",
                app("RUNNING", Some(pod(PodPhase::Succeeded)), vec![]),
                Phase::Succeeded,
            ),
        ];
        for (name, obs, expected) in cases {
            assert_eq!(classify(&obs, false), expected, "{name}");
        }
    }

    #[test]
    fn an_application_has_finished_when_the_operator_or_its_driver_says_so() {
        let cases = [
            ("", None, false),
            ("SUBMITTED", Some(PodPhase::Pending), false),
            ("RUNNING", Some(PodPhase::Running), false),
            ("RUNNING", Some(PodPhase::Succeeded), true),
            ("RUNNING", Some(PodPhase::Failed), true),
            ("SUCCEEDING", Some(PodPhase::Running), true),
            ("COMPLETED", None, true),
            ("FAILING", Some(PodPhase::Running), true),
            ("SUBMISSION_FAILED", None, true),
        ];
        for (state, driver, finished) in cases {
            let obs = app(state, driver.map(pod), vec![]);
            assert_eq!(obs.finished(), finished, "{state} / {driver:?}");
        }
    }

    #[test]
    fn failure_categories() {
        let oom = ContainerObservation {
            waiting_reason: None,
            terminated: Some(("OOMKilled".into(), 137)),
        };
        let exit137 = ContainerObservation {
            waiting_reason: None,
            terminated: Some(("Error".into(), 137)),
        };
        let pull = ContainerObservation {
            waiting_reason: Some("ImagePullBackOff".into()),
            terminated: None,
        };
        let cases: Vec<(&str, AppObservation, FailureKind)> = vec![
            (
                "executor oom",
                app(
                    "RUNNING",
                    Some(pod(PodPhase::Running)),
                    vec![with_container(PodPhase::Failed, oom.clone())],
                ),
                FailureKind::ExecutorOom,
            ),
            (
                "executor exit 137",
                app(
                    "FAILED",
                    Some(pod(PodPhase::Failed)),
                    vec![with_container(PodPhase::Failed, exit137)],
                ),
                FailureKind::ExecutorOom,
            ),
            (
                "driver oom",
                app(
                    "FAILING",
                    Some(with_container(PodPhase::Failed, oom)),
                    vec![],
                ),
                FailureKind::DriverOom,
            ),
            (
                "image pull",
                app(
                    "SUBMITTED",
                    Some(with_container(PodPhase::Pending, pull)),
                    vec![],
                ),
                FailureKind::ImagePull,
            ),
            (
                "submission failed",
                app("SUBMISSION_FAILED", None, vec![]),
                FailureKind::InvalidSpec,
            ),
            (
                "application error",
                app("FAILED", Some(pod(PodPhase::Failed)), vec![]),
                FailureKind::Application,
            ),
            (
                "driver failed, operator lagging",
                app("RUNNING", Some(pod(PodPhase::Failed)), vec![]),
                FailureKind::Application,
            ),
        ];
        for (name, obs, expected) in cases {
            match classify(&obs, false) {
                Phase::Failed { kind, message } => {
                    assert_eq!(kind, expected, "{name}");
                    assert!(!message.is_empty());
                }
                other => panic!("{name}: {other:?}"),
            }
        }
        let mut with_msg = app("FAILED", Some(pod(PodPhase::Failed)), vec![]);
        with_msg.error_message = Some("driver container failed with ExitCode: 1".into());
        assert!(
            matches!(classify(&with_msg, false), Phase::Failed { message, .. } if message.contains("ExitCode: 1"))
        );
    }

    #[test]
    fn stuck_detection() {
        let t = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let stuck_app = app(
            "RUNNING",
            Some(pod(PodPhase::Running)),
            vec![pod(PodPhase::Running), pod(PodPhase::Pending)],
        );
        let since = stuck_since(&stuck_app, 2, None, t);
        assert_eq!(since, Some(t));
        assert_eq!(
            stuck_since(&stuck_app, 2, Some(t - chrono::Duration::seconds(5)), t),
            Some(t - chrono::Duration::seconds(5)),
            "keeps the first sighting"
        );
        assert_eq!(
            stuck_since(&stuck_app, 1, since, t),
            None,
            "enough executors"
        );
        let driver_pending = app("SUBMITTED", Some(pod(PodPhase::Pending)), vec![]);
        assert_eq!(
            stuck_since(&driver_pending, 2, None, t),
            None,
            "a driver placed but still starting (pulling its image) is not stuck"
        );
        let unplaced = app(
            "SUBMITTED",
            Some(PodObservation {
                scheduled: false,
                ..pod(PodPhase::Pending)
            }),
            vec![],
        );
        assert_eq!(
            stuck_since(&unplaced, 2, None, t),
            Some(t),
            "a driver no node takes is"
        );
        assert!(matches!(
            classify(&unplaced, true),
            Phase::Failed { kind: FailureKind::Stuck, message } if message.contains("no node")
        ));
        let limit = Duration::from_secs(300);
        assert!(!is_stuck(since, t + chrono::Duration::seconds(299), limit));
        assert!(is_stuck(since, t + chrono::Duration::seconds(300), limit));
        assert!(matches!(
            classify(&stuck_app, true),
            Phase::Failed {
                kind: FailureKind::Stuck,
                ..
            }
        ));
    }

    #[test]
    fn retries_learn_from_the_failure() {
        assert_eq!(
            retry_decision(FailureKind::ImagePull, (1.0, 1.0)),
            RetryDecision::DeadLetter
        );
        assert_eq!(
            retry_decision(FailureKind::InvalidSpec, (1.0, 1.0)),
            RetryDecision::DeadLetter
        );
        assert_eq!(
            retry_decision(FailureKind::Application, (1.0, 1.0)),
            RetryDecision::Retry {
                immediate: false,
                executor_memory_factor: 1.0,
                driver_memory_factor: 1.0
            }
        );
        assert_eq!(
            retry_decision(FailureKind::ExecutorOom, (1.0, 1.0)),
            RetryDecision::Retry {
                immediate: false,
                executor_memory_factor: 1.5,
                driver_memory_factor: 1.0
            }
        );
        assert_eq!(
            retry_decision(FailureKind::ExecutorOom, (2.25, 1.0)),
            RetryDecision::Retry {
                immediate: false,
                executor_memory_factor: OOM_GROWTH_CAP,
                driver_memory_factor: 1.0
            },
            "bounded"
        );
        assert_eq!(
            retry_decision(FailureKind::DriverOom, (1.5, 1.0)),
            RetryDecision::Retry {
                immediate: false,
                executor_memory_factor: 1.5,
                driver_memory_factor: 1.5
            },
            "earlier growth is kept"
        );
        assert_eq!(
            retry_decision(FailureKind::Stuck, (1.0, 1.0)),
            RetryDecision::Retry {
                immediate: true,
                executor_memory_factor: 1.0,
                driver_memory_factor: 1.0
            }
        );
    }
}
