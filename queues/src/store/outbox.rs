//! The outbox's store side (claims and marks for the relay), retention, and cron fires.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::{JobStore, to_u64};
use crate::error::Result;
use crate::metrics::RetentionLabels;
use crate::topology::Names;
use jobs::model::{Job, JobId};

/// One message waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    /// Row id (publish order).
    pub id: i64,
    /// `event`, `dead-letter`, `verdict`, `job`.
    pub kind: String,
    /// Exchange (`""` = default exchange, routing key = queue).
    pub exchange: String,
    /// Routing key.
    pub routing_key: String,
    /// Publish with `mandatory` (detects a missing queue).
    pub mandatory: bool,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// AMQP `correlation_id`.
    pub correlation_id: Option<String>,
    /// AMQP content type.
    pub content_type: String,
    /// AMQP headers (JSON object).
    pub headers: Value,
    /// Body.
    pub body: Vec<u8>,
}

/// What the relay learnt about a claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OutboxFate {
    /// Confirmed by the broker.
    Sent,
    /// Confirmed, but returned unroutable (nobody to deliver to): sent, flagged.
    Returned,
    /// Nacked or failed: stays unsent, tried again later.
    Failed(String),
}

/// How much retention deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Finished jobs (with their history, attempts and dead-letter records).
    pub jobs: u64,
    /// Dead-letter records of messages that never became jobs.
    pub dead_letters: u64,
    /// Published outbox rows.
    pub outbox: u64,
}

impl JobStore {
    /// Locks up to `limit` unsent rows, oldest first (`SKIP LOCKED`: several relays share the
    /// work). The transaction stays open while the relay publishes; it ends with
    /// [`JobStore::finish_outbox`] (or a rollback on drop, leaving the rows unsent).
    pub(crate) async fn claim_outbox(
        &self,
        limit: u32,
    ) -> Result<(Transaction<'static, Postgres>, Vec<OutboxRow>)> {
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id, kind, exchange, routing_key, mandatory, message_id, correlation_id, \
             content_type, headers, body FROM outbox WHERE sent_at IS NULL ORDER BY id \
             LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                let Json(headers): Json<Value> = row.try_get("headers")?;
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    exchange: row.try_get("exchange")?,
                    routing_key: row.try_get("routing_key")?,
                    mandatory: row.try_get("mandatory")?,
                    message_id: row.try_get("message_id")?,
                    correlation_id: row.try_get("correlation_id")?,
                    content_type: row.try_get("content_type")?,
                    headers,
                    body: row.try_get("body")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((tx, rows))
    }

    /// Records the relay's results and commits.
    pub(crate) async fn finish_outbox(
        &self,
        mut tx: Transaction<'static, Postgres>,
        fates: &[(i64, OutboxFate)],
    ) -> Result<()> {
        let sent: Vec<i64> = fates
            .iter()
            .filter(|(_, f)| matches!(f, OutboxFate::Sent | OutboxFate::Returned))
            .map(|(id, _)| *id)
            .collect();
        let returned: Vec<i64> = fates
            .iter()
            .filter(|(_, f)| matches!(f, OutboxFate::Returned))
            .map(|(id, _)| *id)
            .collect();
        if !sent.is_empty() {
            sqlx::query(
                "UPDATE outbox SET sent_at = now(), returned = (id = ANY($2)), \
                 publish_attempts = publish_attempts + 1 WHERE id = ANY($1)",
            )
            .bind(&sent)
            .bind(&returned)
            .execute(&mut *tx)
            .await?;
        }
        let (failed_ids, errors): (Vec<i64>, Vec<String>) = fates
            .iter()
            .filter_map(|(id, f)| match f {
                OutboxFate::Failed(e) => Some((*id, e.clone())),
                _ => None,
            })
            .unzip();
        if !failed_ids.is_empty() {
            sqlx::query(
                "UPDATE outbox o SET publish_attempts = o.publish_attempts + 1, last_error = f.err \
                 FROM UNNEST($1::int8[], $2::text[]) AS f(id, err) WHERE o.id = f.id",
            )
            .bind(&failed_ids)
            .bind(&errors)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Outbox rows not yet published (a gauge and a test helper).
    pub async fn outbox_pending(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            .fetch_one(&self.pool)
            .await?;
        to_u64(n, "count")
    }

    /// Retention: deletes jobs finished (`succeeded`, `failed`, `cancelled`, `dead`) before
    /// `cutoff` — with their history, attempts and dead-letter records — plus dead-letter
    /// records of messages that never became jobs and published outbox rows older than
    /// `cutoff`. Works in batches of `batch` rows so no statement holds many locks.
    pub async fn delete_finished_before(
        &self,
        cutoff: DateTime<Utc>,
        batch: u32,
    ) -> Result<RetentionReport> {
        let batch = i64::from(batch.max(1));
        let mut report = RetentionReport::default();
        for (what, sql) in [
            (
                // History and attempts have no foreign key (see the migration
                // `lighter_hot_writes`): they go in the same statement as their job.
                "jobs",
                "WITH gone AS (DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
                 WHERE finished_at < $1 AND state IN ('succeeded', 'failed', 'cancelled', 'dead') \
                 ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id), \
                 history AS (DELETE FROM job_transitions t USING gone WHERE t.job_id = gone.id), \
                 attempts AS (DELETE FROM job_attempts a USING gone WHERE a.job_id = gone.id) \
                 SELECT count(*) FROM gone",
            ),
            (
                "dead-letters",
                "WITH gone AS (DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters \
                 WHERE job_id IS NULL AND created_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                 RETURNING 1) SELECT count(*) FROM gone",
            ),
            (
                "outbox",
                "WITH gone AS (DELETE FROM outbox WHERE id IN (SELECT id FROM outbox \
                 WHERE sent_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING 1) \
                 SELECT count(*) FROM gone",
            ),
        ] {
            loop {
                let n: i64 = sqlx::query_scalar(sql)
                    .bind(cutoff)
                    .bind(batch)
                    .fetch_one(&self.pool)
                    .await?;
                let n = to_u64(n, "deleted rows")?;
                match what {
                    "jobs" => report.jobs += n,
                    "dead-letters" => report.dead_letters += n,
                    _ => report.outbox += n,
                }
                self.metrics
                    .retention_deleted
                    .get_or_create(&RetentionLabels {
                        what: what.to_owned(),
                    })
                    .inc_by(n);
                if n < u64::try_from(batch).unwrap_or(u64::MAX) {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Fires a schedule exactly once for a nominal time: see [`JobStore::record_cron_fires`].
    /// Returns `false` when that fire already happened (another replica won).
    pub async fn record_cron_fire(
        &self,
        schedule_id: Uuid,
        nominal: NaiveDateTime,
        job: &Job,
    ) -> Result<bool> {
        let fired = self
            .record_cron_fires(&[(schedule_id, nominal, job.clone())])
            .await?;
        Ok(fired.contains(&job.id))
    }

    /// Fires schedules exactly once per nominal time, a batch in one transaction: claims each
    /// `(schedule, nominal_time)` and puts the claimed ones' jobs on the outbox (published to
    /// `{p}.jobs` like any job, marked as cron jobs) and moves each schedule's mark. Returns
    /// the ids of the jobs enqueued; a fire another replica claimed first is left out.
    pub async fn record_cron_fires(
        &self,
        fires: &[(Uuid, NaiveDateTime, Job)],
    ) -> Result<Vec<JobId>> {
        if fires.is_empty() {
            return Ok(Vec::new());
        }
        let mut schedules = Vec::with_capacity(fires.len());
        let mut nominals = Vec::with_capacity(fires.len());
        let mut ids = Vec::with_capacity(fires.len());
        let mut keys = Vec::with_capacity(fires.len());
        let mut bodies = Vec::with_capacity(fires.len());
        for (schedule, nominal, job) in fires {
            schedules.push(*schedule);
            nominals.push(nominal.and_utc());
            ids.push(job.id.0);
            keys.push(Names::routing_key(&job.namespace, job.priority));
            bodies.push(serde_json::to_vec(job)?);
        }
        let claimed: Vec<Uuid> = sqlx::query_scalar(
            "WITH input AS ( \
               SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::uuid[], $4::text[], $5::bytea[]) \
                 AS t(schedule_id, nominal_time, job_id, routing_key, body)), \
             claimed AS ( \
               INSERT INTO cron_fires (schedule_id, nominal_time, job_id) \
               SELECT schedule_id, nominal_time, job_id FROM input ON CONFLICT DO NOTHING \
               RETURNING schedule_id, nominal_time, job_id), \
             queued AS ( \
               INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, headers, body) \
               SELECT 'job', $6, i.routing_key, true, i.job_id::text, $7, i.body \
               FROM input i JOIN claimed c ON c.job_id = i.job_id ORDER BY c.nominal_time), \
             marked AS ( \
               UPDATE schedules s SET last_scheduled_at = GREATEST(s.last_scheduled_at, m.t), \
                 updated_at = now() \
               FROM (SELECT schedule_id, max(nominal_time) AS t FROM claimed GROUP BY schedule_id) m \
               WHERE s.id = m.schedule_id) \
             SELECT job_id FROM claimed",
        )
        .bind(&schedules)
        .bind(&nominals)
        .bind(&ids)
        .bind(&keys)
        .bind(&bodies)
        .bind(self.names.jobs_exchange())
        .bind(Json(serde_json::json!({ crate::amqp::SOURCE_HEADER: "cron" })))
        .fetch_all(&self.pool)
        .await?;
        if !claimed.is_empty() {
            self.outbox_written();
        }
        Ok(claimed.into_iter().map(JobId).collect())
    }
}
