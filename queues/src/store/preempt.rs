//! Preemption's write: a running (or submitted) job whose application the submitter stopped to
//! make room for a higher-priority one goes back to its queue — at the **front**, since pending
//! order is the job's intake sequence, which it keeps — as a new attempt whose number does not
//! count against its retry budget (`retry_base` moves with it). The history row is the
//! transition to `queued` with reason `preempted` and the preemptor in its details; how often a
//! job was preempted is counted from that history (no extra column).

use serde_json::json;
use sqlx::Row;

use super::lifecycle::{close_attempt, lock_in_state};
use super::{Change, JobKey, JobStore, Note, record_change, to_u32};
use crate::error::{Error, Result};
use jobs::model::JobId;
use jobs::state::{JobState, check_transition};

/// The reason code of a preemption's history row.
pub const PREEMPTED: &str = "preempted";

impl JobStore {
    /// Requeues a preempted job (see the module docs): `from` must be `submitted` or
    /// `running` and match the stored state. Returns the job's next attempt.
    pub async fn requeue_preempted(
        &self,
        job: JobId,
        from: JobState,
        preemptor: JobId,
        message: &str,
    ) -> Result<u32> {
        if !from.is_active() {
            return Err(Error::InvalidArgument(format!(
                "only a submitted or running job can be preempted, not a {from} one"
            )));
        }
        check_transition(Some(from), JobState::Queued)
            .map_err(|source| Error::IllegalTransition { job, source })?;
        let mut tx = self.pool.begin().await?;
        let row = lock_in_state(
            &mut tx,
            "SELECT state, attempt, namespace, priority, name, spark_app_name FROM jobs \
             WHERE id = $1 FOR UPDATE",
            job,
            from,
        )
        .await?;
        let attempt: i32 = row.try_get("attempt")?;
        let app: Option<String> = row.try_get("spark_app_name")?;
        let next = attempt.saturating_add(1);
        let note = Note::new(PREEMPTED, message);
        sqlx::query(
            "UPDATE jobs SET state = 'queued', attempt = $2, retry_base = retry_base + 1, \
             state_reason = $3, state_message = $4, spark_app_name = NULL, cpu_millis = NULL, \
             memory_bytes = NULL, finished_at = NULL, next_attempt_at = NULL, \
             queued_at = now(), updated_at = now(), wait_reason = NULL, wait_message = NULL, \
             wait_position = NULL, waiting_since = NULL WHERE id = $1",
        )
        .bind(job.0)
        .bind(next)
        .bind(PREEMPTED)
        .bind(&note.message)
        .execute(&mut *tx)
        .await?;
        close_attempt(&mut tx, job, attempt, "preempted").await?;
        let details = json!({
            "preemptor": preemptor.to_string(),
            "previousAttempt": attempt,
            "sparkApplication": app,
        });
        let key = JobKey::of(job, &row)?;
        record_change(
            &mut tx,
            &self.names,
            &Change {
                job: &key,
                attempt: next,
                from: Some(from),
                to: JobState::Queued,
                reason: Some(PREEMPTED),
                message: &note.message,
                details: Some(&details),
            },
        )
        .await?;
        tx.commit().await?;
        self.outbox_written();
        to_u32(next, "attempt")
    }

    /// How often each job was preempted (jobs never preempted are absent).
    pub async fn preemption_counts(
        &self,
        jobs: &[JobId],
    ) -> Result<std::collections::HashMap<JobId, u32>> {
        let ids: Vec<uuid::Uuid> = jobs.iter().map(|j| j.0).collect();
        let rows = sqlx::query(
            "SELECT job_id, count(*) AS n FROM job_transitions \
             WHERE job_id = ANY($1) AND reason = $2 GROUP BY job_id",
        )
        .bind(&ids)
        .bind(PREEMPTED)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n: i64 = r.try_get("n")?;
                Ok((
                    JobId(r.try_get("job_id")?),
                    u32::try_from(n).unwrap_or(u32::MAX),
                ))
            })
            .collect()
    }
}
