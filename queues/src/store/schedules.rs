//! Cron schedules: their definitions (the HTTP API and CLI write them), and what the daemon's
//! cron loop records as it fires them.
//!
//! Nominal times are the schedule's local wall-clock readings stored with a UTC label (see the
//! `schedules` migration): `(schedule, nominal time)` is a fire's identity, claimed once in
//! `cron_fires`, so replicas racing for the same fire collide there and only one enqueues.
//! Policies are typed ([`MissedRunPolicy`], [`ConcurrencyPolicy`]) and stored as their
//! kebab-case names (`skip`, `run-latest`, `catch-up` with its limit; `allow`, `forbid`,
//! `replace`), which the database checks too.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::postgres::PgRow;
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Postgres, Row};
use uuid::Uuid;

use super::JobStore;
use crate::error::{Error, Result};
use ::schedules::{ConcurrencyPolicy, MissedRunPolicy, ScheduleDefinition};
use jobs::model::JobId;

/// A schedule as stored: its checked definition and what the store adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = ScheduleRecord)]
pub struct Schedule {
    /// Stable id (uuid v7).
    pub id: Uuid,
    /// What the user defined (name, cron, zone, template, policies, suspension).
    #[serde(flatten)]
    pub definition: ScheduleDefinition,
    /// The latest nominal time handled (fired, skipped or missed), local wall clock.
    #[schema(value_type = Option<String>, format = "date-time-local")]
    pub last_scheduled_at: Option<NaiveDateTime>,
    /// Runs missed so far (daemon down beyond the deadline, policy).
    pub missed_total: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns [`schedule`] reads (a macro so queries stay `&'static str`).
macro_rules! columns {
    () => {
        "id, name, namespace, cron, time_zone, job_template, missed_run_policy, catch_up_limit, \
         starting_deadline_seconds, concurrency_policy, suspended, last_scheduled_at, \
         missed_total, created_at, updated_at"
    };
}

fn schedule(row: &PgRow) -> Result<Schedule> {
    let Json(job_template): Json<Value> = row.try_get("job_template")?;
    let last: Option<DateTime<Utc>> = row.try_get("last_scheduled_at")?;
    let count = |name: &str| -> Result<u32> {
        let v: i32 = row.try_get(name)?;
        u32::try_from(v).map_err(|_| Error::Corrupt(format!("schedules.{name} = {v}")))
    };
    Ok(Schedule {
        id: row.try_get("id")?,
        definition: ScheduleDefinition {
            name: row.try_get("name")?,
            namespace: row.try_get("namespace")?,
            cron: row.try_get("cron")?,
            time_zone: row.try_get("time_zone")?,
            job_template,
            missed: MissedRunPolicy::parse(
                row.try_get("missed_run_policy")?,
                Some(count("catch_up_limit")?),
            )
            .map_err(|(_, why)| Error::Corrupt(format!("schedules.missed_run_policy: {why}")))?,
            starting_deadline_seconds: count("starting_deadline_seconds")?,
            concurrency_policy: ConcurrencyPolicy::parse(row.try_get("concurrency_policy")?)
                .map_err(|why| Error::Corrupt(format!("schedules.concurrency_policy: {why}")))?,
            suspended: row.try_get("suspended")?,
        },
        last_scheduled_at: last.map(|t| t.naive_utc()),
        missed_total: u64::try_from(row.try_get::<i64, _>("missed_total")?).unwrap_or(0),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Binds a definition's ten columns, in the order `create_schedule` and `update_schedule`
/// list them after their first parameter.
fn bind_definition<'q>(
    query: Query<'q, Postgres, PgArguments>,
    new: &'q ScheduleDefinition,
) -> Result<Query<'q, Postgres, PgArguments>> {
    Ok(query
        .bind(&new.name)
        .bind(&new.namespace)
        .bind(&new.cron)
        .bind(&new.time_zone)
        .bind(Json(&new.job_template))
        .bind(new.missed.name())
        .bind(i32_of(
            new.missed.catch_up_limit().unwrap_or(1),
            "catchUpLimit",
        )?)
        .bind(i32_of(
            new.starting_deadline_seconds,
            "startingDeadlineSeconds",
        )?)
        .bind(new.concurrency_policy.name())
        .bind(new.suspended))
}

/// A nominal time as stored: the wall-clock reading with a UTC label.
fn label(nominal: NaiveDateTime) -> DateTime<Utc> {
    nominal.and_utc()
}

fn i32_of(v: u32, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::InvalidArgument(format!("{what} {v} is too large")))
}

/// Maps a unique-name violation to [`Error::ScheduleExists`].
fn name_taken(e: sqlx::Error, name: &str) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::ScheduleExists(name.to_owned())
        }
        _ => Error::Db(e),
    }
}

impl JobStore {
    /// Creates a schedule. Its first fire is the first nominal time after now.
    pub async fn create_schedule(&self, new: &ScheduleDefinition) -> Result<Schedule> {
        let query = sqlx::query(concat!(
            "INSERT INTO schedules (id, name, namespace, cron, time_zone, job_template, \
             missed_run_policy, catch_up_limit, starting_deadline_seconds, concurrency_policy, \
             suspended) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING ",
            columns!()
        ))
        .bind(Uuid::now_v7());
        let row = bind_definition(query, new)?
            .fetch_one(&self.pool)
            .await
            .map_err(|e| name_taken(e, &new.name))?;
        schedule(&row)
    }

    /// Replaces a schedule's definition (found by name). What it has fired stays.
    pub async fn update_schedule(&self, name: &str, new: &ScheduleDefinition) -> Result<Schedule> {
        let query = sqlx::query(concat!(
            "UPDATE schedules SET name = $2, namespace = $3, cron = $4, time_zone = $5, \
             job_template = $6, missed_run_policy = $7, catch_up_limit = $8, \
             starting_deadline_seconds = $9, concurrency_policy = $10, suspended = $11, \
             updated_at = now() WHERE name = $1 RETURNING ",
            columns!()
        ))
        .bind(name);
        let row = bind_definition(query, new)?
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| name_taken(e, &new.name))?;
        row.as_ref()
            .map(schedule)
            .transpose()?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    /// Suspends or resumes a schedule. Resuming does not catch up what fell due while
    /// suspended: the runs in between count as handled.
    pub async fn set_schedule_suspended(&self, name: &str, suspended: bool) -> Result<Schedule> {
        let row = sqlx::query(concat!(
            "UPDATE schedules SET suspended = $2, updated_at = now() WHERE name = $1 \
             RETURNING ",
            columns!()
        ))
        .bind(name)
        .bind(suspended)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref()
            .map(schedule)
            .transpose()?
            .ok_or_else(|| Error::ScheduleNotFound(name.to_owned()))
    }

    /// Deletes a schedule and its fire records; jobs it enqueued stay. `false` if absent.
    pub async fn delete_schedule(&self, name: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM schedules WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    /// One schedule by name.
    pub async fn schedule(&self, name: &str) -> Result<Option<Schedule>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM schedules WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(schedule).transpose()
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM schedules ORDER BY name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(schedule).collect()
    }

    /// Records nominal times handled without a fire (missed, or passed while suspended):
    /// moves the schedule's mark forward to `through` and counts `missed` runs for the
    /// window ending there. Each window is counted once however many replicas report it, and
    /// the mark never moves back. Returns whether this call counted the window.
    pub async fn advance_schedule(
        &self,
        id: Uuid,
        through: NaiveDateTime,
        missed: u64,
    ) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE schedules SET \
               last_scheduled_at = GREATEST(last_scheduled_at, $2), \
               missed_total = missed_total + $3, missed_through = $2, updated_at = now() \
             WHERE id = $1 AND (missed_through IS NULL OR missed_through < $2)",
        )
        .bind(id)
        .bind(label(through))
        .bind(i64::try_from(missed).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records a fire that concurrency policy `forbid` skipped, once per nominal time.
    /// Returns `false` when that nominal time was already handled (another replica).
    pub async fn record_cron_skip(&self, id: Uuid, nominal: NaiveDateTime) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let claimed = sqlx::query(
            "INSERT INTO cron_fires (schedule_id, nominal_time, job_id, outcome) \
             VALUES ($1, $2, NULL, 'skipped') ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(label(nominal))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if claimed {
            sqlx::query(
                "UPDATE schedules SET last_scheduled_at = GREATEST(last_scheduled_at, $2), \
                 updated_at = now() WHERE id = $1",
            )
            .bind(id)
            .bind(label(nominal))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(claimed)
    }

    /// The schedule's jobs that have not finished (for concurrency policies).
    pub async fn schedule_active_jobs(&self, id: Uuid) -> Result<Vec<JobId>> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT f.job_id FROM cron_fires f JOIN jobs j ON j.id = f.job_id \
             WHERE f.schedule_id = $1 \
               AND j.state NOT IN ('succeeded', 'failed', 'cancelled', 'dead') \
             ORDER BY f.nominal_time",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(JobId).collect())
    }

    /// How many jobs each fire of the schedule enqueued (tests, diagnostics).
    pub async fn cron_fires(&self, id: Uuid) -> Result<Vec<(NaiveDateTime, Option<JobId>)>> {
        let rows = sqlx::query(
            "SELECT nominal_time, job_id FROM cron_fires WHERE schedule_id = $1 \
             ORDER BY nominal_time",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let at: DateTime<Utc> = r.try_get("nominal_time")?;
                let job: Option<Uuid> = r.try_get("job_id")?;
                Ok((at.naive_utc(), job.map(JobId)))
            })
            .collect()
    }
}
