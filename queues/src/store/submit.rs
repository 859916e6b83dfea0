//! Recording many admissions in one statement: the submitter's hot write. One admission round
//! can create hundreds of applications; writing each `submitted` transition in its own
//! transaction (lock, attempt row, job row, history, event: five round trips and a commit) made
//! the database the round's pace. Here a batch is one statement and one commit; a job the
//! batch cannot record as asked (its state or attempt changed, its attempt already recorded)
//! goes through [`JobStore::transition`] alone, which gives it the same precise outcome as
//! before (a conflict error, or success when only the batch's guess was stale).

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::{
    JobStore, Note, Submission, Target, insert_events_from, insert_transitions_from, to_i64,
};
use crate::error::{Error, Result};
use jobs::model::JobId;
use jobs::state::{JobState, check_transition};

/// One admission to record: the job moves `from` → `submitted` with its application.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The job.
    pub job: JobId,
    /// The state the caller saw it in (`queued` or `waiting`).
    pub from: JobState,
    /// The application created for its current attempt.
    pub submission: Submission,
    /// Why (history and event).
    pub note: Note,
}

const RECORD_SUBMITTED: &str = concat!(
    "WITH input AS (SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::int4[], $5::text[], ",
    "$6::int8[], $7::int8[], $8::text[], $9::text[], $10::text[]) ",
    "AS t(id, from_state, attempt, app, cpu, memory, reason, message, details)), ",
    // Locked in id order (no deadlock with another writer locking several jobs), and only
    // while still in the state and attempt the caller saw: re-checked on the newest version.
    "locked AS (SELECT j.id, j.estimated_start_at FROM jobs j JOIN input i ON i.id = j.id ",
    "WHERE j.state = i.from_state AND j.attempt = i.attempt ORDER BY j.id FOR UPDATE OF j), ",
    "att AS (INSERT INTO job_attempts ",
    "(job_id, attempt, spark_app_name, cpu_millis, memory_bytes, estimated_start_at) ",
    "SELECT i.id, i.attempt, i.app, i.cpu, i.memory, l.estimated_start_at ",
    "FROM input i JOIN locked l ON l.id = i.id ON CONFLICT DO NOTHING RETURNING job_id), ",
    "upd AS (UPDATE jobs j SET state = 'submitted', state_reason = i.reason, ",
    "state_message = i.message, spark_app_name = i.app, cpu_millis = i.cpu, ",
    "memory_bytes = i.memory, expires_at = NULL, wait_reason = NULL, wait_message = NULL, ",
    "wait_position = NULL, waiting_since = NULL, estimated_start_at = NULL, updated_at = now() ",
    "FROM input i JOIN att ON att.job_id = i.id WHERE j.id = i.id ",
    "RETURNING j.id, j.namespace, j.priority, j.name, j.attempt, i.from_state, i.reason, ",
    "i.message, i.details::jsonb AS details, j.queued_at), ",
    "e AS (SELECT id, namespace, priority, name, attempt, from_state, ",
    "'submitted'::text AS to_state, reason, message, details FROM upd), ",
    "tr AS (",
    insert_transitions_from!("e"),
    "), ev AS (",
    insert_events_from!("$1", "e"),
    ") SELECT id, namespace, priority, queued_at FROM upd"
);

impl JobStore {
    /// Records `batch` as submitted, like [`JobStore::transition`] with
    /// [`Target::Submitted`] for each, in one statement; the outcomes are in `batch`'s order.
    /// `Err` only when the batch itself could not be written (nothing of it was).
    pub async fn record_submitted(&self, batch: &[Submitted]) -> Result<Vec<Result<()>>> {
        let mut outcomes: Vec<Option<Result<()>>> = batch
            .iter()
            .map(|s| {
                check_transition(Some(s.from), JobState::Submitted)
                    .err()
                    .map(|source| Err(Error::IllegalTransition { job: s.job, source }))
            })
            .collect();
        let rows: Vec<&Submitted> = batch
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| o.is_none())
            .map(|(s, _)| s)
            .collect();
        if !rows.is_empty() {
            let mut attempts = Vec::with_capacity(rows.len());
            let mut cpu = Vec::with_capacity(rows.len());
            let mut memory = Vec::with_capacity(rows.len());
            for s in &rows {
                attempts.push(i32::try_from(s.submission.attempt).map_err(|_| {
                    Error::InvalidArgument(format!("attempt {} is too large", s.submission.attempt))
                })?);
                cpu.push(to_i64(s.submission.footprint.cpu.0, "cpu millis")?);
                memory.push(to_i64(s.submission.footprint.memory.0, "memory bytes")?);
            }
            let mut tx = self.begin_batch().await?;
            let recorded = sqlx::query(RECORD_SUBMITTED)
                .bind(self.names.events_exchange())
                .bind(rows.iter().map(|s| s.job.0).collect::<Vec<Uuid>>())
                .bind(rows.iter().map(|s| s.from.as_str()).collect::<Vec<_>>())
                .bind(attempts)
                .bind(
                    rows.iter()
                        .map(|s| s.submission.spark_app_name.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(cpu)
                .bind(memory)
                .bind(
                    rows.iter()
                        .map(|s| s.note.reason.as_deref())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    rows.iter()
                        .map(|s| s.note.message.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    rows.iter()
                        .map(|s| s.note.details.as_ref().map(ToString::to_string))
                        .collect::<Vec<_>>(),
                )
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            if !recorded.is_empty() {
                self.outbox_written();
            }
            let now = Utc::now();
            // Where each job of the batch still without an outcome is, its first place if it
            // is there twice (a batch is up to a few hundred admissions: no search through it
            // for every row).
            let mut at = std::collections::HashMap::with_capacity(rows.len());
            for (i, (s, o)) in batch.iter().zip(&outcomes).enumerate() {
                if o.is_none() {
                    at.entry(s.job).or_insert(i);
                }
            }
            for row in recorded {
                let id = JobId(row.try_get("id")?);
                let namespace: String = row.try_get("namespace")?;
                let priority: String = row.try_get("priority")?;
                let queued_at: DateTime<Utc> = row.try_get("queued_at")?;
                let waited = (now - queued_at).num_milliseconds() as f64 / 1000.0;
                self.metrics.wait(&namespace, &priority, "store", waited);
                if let Some(i) = at.remove(&id) {
                    outcomes[i] = Some(Ok(()));
                }
            }
        }
        // What the batch left: alone, for the precise outcome.
        let mut done = Vec::with_capacity(batch.len());
        for (s, o) in batch.iter().zip(outcomes) {
            done.push(match o {
                Some(o) => o,
                None => {
                    self.transition(
                        s.job,
                        s.from,
                        Target::Submitted(s.submission.clone()),
                        s.note.clone(),
                    )
                    .await
                }
            });
        }
        Ok(done)
    }
}
