//! Job states (the API contract) and the one pure function that says which changes are legal.
//!
//! Every write in the job store goes through [`check_transition`], so an illegal change is a
//! typed error at the call site rather than a corrupt history. The table is deliberately
//! small: a job that reached the cluster (`submitted`/`running`) never goes straight back to
//! `queued` — it goes through `retrying`, which bumps the attempt number, so the same attempt
//! can never produce two SparkApplications.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a job is in its life. Wire names are lowercase (`"waiting"`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// In the store, waiting for the submitter to look at it.
    Queued,
    /// Looked at, but the cluster has no room yet; carries a reason code and message.
    Waiting,
    /// A SparkApplication was created for the current attempt.
    Submitted,
    /// The driver is running.
    Running,
    /// Finished successfully (terminal).
    Succeeded,
    /// The application failed; a retry or a dead letter may follow, otherwise terminal.
    Failed,
    /// Waiting for its next attempt's time (`next_attempt_at`); becomes `queued` when due.
    Retrying,
    /// Given up on, with a reason; sits in the dead-letter queue and may be requeued.
    Dead,
    /// Cancelled by a user (terminal).
    Cancelled,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 9] = [
        JobState::Queued,
        JobState::Waiting,
        JobState::Submitted,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Retrying,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The wire name, also the `{state}` in event routing keys and the value stored in SQL.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Waiting => "waiting",
            JobState::Submitted => "submitted",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Retrying => "retrying",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Pending: counted in the intake window and returned as a pending head.
    pub fn is_pending(self) -> bool {
        matches!(self, JobState::Queued | JobState::Waiting)
    }

    /// On the cluster: its footprint counts as running usage.
    pub fn is_active(self) -> bool {
        matches!(self, JobState::Submitted | JobState::Running)
    }

    /// Finished: has a `finished_at` and is subject to retention. `failed` and `dead` may
    /// still move on (retry, requeue); `succeeded` and `cancelled` never do.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state {s:?}"))
    }
}

/// Whether a job may go from `from` to `to`. `from = None` is creation.
///
/// | from | to |
/// |---|---|
/// | (new) | queued |
/// | queued | waiting, submitted, dead, cancelled |
/// | waiting | queued, submitted, dead, cancelled |
/// | submitted | queued (preempted), running, succeeded, failed, retrying, dead, cancelled |
/// | running | queued (preempted), succeeded, failed, retrying, dead, cancelled |
/// | failed | retrying, dead |
/// | retrying | queued, dead, cancelled |
/// | dead | queued (requeue) |
/// | succeeded, cancelled | — |
///
/// A reason change while `waiting` is not a transition (see `JobStore::mark_waiting`).
pub fn can_transition(from: Option<JobState>, to: JobState) -> bool {
    use JobState::*;
    match from {
        None => to == Queued,
        Some(from) => matches!(
            (from, to),
            (Queued, Waiting | Submitted | Dead | Cancelled)
                | (Waiting, Queued | Submitted | Dead | Cancelled)
                | (
                    Submitted,
                    Queued | Running | Succeeded | Failed | Retrying | Dead | Cancelled
                )
                | (
                    Running,
                    Queued | Succeeded | Failed | Retrying | Dead | Cancelled
                )
                | (Failed, Retrying | Dead)
                | (Retrying, Queued | Dead | Cancelled)
                | (Dead, Queued)
        ),
    }
}

/// An illegal state change, as data (the store wraps it with the job id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{} → {to} is not a legal job transition", from.map_or("(new)", JobState::as_str))]
pub struct IllegalTransition {
    /// The state the job is in (`None`: not created yet).
    pub from: Option<JobState>,
    /// The state asked for.
    pub to: JobState,
}

/// [`can_transition`] as a `Result`, for `?`.
pub fn check_transition(from: Option<JobState>, to: JobState) -> Result<(), IllegalTransition> {
    if can_transition(from, to) {
        Ok(())
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// Why a job (or a message that never became one) is in the dead-letter queue. Stable
/// kebab-case strings: they are AMQP header values, SQL values and metric labels.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DeadReason {
    /// The message is not a valid job (the problems say why).
    Invalid,
    /// Published for a namespace this orchestrator does not serve.
    UnknownNamespace,
    /// No node could ever hold it (the capacity checker said `Never`).
    NeverFits,
    /// Not started within its `ttl`.
    Expired,
    /// Its retry policy's attempts are used up.
    RetriesExhausted,
    /// Cancelled by an operator into the DLQ (so it can be requeued).
    Cancelled,
    /// Refused by an operator or a policy (the message says which).
    Rejected,
    /// An attempt failed in a way another attempt cannot fix (the image cannot be pulled, the
    /// Spark Operator refused the spec).
    Unrecoverable,
}

impl DeadReason {
    /// Every reason.
    pub const ALL: [DeadReason; 8] = [
        DeadReason::Invalid,
        DeadReason::UnknownNamespace,
        DeadReason::NeverFits,
        DeadReason::Expired,
        DeadReason::RetriesExhausted,
        DeadReason::Cancelled,
        DeadReason::Rejected,
        DeadReason::Unrecoverable,
    ];

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::Invalid => "invalid",
            DeadReason::UnknownNamespace => "unknown-namespace",
            DeadReason::NeverFits => "never-fits",
            DeadReason::Expired => "expired",
            DeadReason::RetriesExhausted => "retries-exhausted",
            DeadReason::Cancelled => "cancelled",
            DeadReason::Rejected => "rejected",
            DeadReason::Unrecoverable => "unrecoverable",
        }
    }
}

impl fmt::Display for DeadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeadReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeadReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown dead-letter reason {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::JobState::*;
    use super::*;

    /// The whole table, spelled out: every (from, to) pair not listed here is illegal.
    const LEGAL: &[(Option<JobState>, JobState)] = &[
        (None, Queued),
        (Some(Queued), Waiting),
        (Some(Queued), Submitted),
        (Some(Queued), Dead),
        (Some(Queued), Cancelled),
        (Some(Waiting), Queued),
        (Some(Waiting), Submitted),
        (Some(Waiting), Dead),
        (Some(Waiting), Cancelled),
        (Some(Submitted), Queued),
        (Some(Submitted), Running),
        (Some(Submitted), Succeeded),
        (Some(Submitted), Failed),
        (Some(Submitted), Retrying),
        (Some(Submitted), Dead),
        (Some(Submitted), Cancelled),
        (Some(Running), Queued),
        (Some(Running), Succeeded),
        (Some(Running), Failed),
        (Some(Running), Retrying),
        (Some(Running), Dead),
        (Some(Running), Cancelled),
        (Some(Failed), Retrying),
        (Some(Failed), Dead),
        (Some(Retrying), Queued),
        (Some(Retrying), Dead),
        (Some(Retrying), Cancelled),
        (Some(Dead), Queued),
    ];

    #[test]
    fn transition_table_is_exactly_the_documented_one() {
        let froms = std::iter::once(None).chain(JobState::ALL.into_iter().map(Some));
        for from in froms {
            for to in JobState::ALL {
                let expected = LEGAL.contains(&(from, to));
                assert_eq!(
                    can_transition(from, to),
                    expected,
                    "{from:?} → {to:?} should be {}",
                    if expected { "legal" } else { "illegal" }
                );
            }
        }
    }

    #[test]
    fn no_self_transitions_and_terminal_states_are_final() {
        for s in JobState::ALL {
            assert!(!can_transition(Some(s), s), "{s} → {s}");
        }
        for to in JobState::ALL {
            assert!(!can_transition(Some(Succeeded), to));
            assert!(!can_transition(Some(Cancelled), to));
        }
    }

    #[test]
    fn the_cluster_is_never_left_without_a_new_attempt() {
        // submitted/running → queued is preemption only: the store's `requeue_preempted`
        // starts a new attempt with it (its generic `transition` refuses it, which would reuse
        // the attempt number: two SparkApplications).
        assert!(can_transition(Some(Submitted), Queued));
        assert!(can_transition(Some(Running), Queued));
        assert!(!can_transition(Some(Running), Waiting));
        assert!(can_transition(Some(Running), Retrying));
    }

    #[test]
    fn check_transition_reports_both_ends() {
        let err = check_transition(Some(Succeeded), Queued).unwrap_err();
        assert_eq!(
            err.to_string(),
            "succeeded → queued is not a legal job transition"
        );
        let err = check_transition(None, Running).unwrap_err();
        assert_eq!(
            err.to_string(),
            "(new) → running is not a legal job transition"
        );
        assert!(check_transition(Some(Dead), Queued).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        for r in DeadReason::ALL {
            assert_eq!(r.as_str().parse::<DeadReason>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("done".parse::<JobState>().is_err());
    }

    #[test]
    fn classification() {
        let pending: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_pending())
            .collect();
        assert_eq!(pending, [Queued, Waiting]);
        let active: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(active, [Submitted, Running]);
        let finished: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.is_finished())
            .collect();
        assert_eq!(finished, [Succeeded, Failed, Dead, Cancelled]);
    }
}
