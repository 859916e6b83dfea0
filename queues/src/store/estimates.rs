//! What start-time estimates read and write: finished runs' durations (the runtimes the
//! submitter's replay expects), the running attempts' start times, and the estimates themselves
//! (a column of `jobs`, written by the leader, read by every replica's API).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::JobStore;
use crate::error::Result;
use jobs::model::JobId;

/// A running (or submitted) attempt as the replay needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAttempt {
    /// The job.
    pub id: JobId,
    /// Its namespace.
    pub namespace: String,
    /// Its name (runtimes are learned per name).
    pub name: String,
    /// Its application.
    pub spark_app_name: String,
    /// When its driver started running (`None`: not yet).
    pub started_at: Option<DateTime<Utc>>,
}

impl JobStore {
    /// `(namespace, job name, runtime)` of the latest `limit` succeeded attempts: driver
    /// running to finished.
    pub async fn runtime_samples(&self, limit: u32) -> Result<Vec<(String, String, Duration)>> {
        let rows = sqlx::query(
            "SELECT j.namespace, j.name, \
             extract(epoch FROM (a.finished_at - a.started_at))::float8 AS seconds \
             FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE a.outcome = 'succeeded' AND a.started_at IS NOT NULL \
             AND a.finished_at IS NOT NULL ORDER BY a.finished_at DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let seconds: f64 = r.try_get("seconds")?;
                Ok((
                    r.try_get("namespace")?,
                    r.try_get("name")?,
                    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// Every submitted or running job's current attempt.
    pub async fn running_attempts(&self) -> Result<Vec<RunningAttempt>> {
        let rows = sqlx::query(
            "SELECT j.id, j.namespace, j.name, a.spark_app_name, a.started_at \
             FROM jobs j JOIN job_attempts a ON a.job_id = j.id AND a.attempt = j.attempt \
             WHERE j.state IN ('submitted', 'running') ORDER BY j.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunningAttempt {
                    id: JobId(r.try_get("id")?),
                    namespace: r.try_get("namespace")?,
                    name: r.try_get("name")?,
                    spark_app_name: r.try_get("spark_app_name")?,
                    started_at: r.try_get("started_at")?,
                })
            })
            .collect()
    }

    /// Writes the estimated start of each job (`None` clears it: the replay never starts it).
    /// Jobs no longer pending are left alone (the API shows estimates only on pending jobs).
    pub async fn set_estimates(&self, estimates: &[(JobId, Option<DateTime<Utc>>)]) -> Result<()> {
        if estimates.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE jobs SET estimated_start_at = e.at \
             FROM unnest($1::uuid[], $2::timestamptz[]) AS e(id, at) \
             WHERE jobs.id = e.id AND jobs.state IN ('queued', 'waiting') \
             AND jobs.estimated_start_at IS DISTINCT FROM e.at",
        )
        .bind(estimates.iter().map(|(id, _)| id.0).collect::<Vec<Uuid>>())
        .bind(estimates.iter().map(|(_, at)| *at).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The estimated starts of those of `jobs` that are pending and have one.
    pub async fn estimates(&self, jobs: &[JobId]) -> Result<HashMap<JobId, DateTime<Utc>>> {
        let rows = sqlx::query(
            "SELECT id, estimated_start_at FROM jobs WHERE id = ANY($1) \
             AND state IN ('queued', 'waiting') AND estimated_start_at IS NOT NULL",
        )
        .bind(jobs.iter().map(|j| j.0).collect::<Vec<Uuid>>())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((JobId(r.try_get("id")?), r.try_get("estimated_start_at")?)))
            .collect()
    }
}
