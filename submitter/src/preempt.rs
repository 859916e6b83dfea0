//! Preemption in the admission round: the I/O around the pure [`crate::preemption::choose`].
//!
//! After a round's admissions, each waiting job of the high level (high, or promoted) — at most
//! `max_per_round` of them — asks `choose` for victims among the running applications the
//! tracker's [`Observer`] sees (their bound pods are what deleting them frees; their runtime is
//! since their attempt started running). For each victim, in this order:
//!
//! 1. [`JobStore::requeue_preempted`](queues::JobStore::requeue_preempted) — the job goes back
//!    to the front of its queue as a new attempt not charged to its retry budget, the history
//!    naming the preemptor. **Store first**: a crash before the delete leaves an application
//!    whose attempt is superseded, which `reconcile::sync` deletes as an orphan (its job's
//!    attempt moved on). The other order could leave a deleted application whose job still
//!    looks running, to be failed as lost and charged.
//! 2. the SparkApplication is deleted (its pods go with it);
//! 3. a Kubernetes Event `reason: Preempted` on it names the preemptor, and
//!    `orchestrator_preemptions_total` counts it.
//!
//! Then the preemptor's placement on the freed view is reserved in the capacity ledger under
//! its own demand key: every other decision sees that room as taken, while the victims' pods
//! are still terminating and after. Each round the preemptor alone gets its held room back
//! ([`Holds::take`]) for its own admission; it keeps the hold until its application is created
//! (the ledger entry then becomes its ordinary reservation, dropped once its pods are bound) or
//! `hold_for` passes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use capacity::{GangDemand, Placement, Resources};
use chrono::{DateTime, Utc};
use jobs::{JobId, JobState, Priority};
use k8s_openapi::Resource as _;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};

use crate::context::Context;
use crate::kube_apps::{Observer, SparkApplication, delete};
use crate::metrics::WaitingLabels;
use crate::naming;
use crate::preemption::{Choice, Preemptor, Refusal, RunningApp, Shares, choose};
use crate::{Error, Result};

/// The waiting-reason code of a job whose victims are being stopped.
pub const PREEMPTING: &str = "preempting";

/// Room freed for a preemptor and held for it.
#[derive(Debug, Clone)]
pub struct Hold {
    /// The preemptor's attempt the room is held for.
    pub attempt: u32,
    /// Where it goes once the victims are gone (what the ledger holds).
    pub placement: Placement,
    /// The victims' applications, `namespace/name`.
    pub victims: Vec<String>,
    /// When the hold lapses if the preemptor has not started.
    pub until: DateTime<Utc>,
}

impl Hold {
    /// "Why it waits" while its victims stop.
    pub fn message(&self) -> String {
        format!(
            "preempting {} for it: the room they free is held for this job until its \
             application starts (at most until {})",
            self.victims.join(", "),
            self.until.format("%H:%M:%SZ")
        )
    }
}

/// The preemptors' holds, by job. Kept by the leader's submitter across rounds (a new leader
/// starts without: its preemptors wait or preempt again, bounded by `max_per_job`).
#[derive(Debug, Default)]
pub struct Holds(Mutex<HashMap<JobId, Hold>>);

impl Holds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Hold>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The live hold of this job's attempt, if any (a lapsed or stale one is dropped).
    pub fn get(&self, job: JobId, attempt: u32, now: DateTime<Utc>) -> Option<Hold> {
        let mut holds = self.lock();
        match holds.get(&job) {
            Some(h) if h.attempt == attempt && h.until > now => Some(h.clone()),
            Some(_) => {
                holds.remove(&job);
                None
            }
            None => None,
        }
    }

    /// Records a hold.
    pub fn insert(&self, job: JobId, hold: Hold) {
        self.lock().insert(job, hold);
    }

    /// Drops a job's hold.
    pub fn remove(&self, job: JobId) {
        self.lock().remove(&job);
    }

    /// Drops the holds of jobs no longer pending (started elsewhere, cancelled, dead);
    /// returns their ledger keys to release.
    pub fn retain_pending(&self, pending: &HashMap<JobId, u32>) -> Vec<String> {
        let mut gone = Vec::new();
        self.lock().retain(|job, h| {
            let keep = pending.get(job) == Some(&h.attempt);
            if !keep {
                gone.push(naming::demand_key_of(*job, h.attempt));
            }
            keep
        });
        gone
    }

    /// Jobs holding room.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nobody holds room.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A waiting job of the high level that may preempt.
#[derive(Debug, Clone, Copy)]
pub struct Blocked<'a> {
    /// The job.
    pub job: JobId,
    /// Its attempt (the hold is for it).
    pub attempt: u32,
    /// `High` (a high job, or a promoted normal one).
    pub level: Priority,
    /// Its own priority.
    pub priority: Priority,
    /// When it was taken in.
    pub enqueued_at: DateTime<Utc>,
    /// What it needs.
    pub gang: &'a GangDemand,
}

/// A running application with what preemption needs to stop it.
struct Victim {
    app: RunningApp,
    state: JobState,
    attempt: u32,
}

/// Preempts for the blocked jobs, in order, until `max_per_round` have started a hold;
/// returns each such job with its "why it waits".
pub async fn preempt(
    ctx: &Context,
    observer: &Observer,
    now: DateTime<Utc>,
    blocked: &[Blocked<'_>],
    usage: &BTreeMap<String, Resources>,
    entitlements: &BTreeMap<String, Resources>,
) -> Result<Vec<(JobId, String)>> {
    let config = &ctx.config.preemption;
    if !config.enabled || blocked.is_empty() {
        return Ok(Vec::new());
    }
    let mut victims = running(ctx, observer, now).await?;
    if victims.is_empty() {
        return Ok(Vec::new());
    }
    let shares = Shares {
        usage: Some(usage),
        entitlements: Some(entitlements),
    };
    let mut started = Vec::new();
    for b in blocked {
        if started.len() >= config.max_per_round {
            break;
        }
        // Fresh each time: the holds made for the preemptors before it are taken.
        let view = ctx.checker.view()?;
        let apps: Vec<RunningApp> = victims.iter().map(|v| v.app.clone()).collect();
        let preemptor = Preemptor {
            job: b.job,
            level: b.level,
            priority: b.priority,
            enqueued_at: b.enqueued_at,
            gang: b.gang,
        };
        let choice = match choose(now, &view, &preemptor, &apps, config, &shares) {
            Ok(choice) => choice,
            Err(Refusal::WouldNotFit(why)) => {
                tracing::debug!(job = %b.job, why, "preemption would not make it fit");
                continue;
            }
            Err(_) => continue,
        };
        let hold = act(ctx, now, b, &choice, &mut victims).await;
        if hold.victims.is_empty() {
            // Every victim had moved on: nothing was freed, nothing to hold.
            continue;
        }
        ctx.checker.reserve(b.gang, &hold.placement);
        started.push((b.job, hold.message()));
        ctx.holds.insert(b.job, hold);
    }
    Ok(started)
}

/// The running applications (with bound pods) of the active jobs.
async fn running(ctx: &Context, observer: &Observer, now: DateTime<Utc>) -> Result<Vec<Victim>> {
    let active = ctx.store.active_jobs().await?;
    let ids: Vec<JobId> = active.iter().map(|a| a.id).collect();
    let counts = ctx.store.preemption_counts(&ids).await?;
    let mut pods = observer.placed_pods();
    Ok(active
        .into_iter()
        .filter_map(|a| {
            let pods = pods.remove(&(a.namespace.clone(), a.spark_app_name.clone()))?;
            Some(Victim {
                app: RunningApp {
                    job: a.id,
                    app: a.spark_app_name,
                    namespace: a.namespace,
                    priority: a.priority,
                    enqueued_at: a.enqueued_at,
                    // Runtime counts from the driver running; a submitted one has none yet.
                    started_at: if a.state == JobState::Running {
                        a.updated_at
                    } else {
                        now
                    },
                    preemptions: counts.get(&a.id).copied().unwrap_or(0),
                    pods,
                },
                state: a.state,
                attempt: a.attempt,
            })
        })
        .collect())
}

/// Stops the chosen victims (see the module docs for the order) and returns the hold.
async fn act(
    ctx: &Context,
    now: DateTime<Utc>,
    b: &Blocked<'_>,
    choice: &Choice,
    victims: &mut Vec<Victim>,
) -> Hold {
    let mut stopped = Vec::new();
    for (job, cause) in &choice.victims {
        let Some(i) = victims.iter().position(|v| v.app.job == *job) else {
            continue;
        };
        let v = victims.swap_remove(i);
        let message = format!(
            "preempted for job {} ({} in {}), which needs its room; requeued at the front of \
             its queue, this attempt is not charged",
            b.job,
            b.level.as_str(),
            b.gang.namespace
        );
        // 1. The store: from now on this attempt is superseded.
        if let Err(e) = ctx
            .store
            .requeue_preempted(v.app.job, v.state, b.job, &message)
            .await
        {
            // Finished or moved on meanwhile: not a victim after all.
            ctx.metrics.error("admission", e.metric_label());
            tracing::info!(job = %v.app.job, error = %e, "not preempted: its state changed");
            continue;
        }
        // 2. The application (a failure here leaves an orphan the tracker deletes).
        let api: Api<SparkApplication> = Api::namespaced(ctx.client.clone(), &v.app.namespace);
        if let Err(e) = delete(&api, &v.app.app).await {
            ctx.metrics.error("admission", "kube");
            tracing::warn!(job = %v.app.job, app = %v.app.app, error = %e, "cannot delete a preempted application; the tracker will");
        }
        ctx.checker
            .release(&naming::demand_key_of(v.app.job, v.attempt));
        // 3. Tell whoever looks at the application.
        if let Err(e) = event(ctx, &v.app, &message, now).await {
            ctx.metrics
                .error("admission", Error::Kube(e).metric_label());
            tracing::warn!(app = %v.app.app, "cannot record the Preempted event");
        }
        ctx.metrics
            .preemptions
            .get_or_create(&WaitingLabels {
                namespace: v.app.namespace.clone(),
                priority: v.app.priority.as_str().into(),
                reason: cause.as_str().into(),
            })
            .inc();
        tracing::info!(job = %v.app.job, app = %v.app.app, preemptor = %b.job, cause = cause.as_str(), "preempted");
        stopped.push(format!("{}/{}", v.app.namespace, v.app.app));
    }
    let hold_for = chrono::Duration::from_std(ctx.config.preemption.hold_for.0)
        .unwrap_or(chrono::Duration::MAX);
    Hold {
        attempt: b.attempt,
        placement: choice.placement.clone(),
        victims: stopped,
        until: now + hold_for,
    }
}

/// `reason: Preempted` (events.k8s.io/v1) on the victim's application.
async fn event(
    ctx: &Context,
    app: &RunningApp,
    note: &str,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    let at = k8s_openapi::jiff::Timestamp::from_microsecond(now.timestamp_micros())
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", app.app)),
            namespace: Some(app.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(at)),
        action: Some("Preempt".into()),
        reason: Some("Preempted".into()),
        note: Some(note.chars().take(1024).collect()),
        regarding: Some(ObjectReference {
            api_version: Some(SparkApplication::API_VERSION.into()),
            kind: Some(SparkApplication::KIND.into()),
            name: Some(app.app.clone()),
            namespace: Some(app.namespace.clone()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some("spark-orchestrator.dev/submitter".into()),
        reporting_instance: Some(naming::MANAGED_BY.into()),
        type_: Some("Normal".into()),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(ctx.client.clone(), &app.namespace);
    api.create(&PostParams::default(), &event).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn hold(attempt: u32, until: i64) -> Hold {
        Hold {
            attempt,
            placement: Placement {
                nodes: vec!["n0".into()],
                scale_up: Vec::new(),
            },
            victims: vec!["team-a/etl-1".into(), "team-a/etl-2".into()],
            until: at(until),
        }
    }

    #[test]
    fn a_hold_serves_its_attempt_until_it_lapses() {
        let job = JobId(Uuid::from_u128(1));
        // (attempt asked, now, found)
        let cases = [(3, 0, true), (3, 59, true), (3, 60, false), (4, 0, false)];
        for (attempt, now, found) in cases {
            let holds = Holds::default();
            holds.insert(job, hold(3, 60));
            assert_eq!(
                holds.get(job, attempt, at(now)).is_some(),
                found,
                "attempt {attempt} at {now}s"
            );
            assert_eq!(holds.len(), usize::from(found), "a dead hold is dropped");
        }
    }

    #[test]
    fn holds_of_jobs_no_longer_pending_go_with_their_ledger_key() {
        let (a, b, c) = (
            JobId(Uuid::from_u128(1)),
            JobId(Uuid::from_u128(2)),
            JobId(Uuid::from_u128(3)),
        );
        let holds = Holds::default();
        holds.insert(a, hold(1, 60));
        holds.insert(b, hold(2, 60));
        holds.insert(c, hold(1, 60));
        // a still pending at its attempt; b moved on to attempt 3; c is gone.
        let pending = HashMap::from([(a, 1), (b, 3)]);
        let mut gone = holds.retain_pending(&pending);
        gone.sort();
        let mut want = vec![naming::demand_key_of(b, 2), naming::demand_key_of(c, 1)];
        want.sort();
        assert_eq!(gone, want);
        assert_eq!(holds.len(), 1);
    }

    #[test]
    fn why_it_waits_names_every_victim() {
        let m = hold(1, 60).message();
        assert!(m.contains("team-a/etl-1, team-a/etl-2"), "{m}");
    }
}
