//! One admission round: read the pending heads, size them, order them over the cluster view,
//! confirm each admission with the capacity strategy, create its `SparkApplication`, record it.
//!
//! The application is created **before** the job is recorded as submitted. Its name is
//! deterministic per job and attempt, so a crash anywhere in between leaves either nothing
//! (the next round admits again) or an application whose job is still pending (the next round
//! gets `AlreadyExists` and adopts it; the tracker adopts it too) — never a second one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use capacity::{CapacityChecker, ClusterView, GangDemand, NeverKind, Resources, Verdict};
use chrono::{DateTime, Utc};
use jobs::{Catalog, DeadReason, JobId};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams};
use queues::JobStore;
use queues::store::{
    Footprint as StoredFootprint, Note, PendingJob, Submission, Target, WaitingMark,
};
use tokio::sync::Mutex;

use crate::config::SubmitterConfig;
use crate::footprint::Footprint;
use crate::kube_apps::{Created, SparkApplication, SubmitError, create_or_adopt};
use crate::metrics::{Metrics, OutcomeLabels, WaitingLabels};
use crate::ordering::{self, Candidate, Decision, Policy};
use crate::room::ClusterRoom;
use crate::spark_app::{EmitSettings, pin, spark_application};
use crate::{Error, Result, naming};

/// What the admission loop and the tracker share.
pub struct Shared {
    /// The job store.
    pub store: JobStore,
    /// The capacity strategy.
    pub checker: Arc<dyn CapacityChecker>,
    /// The Kubernetes client.
    pub client: kube::Client,
    /// What jobs may ask for.
    pub catalog: Arc<Catalog>,
    /// Loop settings.
    pub config: SubmitterConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    priorities: Mutex<Option<(Instant, BTreeMap<String, i32>)>>,
}

impl Shared {
    /// Bundles the parts.
    pub fn new(
        store: JobStore,
        checker: Arc<dyn CapacityChecker>,
        client: kube::Client,
        catalog: Arc<Catalog>,
        config: SubmitterConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            checker,
            client,
            catalog,
            config,
            metrics,
            priorities: Mutex::new(None),
        }
    }

    /// PriorityClass values by name (refreshed at most once a minute; missing classes count 0).
    pub async fn priority_values(&self) -> BTreeMap<String, i32> {
        let mut cached = self.priorities.lock().await;
        if let Some((at, values)) = cached.as_ref()
            && at.elapsed().as_secs() < 60
        {
            return values.clone();
        }
        let api: Api<PriorityClass> = Api::all(self.client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let values: BTreeMap<String, i32> = list
                    .items
                    .into_iter()
                    .filter_map(|pc| pc.metadata.name.map(|n| (n, pc.value)))
                    .collect();
                *cached = Some((Instant::now(), values.clone()));
                values
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list PriorityClasses; using the last known values");
                cached.as_ref().map(|(_, v)| v.clone()).unwrap_or_default()
            }
        }
    }

    /// Settings for rendering applications.
    pub fn emit_settings(&self) -> EmitSettings {
        EmitSettings {
            service_account: self.config.service_account.clone(),
            time_to_live_seconds: self.config.app_ttl.map(|d| d.0.as_secs()),
        }
    }
}

/// What a round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoundReport {
    /// Jobs whose application was created or adopted.
    pub admitted: Vec<JobId>,
    /// Jobs left waiting.
    pub waiting: usize,
    /// Jobs dead-lettered (never fits, invalid).
    pub dead: Vec<JobId>,
    /// Admissions that failed transiently (retried next round).
    pub errors: usize,
}

/// A pending job with its footprint and demand.
struct Sized {
    pending: PendingJob,
    footprint: Footprint,
    gang: GangDemand,
}

/// Runs one admission round at `now`.
pub async fn round(shared: &Shared, now: DateTime<Utc>) -> Result<RoundReport> {
    let started = Instant::now();
    let mut report = RoundReport::default();
    let pending = shared
        .store
        .pending_heads(shared.config.heads_per_queue)
        .await?;
    if pending.is_empty() {
        shared.metrics.waiting.clear();
        shared.metrics.holds.set(0);
        return Ok(report);
    }
    let priorities = shared.priority_values().await;

    let mut sized: HashMap<JobId, Sized> = HashMap::new();
    let mut candidates = Vec::new();
    for p in pending {
        match Footprint::of(&p.job, &shared.catalog) {
            Ok(footprint) => {
                let gang = footprint.gang(
                    naming::demand_key(&p.job, p.attempt),
                    &p.job.namespace,
                    naming::pod_selector(&p.job, p.attempt),
                    &priorities,
                );
                // A job still pending holds no promise: one left by an admission that never
                // recorded (a submitter stopped between reserve and record, its checker kept)
                // would otherwise block the job itself until it lapsed.
                shared.checker.release(&gang.key);
                candidates.push(Candidate {
                    id: p.job.id,
                    namespace: p.job.namespace.clone(),
                    priority: p.job.priority,
                    rank: p.position,
                    enqueued_at: p.enqueued_at,
                    gang: gang.clone(),
                });
                sized.insert(
                    p.job.id,
                    Sized {
                        pending: p,
                        footprint,
                        gang,
                    },
                );
            }
            Err(e) => {
                dead_letter(shared, &p, DeadReason::Invalid, &e.to_string(), &mut report).await;
            }
        }
    }

    let view = shared.checker.view()?;
    let usage: BTreeMap<String, Resources> = shared
        .store
        .running_usage()
        .await?
        .into_iter()
        .map(|u| {
            (
                u.namespace,
                Resources {
                    cpu_millis: u.footprint.cpu.0,
                    memory_bytes: u.footprint.memory.0,
                    pods: 0,
                },
            )
        })
        .collect();
    let entitlements = entitlements(&shared.catalog, &view);
    let policy = Policy {
        promote_after: shared.config.promote_after.0,
        max_admissions: shared.config.max_admissions_per_round,
        backfill: shared.config.backfill,
        reservations: shared.config.reservations,
    };
    let decisions = {
        let mut room = ClusterRoom::new(&view);
        let decisions =
            ordering::decide(now, candidates, &usage, &entitlements, &policy, &mut room);
        shared
            .metrics
            .holds
            .set(i64::try_from(room.holders()).unwrap_or(i64::MAX));
        decisions
    };

    let mut marks = Vec::new();
    let mut waiting: HashMap<WaitingLabels, i64> = HashMap::new();
    let mut wait = |s: &Sized, code: &str, message: String, position: u64| {
        *waiting.entry(waiting_labels(&s.pending, code)).or_default() += 1;
        marks.push(WaitingMark {
            job: s.pending.job.id,
            code: code.into(),
            message,
            position: Some(position),
        });
    };
    let mut admits = Vec::new();
    for decision in decisions {
        match decision {
            Decision::Admit { id, .. } => admits.extend(sized.get(&id)),
            Decision::Wait {
                id,
                reason,
                position,
            } => {
                if let Some(s) = sized.get(&id) {
                    wait(s, reason.kind.code(), reason.message, u64::from(position));
                }
            }
            Decision::Never { id, reason } => {
                let Some(s) = sized.get(&id) else { continue };
                let dead = if matches!(reason.kind, NeverKind::Invalid { .. }) {
                    DeadReason::Invalid
                } else {
                    DeadReason::NeverFits
                };
                dead_letter(shared, &s.pending, dead, &reason.message, &mut report).await;
            }
        }
    }

    // Each admission's capacity confirmation and reservation happen one at a time, in the
    // decided order (each sees the reservations before it); the creates and records, which
    // wait on the API server and the database, overlap.
    let confirm = Mutex::new(());
    let confirm = &confirm;
    let admissions: Vec<_> = admits.iter().map(|s| admit(shared, s, confirm)).collect();
    let outcomes: Vec<Result<Admitted>> = futures::stream::iter(admissions)
        .buffered(ADMISSIONS_IN_FLIGHT)
        .collect()
        .await;
    for (s, outcome) in admits.into_iter().zip(outcomes) {
        let id = s.pending.job.id;
        match outcome {
            Ok(Admitted::Yes) => report.admitted.push(id),
            Ok(Admitted::Wait(code, message)) => wait(s, &code, message, s.pending.position),
            Ok(Admitted::Dead) => report.dead.push(id),
            Err(e) => {
                report.errors += 1;
                shared.metrics.error("admission", e.metric_label());
                tracing::warn!(job = %id, namespace = %s.pending.job.namespace, error = %e, "admission failed; retrying next round");
            }
        }
    }
    report.waiting = marks.len();
    shared.store.mark_waiting(&marks).await?;
    shared.metrics.waiting.clear();
    for (labels, n) in waiting {
        shared.metrics.waiting.get_or_create(&labels).set(n);
    }
    shared.metrics.rounds.inc();
    shared
        .metrics
        .round_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(report)
}

fn waiting_labels(p: &PendingJob, reason: &str) -> WaitingLabels {
    WaitingLabels {
        namespace: p.job.namespace.clone(),
        priority: p.job.priority.as_str().into(),
        reason: reason.into(),
    }
}

/// Each namespace's entitlement: its quota, or its weight's share of the cluster.
pub fn entitlements(catalog: &Catalog, view: &ClusterView) -> BTreeMap<String, Resources> {
    let total = view.nodes.iter().fold(Resources::default(), |acc, n| {
        acc.saturating_add(&n.allocatable)
    });
    let weights: f64 = catalog
        .namespace_names()
        .filter_map(|n| catalog.namespace(n))
        .map(|ns| ns.weight.unwrap_or(1.0))
        .sum();
    catalog
        .namespace_names()
        .filter_map(|name| catalog.namespace(name).map(|ns| (name, ns)))
        .map(|(name, ns)| {
            let entitled = match ns.quota {
                Some(q) => Resources {
                    cpu_millis: q.cpu.0,
                    memory_bytes: q.memory.0,
                    pods: 0,
                },
                None => {
                    let share = ns.weight.unwrap_or(1.0) / weights.max(f64::MIN_POSITIVE);
                    Resources {
                        cpu_millis: (total.cpu_millis as f64 * share) as u64,
                        memory_bytes: (total.memory_bytes as f64 * share) as u64,
                        pods: 0,
                    }
                }
            };
            (name.to_owned(), entitled)
        })
        .collect()
}

enum Admitted {
    Yes,
    Wait(String, String),
    Dead,
}

/// Admissions of one round whose create and record run at the same time.
const ADMISSIONS_IN_FLIGHT: usize = 16;

async fn admit(shared: &Shared, s: &Sized, confirm: &Mutex<()>) -> Result<Admitted> {
    let p = &s.pending;
    let job = &p.job;
    let labels = || OutcomeLabels {
        namespace: job.namespace.clone(),
        priority: job.priority.as_str().into(),
        outcome: String::new(),
    };
    let count = |outcome: &str| {
        shared
            .metrics
            .admissions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
                ..labels()
            })
            .inc()
    };

    // The strategy's own confirmation (dry-run admission, placeholders bound) on the live view.
    let confirmed = confirm.lock().await;
    let verdict = shared.checker.check(&s.gang).await?;
    if let Verdict::Fits(placement) = &verdict {
        shared.checker.reserve(&s.gang, placement);
    }
    drop(confirmed);
    let placement = match verdict {
        Verdict::Fits(placement) => placement,
        Verdict::Wait(w) => return Ok(Admitted::Wait(w.kind.code().into(), w.message)),
        Verdict::Never(n) => {
            let dead = if matches!(n.kind, NeverKind::Invalid { .. }) {
                DeadReason::Invalid
            } else {
                DeadReason::NeverFits
            };
            shared
                .store
                .dead_letter(job.id, p.state, dead, &n.message)
                .await?;
            return Ok(Admitted::Dead);
        }
    };

    let mut rendered = spark_application(job, &s.footprint, p.attempt, &shared.emit_settings());
    if shared.checker.binding_placements() {
        pin(&mut rendered, &placement);
    }
    let app =
        SparkApplication::from_rendered(rendered).map_err(|e| Error::Render(e.to_string()))?;
    let api: Api<SparkApplication> = Api::namespaced(shared.client.clone(), &job.namespace);
    let created = match create_or_adopt(&api, &app).await {
        Ok(c) => c,
        Err(SubmitError::Refused(message)) => {
            shared.checker.release(&s.gang.key);
            count("refused");
            return Ok(Admitted::Wait(
                "refused".into(),
                format!("Kubernetes refused the application for now: {message}"),
            ));
        }
        Err(SubmitError::Invalid(message)) => {
            shared.checker.release(&s.gang.key);
            count("invalid");
            shared
                .store
                .dead_letter(
                    job.id,
                    p.state,
                    DeadReason::Invalid,
                    &format!("Kubernetes refused the application: {message}"),
                )
                .await?;
            return Ok(Admitted::Dead);
        }
        Err(SubmitError::NameTaken(message)) => {
            shared.checker.release(&s.gang.key);
            count("invalid");
            shared
                .store
                .dead_letter(job.id, p.state, DeadReason::Rejected, &message)
                .await?;
            return Ok(Admitted::Dead);
        }
        Err(SubmitError::Transient(e)) => {
            shared.checker.release(&s.gang.key);
            count("error");
            return Err(Error::Kube(e));
        }
    };
    count(match created {
        Created::Created => "created",
        Created::Adopted => "adopted",
    });

    let total = s.footprint.total();
    let submission = Submission {
        spark_app_name: naming::app_name(job, p.attempt),
        attempt: p.attempt,
        footprint: StoredFootprint {
            cpu: jobs::quantity::CpuMillis(total.cpu_millis),
            memory: jobs::quantity::MemoryBytes(total.memory_bytes),
        },
    };
    let nodes = placement
        .nodes
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut message = format!(
        "admitted: driver and {} executor(s) placed on {nodes} node(s)",
        s.footprint.executors
    );
    if !placement.scale_up.is_empty() {
        let adds: Vec<String> = placement
            .scale_up
            .iter()
            .map(|u| format!("{} node(s) in pool {}", u.nodes, u.pool))
            .collect();
        message.push_str(&format!(", relying on scale-up of {}", adds.join(", ")));
    }
    let note = Note::new(if created == Created::Adopted { "adopted" } else { "admitted" }, message)
        .with_details(serde_json::json!({ "placement": placement.nodes, "sparkApplication": submission.spark_app_name }));
    shared
        .store
        .transition(job.id, p.state, Target::Submitted(submission), note)
        .await?;
    tracing::info!(job = %job.id, namespace = %job.namespace, attempt = p.attempt, created = ?created, "submitted");
    Ok(Admitted::Yes)
}

async fn dead_letter(
    shared: &Shared,
    p: &PendingJob,
    reason: DeadReason,
    message: &str,
    report: &mut RoundReport,
) {
    match shared
        .store
        .dead_letter(p.job.id, p.state, reason, message)
        .await
    {
        Ok(()) => {
            report.dead.push(p.job.id);
            tracing::info!(job = %p.job.id, namespace = %p.job.namespace, %reason, message, "dead-lettered");
        }
        Err(e) => {
            shared.metrics.error("admission", e.metric_label());
            tracing::warn!(job = %p.job.id, error = %e, "cannot dead-letter; retrying next round");
        }
    }
}
