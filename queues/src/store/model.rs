//! The job store's public vocabulary: what goes in, what comes out. Plain data, no I/O.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use jobs::model::{Job, JobId, Priority};
use jobs::quantity::{CpuMillis, MemoryBytes};
use jobs::state::{DeadReason, JobState};
use jobs::validate::Problem;

/// Where a job came from (stored, shown in the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobSource {
    /// A RabbitMQ message.
    #[default]
    Amqp,
    /// `POST /v1/jobs`.
    Http,
    /// A cron schedule.
    Cron,
}

impl JobSource {
    /// Stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            JobSource::Amqp => "amqp",
            JobSource::Http => "http",
            JobSource::Cron => "cron",
        }
    }
}

/// The resources a submitted attempt holds on the cluster (driver + executors, Spark overhead
/// included), summed per namespace as running usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FootprintRecord {
    /// CPU requests.
    pub cpu: CpuMillis,
    /// Memory requests.
    pub memory: MemoryBytes,
}

/// Why a change happened: a machine code, a sentence, optional structured details. Stored in
/// the history and carried by the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Note {
    /// Stable code (`capacity`, `driver-oom`, `operator`, …).
    pub reason: Option<String>,
    /// For humans.
    pub message: String,
    /// Anything else worth keeping (exit codes, pod names).
    pub details: Option<Value>,
}

impl Note {
    /// A note with a reason code.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason.into()),
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// The SparkApplication created for an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Its name (unique across all attempts of all jobs).
    pub spark_app_name: String,
    /// The attempt it runs; must be the job's current attempt.
    pub attempt: u32,
    /// What it holds on the cluster.
    pub footprint: FootprintRecord,
}

/// The target of [`crate::store::JobStore::transition`]. `waiting`, `retrying` and `dead`
/// have their own methods (they need a reason, a schedule, a dead-letter record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Back to the queue from `waiting` (or from `retrying` when an operator forces it).
    Queued,
    /// Handed to the cluster.
    Submitted(Submission),
    /// The driver runs.
    Running,
    /// Finished well.
    Succeeded,
    /// The application failed (a retry or dead letter may follow).
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl Target {
    /// The state it leads to.
    pub fn state(&self) -> JobState {
        match self {
            Target::Queued => JobState::Queued,
            Target::Submitted(_) => JobState::Submitted,
            Target::Running => JobState::Running,
            Target::Succeeded => JobState::Succeeded,
            Target::Failed => JobState::Failed,
            Target::Cancelled => JobState::Cancelled,
        }
    }
}

/// Why a pending job is waiting, as the submitter last said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitInfo {
    /// Reason code (`capacity`, `quota`, `reserved`, …).
    pub code: String,
    /// The sentence (`no node fits executor: memory 7.2Gi > 6Gi free on any spot node`).
    pub message: String,
    /// Since when it has been waiting.
    pub since: DateTime<Utc>,
    /// Queue position at the time of writing.
    pub position: Option<u64>,
}

/// An update for [`crate::store::JobStore::mark_waiting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingMark {
    /// The job (must be queued or waiting).
    pub job: JobId,
    /// Reason code.
    pub code: String,
    /// Sentence.
    pub message: String,
    /// Position in its queue (1 = head).
    pub position: Option<u64>,
}

/// One pending job, as the submitter sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingJob {
    /// The job (shared: the submitter keeps a backlog's jobs across rounds instead of decoding
    /// them again, see [`JobStore::pending_heads_reusing`](crate::JobStore::pending_heads_reusing)).
    pub job: Arc<Job>,
    /// `queued` or `waiting`.
    pub state: JobState,
    /// Attempt the next submission is for.
    pub attempt: u32,
    /// When it entered the store.
    pub enqueued_at: DateTime<Utc>,
    /// When it (last) became pending: intake, a due retry, a requeue.
    pub queued_at: DateTime<Utc>,
    /// The current waiting reason.
    pub waiting: Option<WaitInfo>,
    /// Position in its (namespace, priority) queue, 1 = head.
    pub position: u64,
}

/// Sum of the footprints of a namespace's submitted and running jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceUsage {
    /// Namespace.
    pub namespace: String,
    /// Submitted + running jobs.
    pub jobs: u64,
    /// Their summed footprint.
    pub footprint: FootprintRecord,
}

/// What [`crate::store::JobStore::schedule_retry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The job is `retrying`; it becomes `queued` at `next_attempt_at`.
    Scheduled {
        /// The attempt that will run next.
        attempt: u32,
        /// When it becomes pending again.
        next_attempt_at: DateTime<Utc>,
    },
    /// No attempts left: the job is `dead` with reason `retries-exhausted`.
    Exhausted,
}

/// A job on the cluster (for the tracker's resync after a restart).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveJob {
    /// Job id.
    pub id: JobId,
    /// Namespace.
    pub namespace: String,
    /// Priority.
    pub priority: Priority,
    /// `submitted` or `running`.
    pub state: JobState,
    /// Current attempt.
    pub attempt: u32,
    /// Its SparkApplication.
    pub spark_app_name: String,
    /// What it holds.
    pub footprint: FootprintRecord,
    /// When the state last changed.
    pub updated_at: DateTime<Utc>,
    /// When it was first taken in (kept across retries and preemptions).
    pub enqueued_at: DateTime<Utc>,
}

/// A job and its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredJob {
    /// The normalised job.
    pub job: Job,
    /// Current state.
    pub state: JobState,
    /// Reason code of the last change.
    pub state_reason: Option<String>,
    /// Sentence of the last change.
    pub state_message: Option<String>,
    /// Current attempt (1-based, never reused).
    pub attempt: u32,
    /// Attempt where the current retry budget started (a requeue may reset it).
    pub retry_base: u32,
    /// The policy's attempts.
    pub max_attempts: u32,
    /// When a `retrying` job becomes pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When a never-started job expires (ttl).
    pub expires_at: Option<DateTime<Utc>>,
    /// Waiting reason, when waiting.
    pub waiting: Option<WaitInfo>,
    /// SparkApplication of the current attempt, once submitted.
    pub spark_app_name: Option<String>,
    /// FootprintRecord of the current attempt, once submitted.
    pub footprint: Option<FootprintRecord>,
    /// `amqp`, `http`, `cron`.
    pub source: String,
    /// When the publisher published it (AMQP timestamp), if known.
    pub published_at: Option<DateTime<Utc>>,
    /// When it entered the store.
    pub enqueued_at: DateTime<Utc>,
    /// When it last became pending.
    pub queued_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it reached a finished state.
    pub finished_at: Option<DateTime<Utc>>,
}

impl StoredJob {
    /// Attempts its retry policy still allows after the current one.
    pub fn retries_left(&self) -> u32 {
        let used = self.attempt.saturating_sub(self.retry_base) + 1;
        self.max_attempts.saturating_sub(used)
    }
}

/// One line of a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransitionRecord {
    /// Monotonic id (orders the history).
    pub id: i64,
    /// Previous state (`None` at creation).
    pub from: Option<JobState>,
    /// New state.
    pub to: JobState,
    /// Attempt at the time.
    pub attempt: u32,
    /// Reason code.
    pub reason: Option<String>,
    /// Sentence.
    pub message: Option<String>,
    /// Structured details.
    pub details: Option<Value>,
    /// When.
    pub at: DateTime<Utc>,
}

/// A job with its full history and current queue position (`GET /v1/jobs/{id}`).
#[derive(Debug, Clone, PartialEq)]
pub struct JobDetail {
    /// The job.
    pub job: StoredJob,
    /// Every transition, oldest first.
    pub history: Vec<TransitionRecord>,
    /// Position in its queue when pending (1 = head).
    pub queue_position: Option<u64>,
}

/// Filters for [`crate::store::JobStore::list_jobs`]; `None` = any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Namespace.
    pub namespace: Option<String>,
    /// State.
    pub state: Option<JobState>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Names starting with this (a whole name matches itself).
    pub name_prefix: Option<String>,
}

/// A page request: items after the cursor, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest<C> {
    /// Cursor from the previous page's `next`.
    pub after: Option<C>,
    /// Page size (clamped to 1–1000).
    pub limit: u32,
}

impl<C> PageRequest<C> {
    /// The first page.
    pub fn first(limit: u32) -> Self {
        Self { after: None, limit }
    }

    pub(crate) fn clamped_limit(&self) -> i64 {
        i64::from(self.limit.clamp(1, 1000))
    }
}

/// A page of results and the cursor of the next page (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// Items.
    pub items: Vec<T>,
    /// Pass as `after` to get the next page.
    pub next: Option<C>,
}

/// One row of a job listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    /// Id.
    pub id: JobId,
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Priority.
    pub priority: Priority,
    /// State.
    pub state: JobState,
    /// Reason code of the last change.
    pub state_reason: Option<String>,
    /// Current attempt.
    pub attempt: u32,
    /// When it entered the store.
    pub enqueued_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Depth and oldest wait of one (namespace, priority) queue in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Namespace.
    pub namespace: String,
    /// Priority.
    pub priority: Priority,
    /// Jobs `queued`.
    pub queued: u64,
    /// Jobs `waiting`.
    pub waiting: u64,
    /// When the longest-waiting pending job became pending.
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

/// A dead-letter record (the body is fetched separately: it can be large).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Record id.
    pub id: i64,
    /// The job, when the message became one (`None` for invalid messages).
    pub job_id: Option<JobId>,
    /// For messages that never became a job: the id they claimed (body `id`, `message_id`).
    pub claimed_id: Option<JobId>,
    /// Namespace as claimed (may be one not served).
    pub namespace: Option<String>,
    /// Priority as claimed.
    pub priority: Option<String>,
    /// Why.
    pub reason: DeadReason,
    /// For humans.
    pub message: String,
    /// Every validation problem (invalid messages).
    pub problems: Vec<Problem>,
    /// Size of the original body.
    pub body_bytes: u64,
    /// Whether the stored body is cut short.
    pub body_truncated: bool,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// Routing key it was published with.
    pub routing_key: Option<String>,
    /// Its content type.
    pub content_type: Option<String>,
    /// The job's attempt when it died.
    pub attempt: Option<u32>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it was requeued (records stay for history until purged).
    pub requeued_at: Option<DateTime<Utc>>,
}

/// Which dead letters to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadLetterFilter {
    /// Namespace.
    pub namespace: Option<String>,
    /// Reason.
    pub reason: Option<DeadReason>,
    /// Include records already requeued.
    pub include_requeued: bool,
}

/// Which dead letters a requeue or purge acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSelector {
    /// One record.
    One(i64),
    /// Every record matching.
    Matching(DeadLetterFilter),
    /// Every record.
    All,
}

/// How a requeue treats the retry budget. No default: say it at the call site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequeueOptions {
    /// `true`: the job gets its full retry policy again. `false`: it keeps the budget it had
    /// (a `retries-exhausted` job then gets exactly one more attempt).
    pub reset_attempts: bool,
}

/// What a requeue did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequeueReport {
    /// Dead jobs put back to `queued`.
    pub jobs: u64,
    /// Invalid / unroutable messages re-published to `{p}.jobs` for a fresh validation.
    pub messages: u64,
    /// Records skipped (already requeued, or their job is no longer dead).
    pub skipped: u64,
}
