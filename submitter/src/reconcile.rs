//! Keeps the store in step with the cluster: each sync compares the active jobs with what the
//! watches show of their applications and pods, records progress (`running`, stage wait
//! times), ends finished attempts (`succeeded`; `failed` → retry or dead letter, learning from
//! the failure), stops stuck applications, and reconciles after a crash: an application whose
//! job is still pending is adopted, one whose job has ended is deleted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use jobs::model::Job;
use jobs::{DeadReason, JobId, JobState};
use kube::api::Api;
use queues::metrics::WaitLabels;
use queues::store::{ActiveJob, FootprintRecord, Note, RetryOutcome, Submission, Target};

use crate::app_status::{
    AppObservation, FailureKind, Phase, RetryDecision, classify, is_stuck, retry_decision,
    stuck_since,
};
use crate::context::Context;
use crate::footprint::{DRIVER_MEMORY_FACTOR, EXECUTOR_MEMORY_FACTOR, Footprint, memory_factor};
use crate::kube_apps::{ObservedApp, Observer, SparkApplication, delete};
use crate::metrics::{KindLabels, NamespaceLabels, OutcomeLabels};
use crate::naming::{self, ATTEMPT_LABEL, JOB_ID_LABEL};
use crate::{Error, Result};

/// What the tracker remembers between syncs (lost on restart, which only restarts timers).
#[derive(Debug, Default)]
pub struct TrackerState {
    /// Job specs by (id, attempt): read once per attempt, not every sync.
    specs: HashMap<(JobId, u32), Arc<Job>>,
    /// When each attempt was first seen stuck.
    stuck_since: HashMap<(JobId, u32), DateTime<Utc>>,
    /// When each attempt's driver was first seen running.
    driver_running: HashMap<(JobId, u32), DateTime<Utc>>,
    /// Attempts whose executors were all seen running.
    executors_ready: HashSet<(JobId, u32)>,
    /// When each attempt's application was first found missing.
    missing_since: HashMap<(JobId, u32), DateTime<Utc>>,
    /// Orphan applications already looked up and left alone (terminal or foreign).
    settled_orphans: HashSet<String>,
}

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Jobs that reached `running`.
    pub running: Vec<JobId>,
    /// Jobs that succeeded.
    pub succeeded: Vec<JobId>,
    /// Jobs whose attempt failed, with the failure kind.
    pub failed: Vec<(JobId, FailureKind)>,
    /// Applications adopted for pending jobs.
    pub adopted: Vec<JobId>,
    /// Applications deleted because their job had ended.
    pub deleted_orphans: Vec<String>,
}

/// One sync at `now` over the observer's caches.
pub async fn sync(
    ctx: &Context,
    state: &mut TrackerState,
    observer: &Observer,
    now: DateTime<Utc>,
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    let apps: BTreeMap<String, (Arc<ObservedApp>, AppObservation)> = observer
        .snapshot()
        .into_iter()
        .map(|(app, obs)| {
            (
                format!(
                    "{}/{}",
                    app.metadata.namespace.as_deref().unwrap_or_default(),
                    app.metadata.name.as_deref().unwrap_or_default()
                ),
                (app, obs),
            )
        })
        .collect();
    let active = ctx.store.active_jobs().await?;
    let mut claimed: HashSet<String> = HashSet::new();
    let live: HashSet<(JobId, u32)> = active.iter().map(|a| (a.id, a.attempt)).collect();

    for job in &active {
        let key = format!("{}/{}", job.namespace, job.spark_app_name);
        claimed.insert(key.clone());
        let outcome = match apps.get(&key) {
            Some((_, obs)) => {
                state.missing_since.remove(&(job.id, job.attempt));
                progress(ctx, state, job, obs, now, &mut report).await
            }
            None => missing(ctx, state, job, now, &mut report).await,
        };
        if let Err(e) = outcome {
            ctx.metrics.error("tracker", e.metric_label());
            tracing::warn!(job = %job.id, namespace = %job.namespace, error = %e, "tracking step failed; retrying next sync");
        }
    }

    for (key, (app, obs)) in &apps {
        if claimed.contains(key) || state.settled_orphans.contains(key) {
            continue;
        }
        if let Err(e) = orphan(ctx, state, key, app, obs, &mut report).await {
            ctx.metrics.error("tracker", e.metric_label());
            tracing::warn!(app = %key, error = %e, "cannot reconcile an application without an active job");
        }
    }

    // Forget attempts that are no longer active.
    state.specs.retain(|k, _| live.contains(k));
    state.stuck_since.retain(|k, _| live.contains(k));
    state.driver_running.retain(|k, _| live.contains(k));
    state.executors_ready.retain(|k| live.contains(k));
    state.missing_since.retain(|k, _| live.contains(k));
    state.settled_orphans.retain(|k| apps.contains_key(k));
    Ok(report)
}

async fn spec(
    ctx: &Context,
    state: &mut TrackerState,
    id: JobId,
    attempt: u32,
) -> Result<Option<Arc<Job>>> {
    if let Some(j) = state.specs.get(&(id, attempt)) {
        return Ok(Some(j.clone()));
    }
    let Some(stored) = ctx.store.job(id).await? else {
        return Ok(None);
    };
    let job = Arc::new(stored.job);
    state.specs.insert((id, attempt), job.clone());
    Ok(Some(job))
}

async fn progress(
    ctx: &Context,
    state: &mut TrackerState,
    job: &ActiveJob,
    obs: &AppObservation,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<()> {
    let key = (job.id, job.attempt);
    let Some(spec) = spec(ctx, state, job.id, job.attempt).await? else {
        return Ok(());
    };
    let required = Footprint::of(&spec, &ctx.catalog).map_or(0, |f| f.executors);
    let since = stuck_since(obs, required, state.stuck_since.get(&key).copied(), now);
    match since {
        Some(t) => state.stuck_since.insert(key, t),
        None => state.stuck_since.remove(&key),
    };
    let stuck = is_stuck(since, now, ctx.config.stuck_after.0);
    let wait = |stage: &str| WaitLabels {
        namespace: job.namespace.clone(),
        priority: job.priority.as_str().into(),
        stage: stage.into(),
    };
    match classify(obs, stuck) {
        Phase::Submitted => {}
        Phase::Running { executors_running } => {
            if let std::collections::hash_map::Entry::Vacant(e) = state.driver_running.entry(key) {
                e.insert(now);
                if job.state == JobState::Submitted {
                    // Admitted → driver running: the `driver` stage of the wait.
                    observe(ctx, wait("driver"), job.updated_at, now);
                }
            }
            if job.state == JobState::Submitted {
                ctx.store
                    .transition(
                        job.id,
                        JobState::Submitted,
                        Target::Running,
                        Note::new("driver-running", "the driver is running"),
                    )
                    .await?;
                report.running.push(job.id);
            }
            if executors_running >= required && state.executors_ready.insert(key) {
                let driver_at = state.driver_running.get(&key).copied().unwrap_or(now);
                observe(ctx, wait("executors"), driver_at, now);
            }
        }
        Phase::Succeeded => {
            ctx.store
                .transition(
                    job.id,
                    job.state,
                    Target::Succeeded,
                    Note::new("completed", "the application completed"),
                )
                .await?;
            finish(ctx, state, job, &spec, "succeeded", now);
            report.succeeded.push(job.id);
        }
        Phase::Failed { kind, message } => {
            if kind == FailureKind::Stuck {
                let api: Api<SparkApplication> =
                    Api::namespaced(ctx.client.clone(), &job.namespace);
                delete(&api, &job.spark_app_name).await?;
                ctx.metrics
                    .stuck
                    .get_or_create(&NamespaceLabels {
                        namespace: job.namespace.clone(),
                    })
                    .inc();
                tracing::warn!(job = %job.id, namespace = %job.namespace, app = %job.spark_app_name, "stuck: driver running with executors pending; application deleted");
            }
            fail(ctx, state, job, &spec, kind, &message, now).await?;
            report.failed.push((job.id, kind));
        }
    }
    Ok(())
}

/// An active job whose application the watch does not show.
async fn missing(
    ctx: &Context,
    state: &mut TrackerState,
    job: &ActiveJob,
    now: DateTime<Utc>,
    report: &mut SyncReport,
) -> Result<()> {
    let key = (job.id, job.attempt);
    let first = *state.missing_since.entry(key).or_insert(now);
    if (now - first).to_std().unwrap_or_default() < ctx.config.lost_after.0 {
        return Ok(());
    }
    let Some(spec) = spec(ctx, state, job.id, job.attempt).await? else {
        return Ok(());
    };
    fail(
        ctx,
        state,
        job,
        &spec,
        FailureKind::Lost,
        "the SparkApplication disappeared",
        now,
    )
    .await?;
    report.failed.push((job.id, FailureKind::Lost));
    Ok(())
}

fn observe(ctx: &Context, labels: WaitLabels, from: DateTime<Utc>, to: DateTime<Utc>) {
    let seconds = (to - from).num_milliseconds().max(0) as f64 / 1000.0;
    ctx.store
        .metrics()
        .queue_wait
        .get_or_create(&labels)
        .observe(seconds);
}

fn finish(
    ctx: &Context,
    state: &mut TrackerState,
    job: &ActiveJob,
    spec: &Job,
    outcome: &str,
    now: DateTime<Utc>,
) {
    ctx.checker.release(&naming::demand_key(spec, job.attempt));
    let labels = OutcomeLabels {
        namespace: job.namespace.clone(),
        priority: job.priority.as_str().into(),
        outcome: outcome.into(),
    };
    if let Some(started) = state.driver_running.get(&(job.id, job.attempt)) {
        let seconds = (now - *started).num_milliseconds().max(0) as f64 / 1000.0;
        ctx.metrics
            .run_seconds
            .get_or_create(&labels)
            .observe(seconds);
    }
    ctx.metrics.finished.get_or_create(&labels).inc();
}

/// Records a failed attempt, then retries it (learning from the failure) or gives up.
async fn fail(
    ctx: &Context,
    state: &mut TrackerState,
    job: &ActiveJob,
    spec: &Job,
    kind: FailureKind,
    message: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let note = Note::new(kind.as_str(), message);
    ctx.store
        .transition(job.id, job.state, Target::Failed, note.clone())
        .await?;
    ctx.metrics
        .failures
        .get_or_create(&KindLabels {
            namespace: job.namespace.clone(),
            kind: kind.as_str().into(),
        })
        .inc();
    finish(ctx, state, job, spec, "failed", now);
    let factors = (
        memory_factor(spec, EXECUTOR_MEMORY_FACTOR),
        memory_factor(spec, DRIVER_MEMORY_FACTOR),
    );
    match retry_decision(kind, factors) {
        RetryDecision::DeadLetter => {
            let message =
                format!("{message}; not retried: another attempt would fail the same way");
            ctx.store
                .dead_letter(
                    job.id,
                    JobState::Failed,
                    DeadReason::Unrecoverable,
                    &message,
                )
                .await?;
            dead(ctx, job);
        }
        RetryDecision::Retry {
            immediate,
            executor_memory_factor,
            driver_memory_factor,
        } => {
            match ctx
                .store
                .schedule_retry(job.id, JobState::Failed, note, now)
                .await?
            {
                RetryOutcome::Exhausted => dead(ctx, job),
                RetryOutcome::Scheduled { attempt, .. } => {
                    ctx.metrics
                        .retries
                        .get_or_create(&KindLabels {
                            namespace: job.namespace.clone(),
                            kind: kind.as_str().into(),
                        })
                        .inc();
                    if (executor_memory_factor, driver_memory_factor) != factors {
                        let mut grown = spec.clone();
                        grown.annotations.insert(
                            EXECUTOR_MEMORY_FACTOR.into(),
                            format!("{executor_memory_factor}"),
                        );
                        grown.annotations.insert(
                            DRIVER_MEMORY_FACTOR.into(),
                            format!("{driver_memory_factor}"),
                        );
                        ctx.store.update_spec(&grown).await?;
                        tracing::info!(job = %job.id, attempt, executor_memory_factor, driver_memory_factor, "out of memory: next attempt gets more memory");
                    }
                    if immediate {
                        ctx.store
                            .transition(
                                job.id,
                                JobState::Retrying,
                                Target::Queued,
                                Note::new(
                                    kind.as_str(),
                                    "requeued at once: the attempt never made progress",
                                ),
                            )
                            .await?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn dead(ctx: &Context, job: &ActiveJob) {
    let labels = OutcomeLabels {
        namespace: job.namespace.clone(),
        priority: job.priority.as_str().into(),
        outcome: "dead".into(),
    };
    ctx.metrics.finished.get_or_create(&labels).inc();
}

/// What the tracker does with an application no active job claimed in a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OrphanAction {
    /// Its job is still pending on the same attempt: record it submitted.
    Adopt,
    /// Its job has ended or moved on to another attempt: delete it.
    Delete,
    /// Finished (left to the operator's TTL): never look at it again.
    Settle,
    /// Look again next sync.
    Recheck,
}

/// The decision for an application of `attempt` whose job is `job` (state and current attempt,
/// read after the sync listed the active jobs; `None`: no such job).
fn orphan_action(job: Option<(JobState, u32)>, attempt: u32, terminal: bool) -> OrphanAction {
    // Not just COMPLETED/FAILED: an application whose driver has exited already ended its
    // job (see `classify`); deleting it would only erase what it did.
    if terminal {
        return OrphanAction::Settle;
    }
    match job {
        None => OrphanAction::Delete,
        Some((state, current))
            if current != attempt || state.is_finished() || state == JobState::Retrying =>
        {
            OrphanAction::Delete
        }
        Some((state, _)) if state.is_pending() => OrphanAction::Adopt,
        // The job became active after this sync listed the active jobs (an admission was
        // recorded in between): the next sync claims the application. Settling it instead
        // would hide it for good, so a later cancel would never delete it.
        Some(_) => OrphanAction::Recheck,
    }
}

/// An application without an active job: adopt it for a pending job of the same attempt,
/// delete it when its job has ended or moved on, leave finished ones to the operator's TTL.
async fn orphan(
    ctx: &Context,
    state: &mut TrackerState,
    key: &str,
    app: &ObservedApp,
    obs: &AppObservation,
    report: &mut SyncReport,
) -> Result<()> {
    let id = app
        .label(JOB_ID_LABEL)
        .and_then(|v| v.parse::<JobId>().ok());
    let attempt = app.label(ATTEMPT_LABEL).and_then(|v| v.parse::<u32>().ok());
    let (Some(id), Some(attempt)) = (id, attempt) else {
        state.settled_orphans.insert(key.to_owned());
        return Ok(());
    };
    let stored = ctx.store.job(id).await?;
    let name = app.metadata.name.clone().unwrap_or_default();
    match orphan_action(
        stored.as_ref().map(|s| (s.state, s.attempt)),
        attempt,
        obs.finished(),
    ) {
        OrphanAction::Adopt => {
            let Some(s) = stored else { return Ok(()) };
            let footprint =
                Footprint::of(&s.job, &ctx.catalog).map_err(|e| Error::Render(e.to_string()))?;
            let total = footprint.total();
            let submission = Submission {
                spark_app_name: name.clone(),
                attempt,
                footprint: FootprintRecord {
                    cpu: jobs::quantity::CpuMillis(total.cpu_millis),
                    memory: jobs::quantity::MemoryBytes(total.memory_bytes),
                },
            };
            let note = Note::new(
                "adopted",
                "found its application already created (after a restart)",
            );
            ctx.store
                .transition(id, s.state, Target::Submitted(submission), note)
                .await?;
            report.adopted.push(id);
            tracing::info!(job = %id, app = %key, "adopted an application created before a restart");
        }
        OrphanAction::Delete => {
            let api: Api<SparkApplication> = Api::namespaced(
                ctx.client.clone(),
                app.metadata.namespace.as_deref().unwrap_or_default(),
            );
            delete(&api, &name).await?;
            report.deleted_orphans.push(key.to_owned());
            if let Some(s) = &stored {
                ctx.checker.release(&naming::demand_key(&s.job, attempt));
                tracing::info!(job = %id, app = %key, state = %s.state, "deleted an application whose job has ended");
            }
        }
        OrphanAction::Settle => {
            state.settled_orphans.insert(key.to_owned());
        }
        OrphanAction::Recheck => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;
    use OrphanAction::*;

    /// The job's state and attempt, the application's attempt, whether it is terminal, the
    /// action.
    type Case = (Option<(JobState, u32)>, u32, bool, OrphanAction);

    #[test]
    fn orphans_are_adopted_deleted_settled_or_looked_at_again() {
        let cases: &[Case] = &[
            (Some((Waiting, 2)), 2, false, Adopt),
            (Some((Queued, 1)), 1, false, Adopt),
            (Some((Waiting, 3)), 2, false, Delete),
            (Some((Cancelled, 2)), 2, false, Delete),
            (Some((Succeeded, 1)), 1, false, Delete),
            (Some((Dead, 1)), 1, false, Delete),
            (Some((Retrying, 1)), 1, false, Delete),
            (Some((Running, 3)), 2, false, Delete),
            (None, 1, false, Delete),
            // Admitted after the sync read the active jobs: a cancel may follow, so the
            // application must be looked at again, not settled.
            (Some((Submitted, 2)), 2, false, Recheck),
            (Some((Running, 2)), 2, false, Recheck),
            (Some((Cancelled, 2)), 2, true, Settle),
            (Some((Waiting, 2)), 2, true, Settle),
            (Some((Running, 2)), 2, true, Settle),
            (None, 1, true, Settle),
        ];
        for &(job, attempt, terminal, want) in cases {
            assert_eq!(
                orphan_action(job, attempt, terminal),
                want,
                "{job:?} attempt {attempt} terminal {terminal}"
            );
        }
    }
}
