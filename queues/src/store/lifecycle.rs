//! Changing a job's state: the submitter's and tracker's writes. Each one checks the lifecycle
//! ([`jobs::state::check_transition`]), the state the caller believes the job is in
//! (optimistic concurrency: a stale caller gets [`Error::StateConflict`], never a silent
//! overwrite), and writes the change, its history row and its outbox messages in one
//! transaction.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    Change, JobKey, JobStore, Note, RetryOutcome, Target, WaitingMark, decode_state,
    insert_events_from, insert_transitions_from, record_change, to_i64, to_u32,
};
use crate::error::{Error, Result};
use jobs::model::{Job, JobId};
use jobs::retry::retry_delay;
use jobs::state::{DeadReason, JobState, check_transition};

/// Dead-letters the jobs chosen by the `victims` CTE (columns `id`, `from_state`; it must
/// lock them): state `dead`, history, event, dead-letter record with the job JSON as body,
/// and the AMQP copy to `{p}.{ns}.dead`. `$1` events exchange, `$2` prefix, `$3` reason,
/// `$4` message (the `$msg` SQL expression may use it and the job's columns).
macro_rules! dead_letter_jobs {
    ($victims:literal, $msg:literal) => {
        concat!(
            "WITH victims AS (",
            $victims,
            "), upd AS (UPDATE jobs j SET state = 'dead', state_reason = $3, state_message = ",
            $msg,
            ", finished_at = now(), updated_at = now(), next_attempt_at = NULL, wait_reason = NULL, ",
            "wait_message = NULL, wait_position = NULL, waiting_since = NULL FROM victims v ",
            "WHERE j.id = v.id RETURNING j.id, j.namespace, j.priority, j.name, j.attempt, j.spec, ",
            "j.state_message, v.from_state), ",
            "att AS (UPDATE job_attempts a SET finished_at = coalesce(a.finished_at, now()), ",
            "outcome = coalesce(a.outcome, 'dead') FROM upd WHERE a.job_id = upd.id AND a.attempt = upd.attempt), ",
            "e AS (SELECT id, namespace, priority, name, attempt, from_state, 'dead'::text AS to_state, ",
            "$3::text AS reason, state_message AS message, NULL::jsonb AS details FROM upd), ",
            "tr AS (",
            insert_transitions_from!("e"),
            "), ev AS (",
            insert_events_from!("$1", "e"),
            "), dl AS (INSERT INTO dead_letters (job_id, namespace, priority, reason, message, body, ",
            "body_bytes, message_id, content_type, attempt) SELECT id, namespace, priority, $3, ",
            "state_message, convert_to(spec::text, 'UTF8'), octet_length(spec::text), id::text, ",
            "'application/json', attempt FROM upd RETURNING id, job_id, namespace, reason, message, body, attempt), ",
            "dq AS (INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, headers, body) ",
            "SELECT 'dead-letter', '', $2 || '.' || namespace || '.dead', true, job_id::text, ",
            "jsonb_build_object('x-orchestrator-reason', reason, 'x-orchestrator-message', message, ",
            "'x-orchestrator-job-id', job_id::text, 'x-orchestrator-dead-letter-id', id, ",
            "'x-orchestrator-attempt', attempt), body FROM dl) ",
            "SELECT namespace FROM upd"
        )
    };
}

const DEAD_LETTER_ONE: &str = dead_letter_jobs!(
    "SELECT j.id, j.state AS from_state FROM jobs j WHERE j.id = $5 AND j.state = $6 FOR UPDATE",
    "$4::text"
);

const DEAD_LETTER_EXPIRED: &str = dead_letter_jobs!(
    "SELECT j.id, j.state AS from_state FROM jobs j WHERE j.state IN ('queued', 'waiting') \
     AND j.expires_at <= $5 ORDER BY j.expires_at LIMIT $6 FOR UPDATE SKIP LOCKED",
    "$4::text || ' (ttl ' || j.ttl_seconds || 's, expired at ' || j.expires_at || ')'"
);

const PROMOTE_DUE: &str = concat!(
    "WITH due AS (SELECT id FROM jobs WHERE state = 'retrying' AND next_attempt_at <= $2 ",
    "ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED), ",
    "upd AS (UPDATE jobs j SET state = 'queued', state_reason = 'retry-due', ",
    "state_message = 'attempt ' || j.attempt || ' is due', next_attempt_at = NULL, ",
    "queued_at = now(), updated_at = now() FROM due WHERE j.id = due.id ",
    "RETURNING j.id, j.namespace, j.priority, j.name, j.attempt, j.state_message), ",
    "e AS (SELECT id, namespace, priority, name, attempt, 'retrying'::text AS from_state, ",
    "'queued'::text AS to_state, 'retry-due'::text AS reason, state_message AS message, ",
    "NULL::jsonb AS details FROM upd), ",
    "tr AS (",
    insert_transitions_from!("e"),
    "), ev AS (",
    insert_events_from!("$1", "e"),
    ") SELECT count(*) AS n FROM upd"
);

const MARK_WAITING: &str = concat!(
    "WITH input AS (SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::int8[]) ",
    "AS t(id, code, message, position)), ",
    // Locked in id order, and only while still pending with another reason: re-checked on
    // the newest version. Reading the state from a second scan of `jobs` instead (the
    // statement's snapshot) let a mark that waited on a job's lock turn the admission that
    // held it back into `waiting`, leaving its attempt recorded and the job stuck.
    "prev AS (SELECT j.id, j.state, j.waiting_since FROM jobs j JOIN input i ON i.id = j.id ",
    "WHERE j.state IN ('queued', 'waiting') AND (j.state = 'queued' ",
    "OR j.wait_reason IS DISTINCT FROM i.code OR j.wait_message IS DISTINCT FROM i.message) ",
    "ORDER BY j.id FOR UPDATE OF j), ",
    "upd AS (UPDATE jobs j SET state = 'waiting', wait_reason = i.code, wait_message = i.message, ",
    "wait_position = i.position, waiting_since = CASE WHEN prev.state = 'waiting' ",
    "THEN prev.waiting_since ELSE now() END, state_reason = i.code, state_message = i.message, ",
    "updated_at = now() FROM input i JOIN prev ON prev.id = i.id WHERE j.id = i.id ",
    "RETURNING j.id, j.namespace, j.priority, j.name, j.attempt, prev.state AS from_state, ",
    "i.code, i.message, i.position), ",
    "e AS (SELECT id, namespace, priority, name, attempt, from_state, 'waiting'::text AS to_state, ",
    "code AS reason, message, jsonb_build_object('position', position) AS details FROM upd), ",
    "tr AS (",
    insert_transitions_from!("e"),
    "), ev AS (",
    insert_events_from!("$1", "e"),
    ") SELECT count(*) AS n FROM upd"
);

impl JobStore {
    /// Moves a job `from` → `to` (checked against the lifecycle and against the job's actual
    /// state), with its history row and `{ns}.{state}` event, atomically. `Submitted` also
    /// records the attempt's SparkApplication and footprint (one row per job and attempt: a
    /// second submission of the same attempt fails) and observes the `store` wait.
    pub async fn transition(
        &self,
        job: JobId,
        from: JobState,
        to: Target,
        note: Note,
    ) -> Result<()> {
        let to_state = to.state();
        check_transition(Some(from), to_state)
            .map_err(|source| Error::IllegalTransition { job, source })?;
        if from.is_active() && to_state == JobState::Queued {
            // Would reuse the attempt (and its application name): preemption's own write
            // starts a new attempt.
            return Err(Error::InvalidArgument(format!(
                "a {from} job goes back to its queue only through requeue_preempted"
            )));
        }
        let mut tx = self.pool.begin().await?;
        let row = lock_in_state(
            &mut tx,
            "SELECT state, attempt, namespace, priority, name, queued_at FROM jobs \
             WHERE id = $1 FOR UPDATE",
            job,
            from,
        )
        .await?;
        let attempt: i32 = row.try_get("attempt")?;
        let key = JobKey::of(job, &row)?;
        let queued_at: DateTime<Utc> = row.try_get("queued_at")?;

        match &to {
            Target::Submitted(sub) => {
                let current = to_u32(attempt, "attempt")?;
                if sub.attempt != current {
                    return Err(Error::AttemptMismatch {
                        job,
                        expected: sub.attempt,
                        actual: current,
                    });
                }
                let cpu = to_i64(sub.footprint.cpu.0, "cpu millis")?;
                let memory = to_i64(sub.footprint.memory.0, "memory bytes")?;
                sqlx::query(
                    // The attempt keeps the job's last start estimate (the History
                    // dashboard's estimate error); the job's own is cleared for its next wait.
                    "INSERT INTO job_attempts \
                     (job_id, attempt, spark_app_name, cpu_millis, memory_bytes, estimated_start_at) \
                     SELECT $1, $2, $3, $4, $5, estimated_start_at FROM jobs WHERE id = $1",
                )
                .bind(job.0)
                .bind(attempt)
                .bind(&sub.spark_app_name)
                .bind(cpu)
                .bind(memory)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE jobs SET state = 'submitted', state_reason = $2, state_message = $3, \
                     spark_app_name = $4, cpu_millis = $5, memory_bytes = $6, expires_at = NULL, \
                     wait_reason = NULL, wait_message = NULL, wait_position = NULL, \
                     waiting_since = NULL, estimated_start_at = NULL, updated_at = now() \
                     WHERE id = $1",
                )
                .bind(job.0)
                .bind(&note.reason)
                .bind(&note.message)
                .bind(&sub.spark_app_name)
                .bind(cpu)
                .bind(memory)
                .execute(&mut *tx)
                .await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE jobs SET state = $2, state_reason = $3, state_message = $4, \
                     updated_at = now(), \
                     finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN now() END, \
                     queued_at = CASE WHEN $2 = 'queued' AND state = 'retrying' THEN now() ELSE queued_at END, \
                     next_attempt_at = CASE WHEN $2 = 'queued' THEN NULL ELSE next_attempt_at END, \
                     wait_reason = NULL, wait_message = NULL, wait_position = NULL, waiting_since = NULL \
                     WHERE id = $1",
                )
                .bind(job.0)
                .bind(to_state.as_str())
                .bind(&note.reason)
                .bind(&note.message)
                .execute(&mut *tx)
                .await?;
                if from.is_active() {
                    sqlx::query(
                        "UPDATE job_attempts SET \
                         started_at = CASE WHEN $3 = 'running' THEN now() ELSE started_at END, \
                         finished_at = CASE WHEN $3 <> 'running' THEN now() ELSE finished_at END, \
                         outcome = CASE WHEN $3 <> 'running' THEN $3 ELSE outcome END \
                         WHERE job_id = $1 AND attempt = $2",
                    )
                    .bind(job.0)
                    .bind(attempt)
                    .bind(to_state.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        record_change(
            &mut tx,
            &self.names,
            &Change {
                job: &key,
                attempt,
                from: Some(from),
                to: to_state,
                reason: note.reason.as_deref(),
                message: &note.message,
                details: note.details.as_ref(),
            },
        )
        .await?;
        tx.commit().await?;
        self.outbox_written();
        if to_state == JobState::Submitted {
            let waited = (Utc::now() - queued_at).num_milliseconds() as f64 / 1000.0;
            self.metrics
                .wait(&key.namespace, &key.priority, "store", waited);
        }
        Ok(())
    }

    /// Records why pending jobs wait (`queued` → `waiting`, or a new reason while waiting).
    /// Only writes — and only adds history and an event — when the code or message differs
    /// from what is stored, so calling it every scheduling cycle is cheap. Jobs that are no
    /// longer pending are skipped. Returns how many jobs changed.
    pub async fn mark_waiting(&self, marks: &[WaitingMark]) -> Result<u64> {
        if marks.is_empty() {
            return Ok(0);
        }
        let positions = marks
            .iter()
            .map(|m| m.position.map(|p| to_i64(p, "position")).transpose())
            .collect::<Result<Vec<_>>>()?;
        let row = sqlx::query(MARK_WAITING)
            .bind(self.names.events_exchange())
            .bind(marks.iter().map(|m| m.job.0).collect::<Vec<Uuid>>())
            .bind(marks.iter().map(|m| m.code.as_str()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.message.as_str()).collect::<Vec<_>>())
            .bind(positions)
            .fetch_one(&self.pool)
            .await?;
        let changed: i64 = row.try_get("n")?;
        if changed > 0 {
            self.outbox_written();
        }
        Ok(u64::try_from(changed).unwrap_or(0))
    }

    /// After a failed attempt (`from` = `submitted`, `running` or `failed`): schedules the next
    /// one per the job's retry policy — attempt + 1, `next_attempt_at = now + backoff with
    /// jitter`, state `retrying` — or, when the policy's attempts are used up, dead-letters it
    /// with reason `retries-exhausted`. Stored, so it survives restarts; the maintenance loop
    /// ([`JobStore::promote_due_retries`]) makes it pending again when due.
    pub async fn schedule_retry(
        &self,
        job: JobId,
        from: JobState,
        note: Note,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome> {
        check_transition(Some(from), JobState::Retrying)
            .map_err(|source| Error::IllegalTransition { job, source })?;
        let mut tx = self.pool.begin().await?;
        let row = lock_in_state(
            &mut tx,
            "SELECT state, attempt, retry_base, max_attempts, namespace, priority, name, spec \
             FROM jobs WHERE id = $1 FOR UPDATE",
            job,
            from,
        )
        .await?;
        let attempt: i32 = row.try_get("attempt")?;
        let retry_base: i32 = row.try_get("retry_base")?;
        let max_attempts: i32 = row.try_get("max_attempts")?;
        let used = attempt.saturating_sub(retry_base).saturating_add(1);
        if used >= max_attempts {
            let message = format!(
                "attempt {attempt} failed and the retry policy allows {max_attempts}: {}",
                note.message
            );
            let rows = sqlx::query(DEAD_LETTER_ONE)
                .bind(self.names.events_exchange())
                .bind(self.names.prefix())
                .bind(DeadReason::RetriesExhausted.as_str())
                .bind(&message)
                .bind(job.0)
                .bind(from.as_str())
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            self.outbox_written();
            for row in rows {
                let ns: String = row.try_get("namespace")?;
                self.metrics
                    .dead_letter(Some(&ns), DeadReason::RetriesExhausted.as_str());
            }
            return Ok(RetryOutcome::Exhausted);
        }
        let Json(spec): Json<Job> = row.try_get("spec")?;
        let retry_index = u32::try_from(used - 1).unwrap_or(0);
        let delay = retry_delay(&spec.retry.backoff, retry_index, rand::random());
        let delay = chrono::Duration::from_std(delay)
            .map_err(|e| Error::InvalidArgument(format!("retry delay out of range: {e}")))?;
        let next_attempt_at = now + delay;
        let next_attempt = attempt + 1;
        sqlx::query(
            "UPDATE jobs SET state = 'retrying', attempt = $2, next_attempt_at = $3, \
             state_reason = $4, state_message = $5, spark_app_name = NULL, cpu_millis = NULL, \
             memory_bytes = NULL, finished_at = NULL, updated_at = now(), wait_reason = NULL, \
             wait_message = NULL, wait_position = NULL, waiting_since = NULL WHERE id = $1",
        )
        .bind(job.0)
        .bind(next_attempt)
        .bind(next_attempt_at)
        .bind(&note.reason)
        .bind(&note.message)
        .execute(&mut *tx)
        .await?;
        close_attempt(&mut tx, job, attempt, "retrying").await?;
        let mut details = json!({
            "previousAttempt": attempt,
            "nextAttemptAt": next_attempt_at,
            "delayMs": delay.num_milliseconds(),
        });
        if let (Some(extra), Some(map)) = (&note.details, details.as_object_mut()) {
            map.insert("cause".into(), extra.clone());
        }
        let key = JobKey::of(job, &row)?;
        record_change(
            &mut tx,
            &self.names,
            &Change {
                job: &key,
                attempt: next_attempt,
                from: Some(from),
                to: JobState::Retrying,
                reason: note.reason.as_deref(),
                message: &note.message,
                details: Some(&details),
            },
        )
        .await?;
        tx.commit().await?;
        self.outbox_written();
        Ok(RetryOutcome::Scheduled {
            attempt: to_u32(next_attempt, "attempt")?,
            next_attempt_at,
        })
    }

    /// Makes `retrying` jobs whose `next_attempt_at` has come pending again (`queued`, at
    /// their original FIFO position: they already waited their turn). At most `limit` per
    /// call; returns how many.
    pub async fn promote_due_retries(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let row = sqlx::query(PROMOTE_DUE)
            .bind(self.names.events_exchange())
            .bind(now)
            .bind(i64::from(limit))
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        if n > 0 {
            self.outbox_written();
        }
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Gives up on a job: state `dead` with `reason` and `message`, a dead-letter record (body
    /// = the job JSON) and its AMQP copy to `{p}.{ns}.dead`, history and event — atomically.
    pub async fn dead_letter(
        &self,
        job: JobId,
        from: JobState,
        reason: DeadReason,
        message: &str,
    ) -> Result<()> {
        check_transition(Some(from), JobState::Dead)
            .map_err(|source| Error::IllegalTransition { job, source })?;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(DEAD_LETTER_ONE)
            .bind(self.names.events_exchange())
            .bind(self.names.prefix())
            .bind(reason.as_str())
            .bind(message)
            .bind(job.0)
            .bind(from.as_str())
            .fetch_all(&mut *tx)
            .await?;
        if rows.is_empty() {
            let actual: Option<String> = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
                .bind(job.0)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match actual {
                None => Error::NotFound(job),
                Some(s) => Error::StateConflict {
                    job,
                    expected: from,
                    actual: decode_state(&s)?,
                },
            });
        }
        tx.commit().await?;
        self.outbox_written();
        for row in rows {
            let ns: String = row.try_get("namespace")?;
            self.metrics.dead_letter(Some(&ns), reason.as_str());
        }
        Ok(())
    }

    /// TTL expiry: pending jobs never started whose `expires_at` has passed become `expired`
    /// dead letters. At most `limit` per call; returns how many.
    pub async fn expire_overdue(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        let rows = sqlx::query(DEAD_LETTER_EXPIRED)
            .bind(self.names.events_exchange())
            .bind(self.names.prefix())
            .bind(DeadReason::Expired.as_str())
            .bind("not started within its ttl")
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        if !rows.is_empty() {
            self.outbox_written();
        }
        for row in &rows {
            let ns: String = row.try_get("namespace")?;
            self.metrics
                .dead_letter(Some(&ns), DeadReason::Expired.as_str());
        }
        Ok(rows.len() as u64)
    }
}

/// What [`JobStore::cancel_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The job was in this state and is now cancelled.
    Cancelled(JobState),
    /// The job had already ended (or is dead); nothing changed.
    AlreadyEnded(JobState),
}

impl JobStore {
    /// Cancels a job wherever it is in its lifecycle, retrying when it moves underneath
    /// (the submitter acting at the same moment). A submitted or running job's
    /// SparkApplication is then deleted by the submitter's tracker, which sees the job is
    /// no longer active.
    pub async fn cancel_job(&self, id: JobId, note: Note) -> Result<CancelOutcome> {
        let mut last = None;
        for _ in 0..8 {
            let job = self.job(id).await?.ok_or(Error::NotFound(id))?;
            if !jobs::state::can_transition(Some(job.state), JobState::Cancelled) {
                return Ok(CancelOutcome::AlreadyEnded(job.state));
            }
            match self
                .transition(id, job.state, Target::Cancelled, note.clone())
                .await
            {
                Ok(()) => return Ok(CancelOutcome::Cancelled(job.state)),
                Err(e @ Error::StateConflict { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::NotFound(id)))
    }
}

/// Ends an attempt's row with `outcome`, unless it already ended (the first outcome stands).
pub(super) async fn close_attempt(
    tx: &mut sqlx::PgConnection,
    job: JobId,
    attempt: i32,
    outcome: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE job_attempts SET finished_at = coalesce(finished_at, now()), \
         outcome = coalesce(outcome, $3) WHERE job_id = $1 AND attempt = $2",
    )
    .bind(job.0)
    .bind(attempt)
    .bind(outcome)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Locks a job's row (`sql` selects `state` among its columns, `WHERE id = $1 FOR UPDATE`) and
/// checks the job is still in the state the caller believes: the row, or `NotFound`, or
/// `StateConflict` when someone else moved it first.
pub(super) async fn lock_in_state(
    tx: &mut sqlx::PgConnection,
    sql: &'static str,
    job: JobId,
    from: JobState,
) -> Result<PgRow> {
    let row = sqlx::query(sql)
        .bind(job.0)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(Error::NotFound(job))?;
    let actual = decode_state(row.try_get("state")?)?;
    if actual != from {
        return Err(Error::StateConflict {
            job,
            expected: from,
            actual,
        });
    }
    Ok(row)
}
