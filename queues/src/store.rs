//! The PostgreSQL job store: every job, every state transition (no history limit), attempts,
//! dead letters, the transactional outbox, and the cron tables.
//!
//! [`JobStore`] is the one handle. Its methods are grouped by caller:
//! - intake (`intake`): batches of accepted jobs and dead letters, one
//!   transaction each, idempotent on job id;
//! - the submitter and tracker (`lifecycle`, `query`):
//!   pending heads, waiting reasons, transitions, retries, dead letters, usage, resync;
//! - the HTTP API and CLI (`query`, `dlq`): history, listings,
//!   queue depths and positions, DLQ list/requeue/purge;
//! - background loops (`outbox`): the outbox relay's claims, retention, cron
//!   fires.
//!
//! Every change writes its history row and its outbox messages (state event on
//! `{p}.events`, dead-letter copy to `{p}.{ns}.dead`, reply_to verdict) in the same
//! transaction as the change itself, so no event is ever lost or invented; the
//! [`crate::relay`] publishes them. SQL is runtime-checked (`sqlx::query` with binds): no
//! database is needed to build.

mod dlq;
mod estimates;
mod heads;
mod intake;
mod lifecycle;
mod model;
pub(crate) mod outbox;
mod preempt;
mod query;
mod schedules;
mod spec;
mod submit;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use tokio::sync::Notify;

use crate::relay::yielding::Admissions;

pub use self::estimates::RunningAttempt;
pub use self::heads::{ANSWERED_WITHIN, Heads, HeadsCache};
pub use self::intake::{IntakeItem, IntakeResult, NewDeadLetter, NewJob, ReplyTo};
pub use self::lifecycle::CancelOutcome;
pub use self::model::*;
pub use self::outbox::{OutboxRow, RetentionReport};
pub use self::preempt::PREEMPTED;
pub use self::schedules::Schedule;
pub use self::submit::Submitted;
pub use self::wake::{HEARTBEAT, PENDING_CHANNEL, QUEUED_CHANNEL};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::topology::Names;
use jobs::model::{Job, JobId, Priority};
use jobs::quantity::{CpuMillis, MemoryBytes};
use jobs::state::JobState;

/// The embedded migrations (`queues/migrations/`), applied by [`JobStore::migrate`] and by
/// `orchestrator migrate`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The job store: a pool, the AMQP names its outbox rows address, and the metrics it counts.
#[derive(Debug, Clone)]
pub struct JobStore {
    pool: PgPool,
    names: Names,
    metrics: Arc<Metrics>,
    outbox_signal: Arc<Notify>,
    admissions: Arc<Admissions>,
}

impl JobStore {
    /// A store over an existing pool.
    pub fn new(pool: PgPool, names: Names, metrics: Arc<Metrics>) -> Self {
        Self {
            pool,
            names,
            metrics,
            outbox_signal: Arc::new(Notify::new()),
            admissions: Arc::default(),
        }
    }

    /// Connects a pool with the orchestrator's defaults (`max_connections` connections,
    /// 5 s acquire timeout so an outage surfaces as a retryable error instead of a hang).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        names: Names,
        metrics: Arc<Metrics>,
    ) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self::new(pool, names, metrics))
    }

    /// Applies the embedded migrations (idempotent; concurrent callers are serialised by
    /// sqlx's advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Begins a transaction for a hot batch write ([`JobStore::take_in`],
    /// [`JobStore::record_submitted`]) whose statements run on generic plans. Each is a CTE
    /// over `UNNEST` of array parameters, whose best plan does not depend on what the arrays
    /// hold; left to PostgreSQL's default, most executions are planned again (a custom plan
    /// for each of a connection's first five executions, and whenever the generic plan's
    /// estimate looks dearer): about a tenth of the database's time in a burst (BENCHMARKS.md,
    /// stop 38). The setting is `LOCAL`: it ends with the transaction, so the connection's
    /// other statements (listings with optional filters need custom plans) keep the default.
    /// Sent in the same round trip as `BEGIN`.
    async fn begin_batch(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        Ok(self
            .pool
            .begin_with("BEGIN; SET LOCAL plan_cache_mode = force_generic_plan")
            .await?)
    }

    /// The pool (for health checks and the daemon's own queries).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The AMQP names outbox rows are addressed with.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The metrics this store counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Notified after every commit that wrote outbox rows (the relay waits on it, and polls
    /// as well for rows written by other processes).
    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    /// This process's admissions in progress: the submitter marks them, the relay gives way
    /// to them ([`crate::relay::yielding`]).
    pub fn admissions(&self) -> &Arc<Admissions> {
        &self.admissions
    }

    fn outbox_written(&self) {
        self.outbox_signal.notify_one();
    }
}

/// Who a transition is about: the job's id and the columns its history and events carry,
/// read from the row a transition locked ([`JobKey::of`]).
#[derive(Debug)]
pub(crate) struct JobKey {
    pub(crate) id: JobId,
    pub(crate) namespace: String,
    pub(crate) priority: String,
    pub(crate) name: String,
}

impl JobKey {
    /// From a `jobs` row that has `namespace`, `priority` and `name`.
    pub(crate) fn of(id: JobId, row: &PgRow) -> Result<Self> {
        Ok(Self {
            id,
            namespace: row.try_get("namespace")?,
            priority: row.try_get("priority")?,
            name: row.try_get("name")?,
        })
    }
}

/// The history row and the state event of one change, written together (see
/// [`record_change`]).
#[derive(Debug)]
pub(crate) struct Change<'a> {
    pub(crate) job: &'a JobKey,
    pub(crate) attempt: i32,
    pub(crate) from: Option<JobState>,
    pub(crate) to: JobState,
    pub(crate) reason: Option<&'a str>,
    pub(crate) message: &'a str,
    pub(crate) details: Option<&'a serde_json::Value>,
}

/// Builds the event JSON for `e` (a relation with columns id, namespace, priority, name,
/// attempt, from_state, to_state, reason, message, details) and inserts it into the outbox.
/// The one definition of the event format: `{jobId, namespace, priority, name, state, from,
/// attempt, reason, message, details, at}` on `{p}.events` with routing key
/// `{namespace}.{state}`. `$x` is the placeholder holding the events exchange name.
macro_rules! insert_events_from {
    ($exchange:literal, $source:literal) => {
        concat!(
            "INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, body) ",
            "SELECT 'event', ",
            $exchange,
            ", e.namespace || '.' || e.to_state, false, e.id::text, ",
            "convert_to(jsonb_build_object('jobId', e.id, 'namespace', e.namespace, ",
            "'priority', e.priority, 'name', e.name, 'state', e.to_state, 'from', e.from_state, ",
            "'attempt', e.attempt, 'reason', e.reason, 'message', e.message, ",
            "'details', e.details, 'at', now())::text, 'UTF8') FROM ",
            $source,
            " e"
        )
    };
}

/// Inserts the history rows of relation `e` (same columns as [`insert_events_from`]).
macro_rules! insert_transitions_from {
    ($source:literal) => {
        concat!(
            "INSERT INTO job_transitions (job_id, from_state, to_state, attempt, reason, message, details) ",
            "SELECT e.id, e.from_state, e.to_state, e.attempt, e.reason, e.message, e.details FROM ",
            $source,
            " e"
        )
    };
}

pub(crate) use {insert_events_from, insert_transitions_from};

/// Writes one change's history row and event, inside the caller's transaction.
pub(crate) async fn record_change(
    conn: &mut PgConnection,
    names: &Names,
    change: &Change<'_>,
) -> Result<()> {
    const SQL: &str = concat!(
        "WITH e AS (SELECT $2::uuid AS id, $3::text AS namespace, $4::text AS priority, ",
        "$5::text AS name, $6::int4 AS attempt, $7::text AS from_state, $8::text AS to_state, ",
        "$9::text AS reason, $10::text AS message, $11::jsonb AS details), ",
        "tr AS (",
        insert_transitions_from!("e"),
        ") ",
        insert_events_from!("$1", "e")
    );
    sqlx::query(SQL)
        .bind(names.events_exchange())
        .bind(change.job.id.0)
        .bind(&change.job.namespace)
        .bind(&change.job.priority)
        .bind(&change.job.name)
        .bind(change.attempt)
        .bind(change.from.map(JobState::as_str))
        .bind(change.to.as_str())
        .bind(change.reason)
        .bind(change.message)
        .bind(change.details.map(Json))
        .execute(conn)
        .await?;
    Ok(())
}

/// The columns [`stored_job`] decodes, in a `SELECT` from `jobs`.
macro_rules! job_columns {
    () => {
        "id, spec, state, state_reason, state_message, attempt, retry_base, max_attempts, \
         next_attempt_at, expires_at, wait_reason, wait_message, wait_position, waiting_since, \
         spark_app_name, cpu_millis, memory_bytes, source, published_at, enqueued_at, queued_at, \
         updated_at, finished_at"
    };
}
pub(crate) use job_columns;

pub(crate) fn decode_state(s: &str) -> Result<JobState> {
    s.parse().map_err(Error::Corrupt)
}

pub(crate) fn decode_priority(s: &str) -> Result<Priority> {
    s.parse().map_err(Error::Corrupt)
}

pub(crate) fn to_u32(v: i32, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} is negative")))
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt(format!("{what} {v} is negative")))
}

pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is too large")))
}

fn footprint(cpu: Option<i64>, memory: Option<i64>) -> Result<Option<FootprintRecord>> {
    match (cpu, memory) {
        (Some(cpu), Some(memory)) => Ok(Some(FootprintRecord {
            cpu: CpuMillis(to_u64(cpu, "cpu_millis")?),
            memory: MemoryBytes(to_u64(memory, "memory_bytes")?),
        })),
        _ => Ok(None),
    }
}

pub(crate) fn wait_info(row: &PgRow) -> Result<Option<WaitInfo>> {
    let code: Option<String> = row.try_get("wait_reason")?;
    let Some(code) = code else { return Ok(None) };
    let position: Option<i64> = row.try_get("wait_position")?;
    let since: Option<DateTime<Utc>> = row.try_get("waiting_since")?;
    Ok(Some(WaitInfo {
        code,
        message: row
            .try_get::<Option<String>, _>("wait_message")?
            .unwrap_or_default(),
        since: since.unwrap_or_else(Utc::now),
        position: position.map(|p| to_u64(p, "wait_position")).transpose()?,
    }))
}

/// Decodes a row selected with [`job_columns`].
pub(crate) fn stored_job(row: &PgRow) -> Result<StoredJob> {
    let Json(job): Json<Job> = row.try_get("spec")?;
    Ok(StoredJob {
        job,
        state: decode_state(row.try_get("state")?)?,
        state_reason: row.try_get("state_reason")?,
        state_message: row.try_get("state_message")?,
        attempt: to_u32(row.try_get("attempt")?, "attempt")?,
        retry_base: to_u32(row.try_get("retry_base")?, "retry_base")?,
        max_attempts: to_u32(row.try_get("max_attempts")?, "max_attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        expires_at: row.try_get("expires_at")?,
        waiting: wait_info(row)?,
        spark_app_name: row.try_get("spark_app_name")?,
        footprint: footprint(row.try_get("cpu_millis")?, row.try_get("memory_bytes")?)?,
        source: row.try_get("source")?,
        published_at: row.try_get("published_at")?,
        enqueued_at: row.try_get("enqueued_at")?,
        queued_at: row.try_get("queued_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}
