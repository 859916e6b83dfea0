//! What `GET /v1/jobs/{id}` answers: the stored job with its state, history, queue position,
//! start estimate and — while it runs — its pods. Kept apart from the handlers so the wire
//! shape (and its OpenAPI schema) reads in one place.

use capacity::DriverState;
use chrono::{DateTime, Utc};
use jobs::{Job, JobId, JobState, Priority};
use queues::store::{JobDetail, TransitionRecord, WaitInfo};
use serde::Serialize;

/// A submitted or running attempt's pods, from the daemon's watch cache.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodsView {
    /// `pending`, `running`, `ended`; `null` until the driver pod exists.
    #[schema(required)]
    pub(super) driver: Option<DriverState>,
    /// Executor pods running.
    pub(super) executors_running: u32,
    /// Executors the job needs to start (`instances`, or dynamic allocation's initial count).
    pub(super) executors_required: u32,
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = JobDetail)]
pub struct JobView {
    /// Id.
    pub(super) id: JobId,
    /// Name.
    pub(super) name: String,
    /// Namespace.
    pub(super) namespace: String,
    /// Queue level.
    pub(super) priority: Priority,
    /// State.
    pub(super) state: JobState,
    /// Reason code of the last change.
    #[schema(required)]
    pub(super) reason: Option<String>,
    /// Its sentence.
    #[schema(required)]
    pub(super) message: Option<String>,
    /// Current attempt (1 = first).
    pub(super) attempt: u32,
    /// Attempts its retry policy allows.
    pub(super) max_attempts: u32,
    /// Attempts left after this one.
    pub(super) retries_left: u32,
    /// 1 = head of its queue; null when not pending.
    #[schema(required)]
    pub(super) queue_position: Option<u64>,
    /// Why it waits, as the submitter last said.
    #[schema(required)]
    pub(super) waiting: Option<WaitInfo>,
    /// When the leader's replay of the queue expects it to start (queued or waiting only;
    /// null otherwise, or when the replay never starts it).
    #[schema(required)]
    pub(super) estimated_start_at: Option<DateTime<Utc>>,
    /// The SparkApplication of the current attempt.
    #[schema(required)]
    pub(super) spark_application: Option<String>,
    /// The current attempt's pods, from the watch cache: only while submitted or running, and
    /// when this process watches the cluster.
    #[schema(required)]
    pub(super) pods: Option<PodsView>,
    /// Where it came from.
    #[schema(pattern = "^(amqp|http|cron)$")]
    pub(super) source: String,
    /// When it entered the store.
    pub(super) enqueued_at: DateTime<Utc>,
    /// When it became pending last.
    pub(super) queued_at: DateTime<Utc>,
    /// Last change.
    pub(super) updated_at: DateTime<Utc>,
    /// When it ended.
    #[schema(required)]
    pub(super) finished_at: Option<DateTime<Utc>>,
    /// When a retrying job's next attempt is due.
    #[schema(required)]
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    /// When it expires if not started (its `ttl`).
    #[schema(required)]
    pub(super) expires_at: Option<DateTime<Utc>>,
    /// Every change, oldest first.
    pub(super) history: Vec<TransitionRecord>,
    /// The normalised job (defaults applied): itself a valid message.
    #[schema(value_type = jobs::model::JobMessage)]
    pub(super) job: Job,
}

impl From<JobDetail> for JobView {
    fn from(d: JobDetail) -> Self {
        let s = d.job;
        Self {
            id: s.job.id,
            name: s.job.name.clone(),
            namespace: s.job.namespace.clone(),
            priority: s.job.priority,
            state: s.state,
            reason: s.state_reason.clone(),
            message: s.state_message.clone(),
            attempt: s.attempt,
            max_attempts: s.max_attempts,
            retries_left: s.retries_left(),
            queue_position: d.queue_position,
            waiting: s.waiting.clone(),
            estimated_start_at: None,
            spark_application: s.spark_app_name.clone(),
            pods: None,
            source: s.source.clone(),
            enqueued_at: s.enqueued_at,
            queued_at: s.queued_at,
            updated_at: s.updated_at,
            finished_at: s.finished_at,
            next_attempt_at: s.next_attempt_at,
            expires_at: s.expires_at,
            history: d.history,
            job: s.job,
        }
    }
}
