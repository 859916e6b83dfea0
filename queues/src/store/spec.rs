//! The orchestrator's own adjustments to a job between attempts.

use sqlx::types::Json;

use super::JobStore;
use crate::error::{Error, Result};
use jobs::model::Job;

impl JobStore {
    /// Replaces the spec of a job that is between attempts (`retrying`, `queued` or `waiting`)
    /// — e.g. more memory after an out-of-memory failure. Identity, namespace, name and
    /// priority must not change; the caller's job must match the stored one on those.
    pub async fn update_spec(&self, job: &Job) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE jobs SET spec = $2, updated_at = now() \
             WHERE id = $1 AND namespace = $3 AND name = $4 AND priority = $5 \
               AND state IN ('retrying', 'queued', 'waiting')",
        )
        .bind(job.id.0)
        .bind(Json(job))
        .bind(&job.namespace)
        .bind(&job.name)
        .bind(job.priority.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 1 {
            Ok(())
        } else {
            Err(Error::NotFound(job.id))
        }
    }
}
