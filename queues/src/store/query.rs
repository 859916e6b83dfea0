//! Reading the store: the submitter's pending heads and usage, the tracker's resync, and the
//! HTTP API's job details, listings, queue depths and positions.
//!
//! The hot query is [`JobStore::pending_heads`]: a loose index scan over the partial index
//! `jobs_pending (namespace, priority, seq) WHERE state IN ('queued','waiting')` finds each
//! (namespace, priority) group with one index probe, then takes the first N of each group in
//! FIFO order with another — its cost depends on the number of groups and N, not on how many
//! jobs are pending (see `tests/store.rs`, which checks the plan at 100,000 pending jobs).

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;

use super::{
    ActiveJob, JobDetail, JobFilter, JobStore, JobSummary, NamespaceUsage, Page, PageRequest,
    PendingJob, QueueStats, StoredJob, TransitionRecord, decode_priority, decode_state,
    job_columns, stored_job, to_u32, to_u64, wait_info,
};
use crate::error::Result;
use crate::store::FootprintRecord;
use jobs::model::{Job, JobId, Priority};
use jobs::quantity::{CpuMillis, MemoryBytes};
use uuid::Uuid;

/// Pending heads: a recursive CTE walks the distinct (namespace, priority) groups of the
/// partial index (one probe each), then a lateral join takes each group's first `$1` rows.
pub(crate) const PENDING_HEADS: &str = "\
WITH RECURSIVE groups AS (
    (SELECT namespace, priority FROM jobs WHERE state IN ('queued', 'waiting')
     ORDER BY namespace, priority LIMIT 1)
    UNION ALL
    SELECT nxt.namespace, nxt.priority FROM groups g CROSS JOIN LATERAL (
        SELECT namespace, priority FROM jobs
        WHERE state IN ('queued', 'waiting') AND (namespace, priority) > (g.namespace, g.priority)
        ORDER BY namespace, priority LIMIT 1) nxt
)
SELECT h.id,
       CASE WHEN (h.id, h.attempt) IN (SELECT * FROM unnest($2::uuid[], $3::int4[]))
            THEN NULL ELSE h.spec END AS spec,
       h.state, h.attempt, h.enqueued_at, h.queued_at, h.wait_reason,
       h.wait_message, h.wait_position, h.waiting_since, h.namespace, h.priority, h.rank
FROM groups g CROSS JOIN LATERAL (
    SELECT j.*, row_number() OVER (ORDER BY j.seq) AS rank FROM (
        SELECT * FROM jobs
        WHERE state IN ('queued', 'waiting') AND namespace = g.namespace AND priority = g.priority
        ORDER BY seq LIMIT $1) j
) h
ORDER BY h.priority = 'normal', h.namespace, h.rank";

impl JobStore {
    /// Up to `per_queue` oldest pending (`queued`/`waiting`) jobs of every (namespace,
    /// priority) queue: high queues first, then by namespace, each queue in FIFO order.
    pub async fn pending_heads(&self, per_queue: u32) -> Result<Vec<PendingJob>> {
        self.pending_heads_reusing(per_queue, &HashMap::new()).await
    }

    /// [`JobStore::pending_heads`], taking the jobs of `known` (by id and attempt) from there
    /// instead of reading and decoding their specs again: a round over a deep backlog reads the
    /// same heads every time, and decoding them was a third of the round.
    pub async fn pending_heads_reusing(
        &self,
        per_queue: u32,
        known: &HashMap<(JobId, u32), Arc<Job>>,
    ) -> Result<Vec<PendingJob>> {
        let (ids, attempts): (Vec<Uuid>, Vec<i32>) = known
            .keys()
            .map(|(id, attempt)| (id.0, i32::try_from(*attempt).unwrap_or(i32::MAX)))
            .unzip();
        let rows = sqlx::query(PENDING_HEADS)
            .bind(i64::from(per_queue.max(1)))
            .bind(ids)
            .bind(attempts)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let attempt = to_u32(row.try_get("attempt")?, "attempt")?;
                let job = match row.try_get::<Option<Json<Job>>, _>("spec")? {
                    Some(Json(job)) => Arc::new(job),
                    None => {
                        let id = JobId(row.try_get("id")?);
                        known.get(&(id, attempt)).cloned().ok_or_else(|| {
                            sqlx::Error::Decode(
                                format!("job {id} attempt {attempt}: no spec and not known").into(),
                            )
                        })?
                    }
                };
                Ok(PendingJob {
                    job,
                    state: decode_state(row.try_get("state")?)?,
                    attempt,
                    enqueued_at: row.try_get("enqueued_at")?,
                    queued_at: row.try_get("queued_at")?,
                    waiting: wait_info(row)?,
                    position: to_u64(row.try_get("rank")?, "rank")?,
                })
            })
            .collect()
    }

    /// The executed plan of [`JobStore::pending_heads`] (`EXPLAIN (ANALYZE, FORMAT JSON)`), to
    /// check it walks the `jobs_pending` index rather than scanning the table.
    pub async fn explain_pending_heads(&self, per_queue: u32) -> Result<serde_json::Value> {
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {PENDING_HEADS}");
        let Json(plan): Json<serde_json::Value> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(per_queue.max(1)))
            .bind(Vec::<Uuid>::new())
            .bind(Vec::<i32>::new())
            .fetch_one(&self.pool)
            .await?;
        Ok(plan)
    }

    /// Pending jobs of one queue, counting at most `cap` (the intake's window check: bounded
    /// work however long the queue).
    pub async fn pending_count(
        &self,
        namespace: &str,
        priority: Priority,
        cap: u32,
    ) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT 1 FROM jobs WHERE state IN ('queued', 'waiting') \
             AND namespace = $1 AND priority = $2 LIMIT $3) t",
        )
        .bind(namespace)
        .bind(priority.as_str())
        .bind(i64::from(cap))
        .fetch_one(&self.pool)
        .await?;
        to_u64(n, "count")
    }

    /// Summed footprint of each namespace's `submitted` and `running` jobs (an index-only scan).
    pub async fn running_usage(&self) -> Result<Vec<NamespaceUsage>> {
        let rows = sqlx::query(
            "SELECT namespace, count(*) AS jobs, coalesce(sum(cpu_millis), 0)::int8 AS cpu, \
             coalesce(sum(memory_bytes), 0)::int8 AS memory FROM jobs \
             WHERE state IN ('submitted', 'running') GROUP BY namespace ORDER BY namespace",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(NamespaceUsage {
                    namespace: row.try_get("namespace")?,
                    jobs: to_u64(row.try_get("jobs")?, "jobs")?,
                    footprint: FootprintRecord {
                        cpu: CpuMillis(to_u64(row.try_get("cpu")?, "cpu")?),
                        memory: MemoryBytes(to_u64(row.try_get("memory")?, "memory")?),
                    },
                })
            })
            .collect()
    }

    /// Every `submitted` or `running` job: what the tracker must watch after a restart.
    pub async fn active_jobs(&self) -> Result<Vec<ActiveJob>> {
        let rows = sqlx::query(
            "SELECT id, namespace, priority, state, attempt, spark_app_name, cpu_millis, \
             memory_bytes, updated_at, enqueued_at FROM jobs \
             WHERE state IN ('submitted', 'running') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let cpu: Option<i64> = row.try_get("cpu_millis")?;
                let memory: Option<i64> = row.try_get("memory_bytes")?;
                Ok(ActiveJob {
                    id: JobId(row.try_get("id")?),
                    namespace: row.try_get("namespace")?,
                    priority: decode_priority(row.try_get("priority")?)?,
                    state: decode_state(row.try_get("state")?)?,
                    attempt: to_u32(row.try_get("attempt")?, "attempt")?,
                    spark_app_name: row
                        .try_get::<Option<String>, _>("spark_app_name")?
                        .unwrap_or_default(),
                    footprint: FootprintRecord {
                        cpu: CpuMillis(to_u64(cpu.unwrap_or(0), "cpu")?),
                        memory: MemoryBytes(to_u64(memory.unwrap_or(0), "memory")?),
                    },
                    updated_at: row.try_get("updated_at")?,
                    enqueued_at: row.try_get("enqueued_at")?,
                })
            })
            .collect()
    }

    /// One job.
    pub async fn job(&self, id: JobId) -> Result<Option<StoredJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_job).transpose()
    }

    /// The job that owns a SparkApplication (any attempt's name).
    pub async fn job_by_spark_app(&self, name: &str) -> Result<Option<StoredJob>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            job_columns!(),
            " FROM jobs WHERE id = (SELECT job_id FROM job_attempts WHERE spark_app_name = $1)"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_job).transpose()
    }

    /// A job's every transition, oldest first.
    pub async fn history(&self, id: JobId) -> Result<Vec<TransitionRecord>> {
        let rows = sqlx::query(
            "SELECT id, from_state, to_state, attempt, reason, message, details, at \
             FROM job_transitions WHERE job_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(transition_record).collect()
    }

    /// A job with its full history and queue position (`GET /v1/jobs/{id}`).
    pub async fn job_detail(&self, id: JobId) -> Result<Option<JobDetail>> {
        let Some(job) = self.job(id).await? else {
            return Ok(None);
        };
        let history = self.history(id).await?;
        let queue_position = if job.state.is_pending() {
            self.queue_position(id).await?
        } else {
            None
        };
        Ok(Some(JobDetail {
            job,
            history,
            queue_position,
        }))
    }

    /// Position of a pending job in its (namespace, priority) queue, 1 = head; `None` when
    /// it is not pending.
    pub async fn queue_position(&self, id: JobId) -> Result<Option<u64>> {
        let n: Option<i64> = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM jobs p WHERE p.state IN ('queued', 'waiting') \
             AND p.namespace = j.namespace AND p.priority = j.priority AND p.seq < j.seq) + 1 \
             FROM jobs j WHERE j.id = $1 AND j.state IN ('queued', 'waiting')",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        n.map(|n| to_u64(n, "position")).transpose()
    }

    /// Jobs matching `filter`, newest first, paginated by id (`GET /v1/jobs`).
    pub async fn list_jobs(
        &self,
        filter: &JobFilter,
        page: PageRequest<JobId>,
    ) -> Result<Page<JobSummary, JobId>> {
        let limit = page.clamped_limit();
        let rows = sqlx::query(
            "SELECT id, name, namespace, priority, state, state_reason, attempt, enqueued_at, \
             updated_at FROM jobs \
             WHERE ($1::text IS NULL OR namespace = $1) AND ($2::text IS NULL OR state = $2) \
             AND ($3::text IS NULL OR priority = $3) AND ($4::uuid IS NULL OR id < $4) \
             AND ($6::text IS NULL OR starts_with(name, $6)) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind(filter.namespace.as_deref())
        .bind(filter.state.map(|s| s.as_str()))
        .bind(filter.priority.map(Priority::as_str))
        .bind(page.after.map(|a| a.0))
        .bind(limit + 1)
        .bind(filter.name_prefix.as_deref())
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows
            .iter()
            .map(|row| {
                Ok(JobSummary {
                    id: JobId(row.try_get("id")?),
                    name: row.try_get("name")?,
                    namespace: row.try_get("namespace")?,
                    priority: decode_priority(row.try_get("priority")?)?,
                    state: decode_state(row.try_get("state")?)?,
                    state_reason: row.try_get("state_reason")?,
                    attempt: to_u32(row.try_get("attempt")?, "attempt")?,
                    enqueued_at: row.try_get("enqueued_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        if more {
            items.pop();
        }
        let next = if more {
            items.last().map(|j| j.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Depth (queued, waiting) and oldest wait of every (namespace, priority) queue with
    /// pending jobs (`GET /v1/queues`, the depth gauges).
    pub async fn queue_stats(&self) -> Result<Vec<QueueStats>> {
        let rows = sqlx::query(
            "SELECT namespace, priority, count(*) FILTER (WHERE state = 'queued') AS queued, \
             count(*) FILTER (WHERE state = 'waiting') AS waiting, min(queued_at) AS oldest \
             FROM jobs WHERE state IN ('queued', 'waiting') GROUP BY namespace, priority \
             ORDER BY priority = 'normal', namespace",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(QueueStats {
                    namespace: row.try_get("namespace")?,
                    priority: decode_priority(row.try_get("priority")?)?,
                    queued: to_u64(row.try_get("queued")?, "queued")?,
                    waiting: to_u64(row.try_get("waiting")?, "waiting")?,
                    oldest_queued_at: row.try_get("oldest")?,
                })
            })
            .collect()
    }
}

fn transition_record(row: &PgRow) -> Result<TransitionRecord> {
    let from: Option<String> = row.try_get("from_state")?;
    let details: Option<Json<serde_json::Value>> = row.try_get("details")?;
    Ok(TransitionRecord {
        id: row.try_get("id")?,
        from: from.as_deref().map(decode_state).transpose()?,
        to: decode_state(row.try_get("to_state")?)?,
        attempt: to_u32(row.try_get("attempt")?, "attempt")?,
        reason: row.try_get("reason")?,
        message: row.try_get("message")?,
        details: details.map(|Json(v)| v),
        at: row.try_get("at")?,
    })
}
