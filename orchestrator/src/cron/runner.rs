//! The cron loop: looks at every schedule, fires what is due exactly once, records what was
//! missed or skipped.
//!
//! Each look ([`CronRunner::tick`]) takes the time as an argument, so tests drive it with
//! injected instants. A fire claims `(schedule, nominal time)` and writes the job to the
//! outbox in one transaction ([`queues::JobStore::record_cron_fire`]): two replicas racing
//! for the same fire enqueue one job, and the job reaches the queues through RabbitMQ like
//! any other. A template that no longer validates (the catalog changed) becomes a dead
//! letter with its problems instead of vanishing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::StreamExt;
use jobs::validate::parse_job;
use jobs::{Catalog, DeadReason, Job, JobId};
use queues::JobStore;
use queues::store::{CancelOutcome, IntakeItem, NewDeadLetter, Note, Schedule};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::metrics::CronMetrics;
use schedules::{ConcurrencyAction, ConcurrencyPolicy, CronSpec, Fire, MissedRunPolicy, plan};

/// What one tick did, summed over schedules (for tests and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Jobs enqueued by this replica.
    pub fired: u64,
    /// Fires this replica found already claimed by another.
    pub lost_races: u64,
    /// Fires skipped by concurrency policy `forbid`.
    pub skipped: u64,
    /// Active runs cancelled by concurrency policy `replace`.
    pub replaced: u64,
    /// Runs counted as missed.
    pub missed: u64,
    /// Fires whose template did not validate (dead-lettered).
    pub invalid: u64,
    /// Schedules that could not be read (bad expression or policy in the row).
    pub broken: u64,
    /// Earliest next fire over all schedules.
    pub next_at: Option<DateTime<Utc>>,
}

/// Errors of one tick.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// The job store failed.
    #[error(transparent)]
    Store(#[from] queues::Error),
}

/// The cron loop's state: the store it fires into and the catalog templates are checked
/// against.
#[derive(Clone)]
pub struct CronRunner {
    store: JobStore,
    catalog: Arc<Catalog>,
    metrics: Arc<CronMetrics>,
    /// Parsed rules and checked templates by schedule, valid while `updated_at` is unchanged.
    prepared: Arc<Mutex<HashMap<Uuid, Prepared>>>,
    /// Longest sleep between looks (schedules created meanwhile are seen this late).
    pub interval: Duration,
}

impl CronRunner {
    /// A runner over a store.
    pub fn new(store: JobStore, catalog: Arc<Catalog>, metrics: Arc<CronMetrics>) -> Self {
        Self {
            store,
            catalog,
            metrics,
            prepared: Arc::default(),
            interval: Duration::from_secs(1),
        }
    }

    /// Drops prepared entries of schedules that no longer exist.
    fn forget_deleted(&self, schedules: &[Schedule]) {
        let live: HashSet<Uuid> = schedules.iter().map(|s| s.id).collect();
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|id, _| live.contains(id));
    }

    /// A schedule's rules and its template as a job (`None` when it does not validate),
    /// parsed once per version of the schedule.
    fn prepared(&self, s: &Schedule) -> Result<(Arc<Rules>, Option<Job>), String> {
        let mut cache = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(p) = cache.get(&s.id)
            && p.updated_at == s.updated_at
        {
            return Ok((p.rules.clone(), p.template.clone()));
        }
        let rules = Arc::new(Rules::of(s)?);
        let template = parse_job(
            &with_id(&s.definition.job_template, JobId::generate()),
            &self.catalog,
        )
        .ok();
        cache.insert(
            s.id,
            Prepared {
                updated_at: s.updated_at,
                rules: rules.clone(),
                template: template.clone(),
            },
        );
        Ok((rules, template))
    }

    /// Looks at every schedule at `now` and acts on what is due. Fires of schedules that
    /// allow concurrent runs are claimed in one batch (one transaction); `forbid` and
    /// `replace` look at the schedule's active runs first, one fire at a time.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, CronError> {
        let started = Instant::now();
        let mut report = TickReport::default();
        let schedules = self.store.schedules().await?;
        self.metrics.set_schedules(&schedules);
        self.forget_deleted(&schedules);
        let mut batch: Vec<(Uuid, NaiveDateTime, Job)> = Vec::new();
        let mut batch_meta: Vec<(usize, Fire)> = Vec::new();
        let mut advances = Vec::new();
        for (index, schedule) in schedules.iter().enumerate() {
            let span = tracing::info_span!("schedule", schedule = %schedule.definition.name, namespace = %schedule.definition.namespace);
            let _entered = span.enter();
            let (rules, template) = match self.prepared(schedule) {
                Ok(prepared) => prepared,
                Err(why) => {
                    report.broken += 1;
                    warn!(%why, "schedule cannot be read; it fires nothing until fixed");
                    continue;
                }
            };
            let fire_plan = plan(
                &rules.spec,
                schedule.last_scheduled_at,
                schedule.created_at,
                now,
                rules.missed,
                rules.deadline,
                schedule.definition.suspended,
            );
            report.next_at = earliest(report.next_at, fire_plan.next_at);
            for fire in &fire_plan.fire {
                if rules.concurrency == ConcurrencyPolicy::Allow
                    && let Some(template) = &template
                {
                    let mut job = template.clone();
                    job.id = JobId::generate();
                    batch.push((schedule.id, fire.nominal, job));
                    batch_meta.push((index, *fire));
                } else {
                    self.fire(schedule, &rules, *fire, (now, started), &mut report)
                        .await?;
                }
            }
            if let Some(through) = fire_plan.handled_through
                && fire_plan.handled_through != schedule.last_scheduled_at
                && (fire_plan.missed > 0 || fire_plan.fire.is_empty())
            {
                advances.push((index, through, fire_plan.missed, fire_plan.missed_more));
            }
        }

        // Fires first, marks after: a crash in between repeats a look, never loses a fire.
        // Batches go in parallel on the pool's connections.
        let mut chunks = Vec::new();
        while !batch.is_empty() {
            let take = batch.len().min(FIRE_BATCH);
            chunks.push((
                batch.drain(..take).collect::<Vec<_>>(),
                batch_meta.drain(..take).collect::<Vec<_>>(),
            ));
        }
        let claims = futures::stream::iter(chunks.into_iter().map(|(fires, meta)| {
            let store = self.store.clone();
            async move {
                let fired: HashSet<JobId> =
                    store.record_cron_fires(&fires).await?.into_iter().collect();
                Ok::<_, queues::Error>((fires, meta, fired, lag_now(now, started)))
            }
        }))
        .buffer_unordered(PARALLEL_BATCHES)
        .collect::<Vec<_>>()
        .await;
        for claim in claims {
            let (fires, meta, fired, elapsed) = claim?;
            for ((_, _, job), (index, fire)) in fires.iter().zip(&meta) {
                let schedule = &schedules[*index];
                if fired.contains(&job.id) {
                    report.fired += 1;
                    self.metrics.fire(schedule, "fired");
                    self.metrics.lag(lag_of(fire, elapsed));
                    debug!(schedule = %schedule.definition.name, job = %job.id, nominal = %fire.nominal, "fired");
                } else {
                    report.lost_races += 1;
                }
            }
        }
        if report.fired > 0 {
            info!(fired = report.fired, "cron fired");
        }
        for (index, through, missed, more) in advances {
            let schedule = &schedules[index];
            if self
                .store
                .advance_schedule(schedule.id, through, missed)
                .await?
                && missed > 0
            {
                report.missed += missed;
                self.metrics.missed(&schedule.definition.name, missed);
                warn!(schedule = %schedule.definition.name, missed, more, "runs missed");
            }
        }
        Ok(report)
    }

    /// Runs [`CronRunner::tick`] until cancelled, sleeping until the next fire (at most
    /// `interval`). Store errors are logged and retried on the next look.
    pub async fn run(self, token: CancellationToken) {
        loop {
            let started = Utc::now();
            let sleep = match self.tick(started).await {
                Ok(report) => report
                    .next_at
                    .and_then(|at| (at - Utc::now()).to_std().ok())
                    .map_or(self.interval, |d| d.min(self.interval)),
                Err(e) => {
                    warn!(error = %e, "cron look failed; trying again");
                    self.interval
                }
            };
            tokio::select! {
                () = token.cancelled() => return,
                () = tokio::time::sleep(sleep) => {}
            }
        }
    }

    /// One fire of a `forbid`/`replace` schedule, or one whose template does not validate.
    async fn fire(
        &self,
        schedule: &Schedule,
        rules: &Rules,
        fire: Fire,
        (now, started): (DateTime<Utc>, Instant),
        report: &mut TickReport,
    ) -> Result<(), CronError> {
        let active = match rules.concurrency {
            ConcurrencyPolicy::Allow => Vec::new(),
            _ => self.store.schedule_active_jobs(schedule.id).await?,
        };
        let mut outcome = "fired";
        match rules.concurrency.decide(&active) {
            ConcurrencyAction::Fire => {}
            ConcurrencyAction::Skip => {
                if self
                    .store
                    .record_cron_skip(schedule.id, fire.nominal)
                    .await?
                {
                    report.skipped += 1;
                    self.metrics.fire(schedule, "skipped");
                    info!(nominal = %fire.nominal, "skipped: a previous run is still active");
                }
                return Ok(());
            }
            ConcurrencyAction::Replace(old) => {
                for id in old {
                    let note = Note::new(
                        "replaced",
                        format!(
                            "schedule {} fired again ({})",
                            schedule.definition.name, fire.nominal
                        ),
                    );
                    if let CancelOutcome::Cancelled(_) = self.store.cancel_job(id, note).await? {
                        report.replaced += 1;
                    }
                }
                outcome = "replaced";
            }
        }

        let id = JobId::generate();
        let body = with_id(&schedule.definition.job_template, id);
        match parse_job(&body, &self.catalog) {
            Ok(job) => {
                if self
                    .store
                    .record_cron_fire(schedule.id, fire.nominal, &job)
                    .await?
                {
                    report.fired += 1;
                    self.metrics.fire(schedule, outcome);
                    self.metrics.lag(lag(now, &fire, started));
                    info!(job = %id, nominal = %fire.nominal, "fired");
                } else {
                    report.lost_races += 1;
                }
            }
            Err(rejection) => {
                // Claim the fire first so only one replica dead-letters it.
                if self
                    .store
                    .record_cron_skip(schedule.id, fire.nominal)
                    .await?
                {
                    report.invalid += 1;
                    self.metrics.fire(schedule, "invalid");
                    let message = format!(
                        "schedule {}: the job template no longer validates: {}",
                        schedule.definition.name,
                        rejection
                            .problems
                            .iter()
                            .map(|p| format!("{}: {}", p.path, p.message))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    warn!(%message, "fire dead-lettered");
                    let dead = NewDeadLetter {
                        reason: DeadReason::Invalid,
                        message,
                        problems: rejection.problems,
                        claimed_id: Some(id),
                        namespace: Some(schedule.definition.namespace.clone()),
                        priority: None,
                        body_bytes: body.len() as u64,
                        body,
                        truncated: false,
                        message_id: Some(id.to_string()),
                        routing_key: None,
                        content_type: Some("application/json".into()),
                        dedup_key: None,
                        redelivered: false,
                        dead_queue: self
                            .store
                            .names()
                            .dead_queue(&schedule.definition.namespace),
                        reply_to: None,
                    };
                    self.store
                        .take_in(&[IntakeItem::Dead(Box::new(dead))])
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// Most fires claimed in one transaction.
const FIRE_BATCH: usize = 500;

/// Claiming transactions run at once.
const PARALLEL_BATCHES: usize = 4;

/// How late a fire is: from its instant to `now` (the tick's time) plus the tick's work so far.
fn lag(now: DateTime<Utc>, fire: &Fire, started: Instant) -> Duration {
    lag_of(fire, lag_now(now, started))
}

/// The tick's `now` advanced by the work done since it started.
fn lag_now(now: DateTime<Utc>, started: Instant) -> DateTime<Utc> {
    now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default()
}

fn lag_of(fire: &Fire, at: DateTime<Utc>) -> Duration {
    (at - fire.at).to_std().unwrap_or_default()
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A schedule's parsed rules and checked template.
struct Prepared {
    updated_at: DateTime<Utc>,
    rules: Arc<Rules>,
    template: Option<Job>,
}

/// A schedule's row read into rules.
struct Rules {
    spec: CronSpec,
    missed: MissedRunPolicy,
    concurrency: ConcurrencyPolicy,
    deadline: Duration,
}

impl Rules {
    fn of(s: &Schedule) -> Result<Self, String> {
        let spec = CronSpec::parse(&s.definition.cron, &s.definition.time_zone)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            spec,
            missed: s.definition.missed,
            concurrency: s.definition.concurrency_policy,
            deadline: Duration::from_secs(u64::from(s.definition.starting_deadline_seconds)),
        })
    }
}

/// The template as a job message with this fire's id.
fn with_id(template: &Value, id: JobId) -> Vec<u8> {
    let mut body = template.clone();
    if let Some(map) = body.as_object_mut() {
        map.insert("id".into(), Value::String(id.to_string()));
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fire_gets_its_own_id_over_any_in_the_template() {
        let id = JobId::generate();
        let body = with_id(&serde_json::json!({"name": "n", "id": "x"}), id);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["id"], id.to_string());
        assert_eq!(v["name"], "n");
    }
}
