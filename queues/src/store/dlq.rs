//! Dead-letter operations for the CLI (`orchestrator dlq list|requeue|purge`) and the HTTP
//! API (`/v1/dlq`): list and inspect with reasons, requeue (one, by filter, all), purge.
//!
//! Requeue semantics:
//! - a dead **job** goes back to `queued` with the same id and its history (the requeue is a
//!   transition `dead → queued`), at the *back* of its queue (a fresh FIFO position) and with
//!   a fresh ttl. The attempt number moves on if the dead attempt reached the cluster (never
//!   two SparkApplications for one attempt); the retry budget is kept or reset as
//!   [`RequeueOptions::reset_attempts`] says;
//! - a dead **message** (invalid, unknown namespace — never a job) is re-published to
//!   `{p}.jobs` with its original routing key, body and `message_id`, and validated afresh
//!   by the intake (useful after fixing the catalog). A truncated body cannot be requeued.
//!
//! Requeued records stay (with `requeued_at`) for the record until purged; purging deletes
//! records only — a dead job stays `dead` in the job history until retention removes it.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::{
    DeadLetter, DeadLetterFilter, DeadLetterSelector, JobStore, Page, PageRequest, RequeueOptions,
    RequeueReport, insert_events_from, insert_transitions_from, to_u32, to_u64,
};
use crate::error::{Error, Result};
use jobs::model::JobId;
use jobs::validate::Problem;

/// Rows handled per statement in requeue and purge.
const BATCH: i64 = 1000;

/// The selector as SQL parameters: (`id`, `namespace`, `reason`, `include_requeued`).
fn params(
    selector: &DeadLetterSelector,
) -> (Option<i64>, Option<String>, Option<&'static str>, bool) {
    match selector {
        DeadLetterSelector::One(id) => (Some(*id), None, None, false),
        DeadLetterSelector::Matching(f) => (
            None,
            f.namespace.clone(),
            f.reason.map(|r| r.as_str()),
            f.include_requeued,
        ),
        DeadLetterSelector::All => (None, None, None, true),
    }
}

const REQUEUE_JOBS: &str = concat!(
    "WITH sel AS (SELECT d.id AS dl_id, d.job_id FROM dead_letters d JOIN jobs j ON j.id = d.job_id ",
    "WHERE d.requeued_at IS NULL AND j.state = 'dead' AND ($2::int8 IS NULL OR d.id = $2) ",
    "AND ($3::text IS NULL OR d.namespace = $3) AND ($4::text IS NULL OR d.reason = $4) ",
    "ORDER BY d.id LIMIT $5 FOR UPDATE OF d, j SKIP LOCKED), ",
    "upd AS (UPDATE jobs j SET state = 'queued', seq = nextval('job_seq'), ",
    "attempt = CASE WHEN EXISTS (SELECT 1 FROM job_attempts a WHERE a.job_id = j.id AND a.attempt = j.attempt) ",
    "THEN j.attempt + 1 ELSE j.attempt END, ",
    "retry_base = CASE WHEN $6 THEN (CASE WHEN EXISTS (SELECT 1 FROM job_attempts a WHERE a.job_id = j.id ",
    "AND a.attempt = j.attempt) THEN j.attempt + 1 ELSE j.attempt END) ELSE j.retry_base END, ",
    "state_reason = 'requeued', state_message = $7, queued_at = now(), updated_at = now(), ",
    "finished_at = NULL, next_attempt_at = NULL, spark_app_name = NULL, cpu_millis = NULL, ",
    "memory_bytes = NULL, expires_at = now() + make_interval(secs => j.ttl_seconds) ",
    "FROM (SELECT DISTINCT job_id FROM sel) s WHERE j.id = s.job_id ",
    "RETURNING j.id, j.namespace, j.priority, j.name, j.attempt), ",
    "mark AS (UPDATE dead_letters d SET requeued_at = now() FROM sel WHERE d.id = sel.dl_id), ",
    "e AS (SELECT id, namespace, priority, name, attempt, 'dead'::text AS from_state, ",
    "'queued'::text AS to_state, 'requeued'::text AS reason, $7::text AS message, ",
    "jsonb_build_object('resetAttempts', $6) AS details FROM upd), ",
    "tr AS (",
    insert_transitions_from!("e"),
    "), ev AS (",
    insert_events_from!("$1", "e"),
    ") SELECT (SELECT count(*) FROM upd) AS jobs, (SELECT count(*) FROM sel) AS records"
);

const REQUEUE_MESSAGES: &str = concat!(
    "WITH sel AS (SELECT d.* FROM dead_letters d WHERE d.job_id IS NULL AND d.requeued_at IS NULL ",
    "AND NOT d.body_truncated AND ($2::int8 IS NULL OR d.id = $2) ",
    "AND ($3::text IS NULL OR d.namespace = $3) AND ($4::text IS NULL OR d.reason = $4) ",
    "ORDER BY d.id LIMIT $5 FOR UPDATE SKIP LOCKED), ",
    "mark AS (UPDATE dead_letters d SET requeued_at = now() FROM sel WHERE d.id = sel.id), ",
    "ob AS (INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, content_type, body) ",
    "SELECT 'job', $1, coalesce(routing_key, namespace || '.' || coalesce(priority, 'normal'), 'unknown.normal'), ",
    "true, message_id, coalesce(content_type, 'application/json'), body FROM sel ORDER BY id) ",
    "SELECT count(*) AS n FROM sel"
);

impl JobStore {
    /// Dead letters matching `filter`, oldest first, paginated by record id.
    pub async fn list_dead_letters(
        &self,
        filter: &DeadLetterFilter,
        page: PageRequest<i64>,
    ) -> Result<Page<DeadLetter, i64>> {
        let limit = page.clamped_limit();
        let rows = sqlx::query(
            "SELECT id, job_id, claimed_id, namespace, priority, reason, message, problems, body_bytes, \
             body_truncated, message_id, routing_key, content_type, attempt, created_at, requeued_at \
             FROM dead_letters WHERE ($1::text IS NULL OR namespace = $1) \
             AND ($2::text IS NULL OR reason = $2) AND ($3 OR requeued_at IS NULL) \
             AND ($4::int8 IS NULL OR id > $4) ORDER BY id LIMIT $5",
        )
        .bind(filter.namespace.as_deref())
        .bind(filter.reason.map(|r| r.as_str()))
        .bind(filter.include_requeued)
        .bind(page.after)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows.iter().map(dead_letter).collect::<Result<Vec<_>>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if more {
            items.pop();
        }
        let next = if more {
            items.last().map(|d| d.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// One dead letter with its stored body (inspect).
    pub async fn dead_letter_record(&self, id: i64) -> Result<Option<(DeadLetter, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT id, job_id, claimed_id, namespace, priority, reason, message, problems, body_bytes, \
             body_truncated, message_id, routing_key, content_type, attempt, created_at, \
             requeued_at, body FROM dead_letters WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((dead_letter(&row)?, row.try_get("body")?)))
            .transpose()
    }

    /// Requeues the selected dead letters (see the module docs for what that means for jobs
    /// and for messages). Works in batches; safe to run while the daemon runs.
    pub async fn requeue_dead_letters(
        &self,
        selector: &DeadLetterSelector,
        options: RequeueOptions,
    ) -> Result<RequeueReport> {
        let (id, namespace, reason, _) = params(selector);
        let message = if options.reset_attempts {
            "requeued from the dead-letter queue with a fresh retry budget"
        } else {
            "requeued from the dead-letter queue; retry budget kept"
        };
        let mut report = RequeueReport::default();
        loop {
            let row = sqlx::query(REQUEUE_JOBS)
                .bind(self.names.events_exchange())
                .bind(id)
                .bind(namespace.as_deref())
                .bind(reason)
                .bind(BATCH)
                .bind(options.reset_attempts)
                .bind(message)
                .fetch_one(&self.pool)
                .await?;
            let jobs: i64 = row.try_get("jobs")?;
            let records: i64 = row.try_get("records")?;
            report.jobs += to_u64(jobs, "jobs")?;
            if records > 0 {
                self.outbox_written();
            }
            if records < BATCH {
                break;
            }
        }
        loop {
            let n: i64 = sqlx::query(REQUEUE_MESSAGES)
                .bind(self.names.jobs_exchange())
                .bind(id)
                .bind(namespace.as_deref())
                .bind(reason)
                .bind(BATCH)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            report.messages += to_u64(n, "messages")?;
            if n > 0 {
                self.outbox_written();
            }
            if n < BATCH {
                break;
            }
        }
        // What the selector matched but could not requeue (already requeued, job no longer
        // dead, truncated body).
        let matched: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM dead_letters WHERE ($1::int8 IS NULL OR id = $1) \
             AND ($2::text IS NULL OR namespace = $2) AND ($3::text IS NULL OR reason = $3) \
             AND requeued_at IS NULL",
        )
        .bind(id)
        .bind(namespace.as_deref())
        .bind(reason)
        .fetch_one(&self.pool)
        .await?;
        report.skipped = to_u64(matched, "skipped")?;
        if let (DeadLetterSelector::One(one), 0, 0) = (selector, report.jobs, report.messages) {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM dead_letters WHERE id = $1)")
                    .bind(*one)
                    .fetch_one(&self.pool)
                    .await?;
            if !exists {
                return Err(Error::InvalidArgument(format!(
                    "no dead letter with id {one}"
                )));
            }
            report.skipped = report.skipped.max(1);
        }
        Ok(report)
    }

    /// Deletes the selected dead-letter records (in batches); returns how many. A `Matching`
    /// selector with `include_requeued = false` leaves requeued records alone.
    pub async fn purge_dead_letters(&self, selector: &DeadLetterSelector) -> Result<u64> {
        let (id, namespace, reason, include_requeued) = params(selector);
        let include_requeued = include_requeued || id.is_some();
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
                 WHERE ($1::int8 IS NULL OR id = $1) AND ($2::text IS NULL OR namespace = $2) \
                 AND ($3::text IS NULL OR reason = $3) AND ($4 OR requeued_at IS NULL) \
                 ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED)",
            )
            .bind(id)
            .bind(namespace.as_deref())
            .bind(reason)
            .bind(include_requeued)
            .bind(BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            total += n;
            if n < u64::try_from(BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        Ok(total)
    }
}

fn dead_letter(row: &PgRow) -> Result<DeadLetter> {
    let Json(problems): Json<Vec<Problem>> = row.try_get("problems")?;
    let job_id: Option<uuid::Uuid> = row.try_get("job_id")?;
    let claimed_id: Option<uuid::Uuid> = row.try_get("claimed_id")?;
    let attempt: Option<i32> = row.try_get("attempt")?;
    let reason: &str = row.try_get("reason")?;
    Ok(DeadLetter {
        id: row.try_get("id")?,
        job_id: job_id.map(JobId),
        claimed_id: claimed_id.map(JobId),
        namespace: row.try_get("namespace")?,
        priority: row.try_get("priority")?,
        reason: reason.parse().map_err(Error::Corrupt)?,
        message: row.try_get("message")?,
        problems,
        body_bytes: to_u64(row.try_get("body_bytes")?, "body_bytes")?,
        body_truncated: row.try_get("body_truncated")?,
        message_id: row.try_get("message_id")?,
        routing_key: row.try_get("routing_key")?,
        content_type: row.try_get("content_type")?,
        attempt: attempt.map(|a| to_u32(a, "attempt")).transpose()?,
        created_at: row.try_get("created_at")?,
        requeued_at: row.try_get("requeued_at")?,
    })
}
