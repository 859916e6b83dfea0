//! One admission round: read the pending heads, size them, order them over the cluster view,
//! confirm each admission with the capacity strategy, create its `SparkApplication`, record it.
//!
//! The application is created **before** the job is recorded as submitted. Its name is
//! deterministic per job and attempt, so a crash anywhere in between leaves either nothing
//! (the next round admits again) or an application whose job is still pending (the next round
//! gets `AlreadyExists` and adopts it; the tracker adopts it too) — never a second one.
//!
//! With `[submitter.preemption]` enabled, a round ends by letting blocked jobs of the high
//! level preempt ([`crate::preempt`]); a preemptor whose room is held is decided first, alone
//! with its held room, before the other jobs see the cluster.
//!
//! Rounds decide one at a time (`Context::deciding`), each over the room the ones before it
//! reserved. Without preemption, a round hands that turn on as soon as its last admission is
//! confirmed and reserved, and finishes its creates and records while the next round decides:
//! in a burst, creates no longer stop while each round reads its heads. Its admissions stay
//! in flight ([`crate::flight`]) until recorded, so the next round leaves them alone and
//! counts them in their namespaces' usage; the waits it decided are written before it hands
//! on, so a later round's are never overwritten by them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tokio::sync::OwnedMutexGuard;

use capacity::{GangDemand, NeverKind, Resources};
use chrono::{DateTime, Utc};
use jobs::{DeadReason, JobId, Priority};
use queues::store::{PendingJob, Submitted};

use crate::context::Context;
use crate::estimate::live;
use crate::footprint::Footprint;
use crate::kube_apps::Observer;
use crate::ordering::{self, Candidate, Decision, Policy};
use crate::preempt::{self, Blocked, Hold, PREEMPTING};
use crate::room::ClusterRoom;
use crate::sizes::Size;
use crate::{Error, Result};

mod create;
mod marks;
use create::{admit, confirm, create_at};
use marks::{show_waiting, wait, write_marks};

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
struct SizedJob<'a> {
    /// Borrowed from the round's heads (kept across rounds: not copied for each round).
    pending: &'a PendingJob,
    footprint: Arc<Footprint>,
    gang: Arc<GangDemand>,
}

/// Runs one admission round at `now`. `observer` (the tracker's watch caches) shows the
/// running applications preemption may choose from; without it nobody is preempted.
pub async fn round(
    ctx: &Context,
    observer: Option<&Observer>,
    now: DateTime<Utc>,
) -> Result<RoundReport> {
    let deciding = ctx.deciding.clone().lock_owned().await;
    round_deciding(ctx, observer, now, deciding).await
}

/// [`round`] for a caller that already holds `ctx.deciding` (the daemon takes it before it
/// reads the clock, which a round waiting for its turn would otherwise read early).
pub async fn round_deciding(
    ctx: &Context,
    observer: Option<&Observer>,
    now: DateTime<Utc>,
    deciding: OwnedMutexGuard<()>,
) -> Result<RoundReport> {
    let started = Instant::now();
    let mut report = RoundReport::default();
    // Taken before the heads: a job recorded meanwhile may still be among them.
    let flying = ctx.in_flight.snapshot();
    let pending = ctx
        .store
        .pending_heads_cached(ctx.config.heads_per_queue, &ctx.heads, || {
            ctx.sizes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .known_jobs()
        })
        .await?
        .heads;
    let still_pending: HashMap<JobId, u32> =
        pending.iter().map(|p| (p.job.id, p.attempt)).collect();
    for key in ctx.holds.retain_pending(&still_pending) {
        ctx.checker.release(&key);
    }
    if pending.is_empty() {
        ctx.metrics.set_waiting([]);
        ctx.metrics.holds.set(0);
        return Ok(report);
    }
    let priorities = ctx.priority_values().await;

    let mut sized: HashMap<JobId, SizedJob> = HashMap::with_capacity(pending.len());
    let mut candidates = Vec::new();
    let mut held: Vec<(JobId, Hold)> = Vec::new();
    let sizes = ctx
        .sizes
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .of_all(&pending, &ctx.catalog, &priorities);
    for (p, size) in pending.iter().zip(sizes) {
        if flying.contains_key(&p.job.id) {
            continue;
        }
        match size {
            Ok(Size {
                footprint,
                gang,
                shape,
                ..
            }) => {
                if let Some(hold) = ctx.holds.get(p.job.id, p.attempt, now) {
                    held.push((p.job.id, hold));
                } else {
                    // A job still pending holds no promise: one left by an admission that
                    // never recorded (a submitter stopped between reserve and record, its
                    // checker kept) would otherwise block the job itself until it lapsed.
                    ctx.checker.release(&gang.key);
                    candidates.push(Candidate {
                        id: p.job.id,
                        namespace: p.job.namespace.clone(),
                        priority: p.job.priority,
                        rank: p.position,
                        enqueued_at: p.enqueued_at,
                        gang: gang.clone(),
                        shape,
                    });
                }
                sized.insert(
                    p.job.id,
                    SizedJob {
                        pending: p,
                        footprint,
                        gang,
                    },
                );
            }
            Err(e) => {
                dead_letter(ctx, p, DeadReason::Invalid, &e.to_string(), &mut report).await;
            }
        }
    }

    let mut marks = Vec::new();
    // Preemptors first, each alone with the room held for it: its hold comes off the ledger
    // for its own confirmation and goes back unless it was admitted.
    let held_ids: Vec<JobId> = held.iter().map(|(id, _)| *id).collect();
    for (id, hold) in held {
        let Some(s) = sized.get(&id) else { continue };
        ctx.checker.release(&s.gang.key);
        for outcome in record(ctx, vec![admit(ctx, s).await]).await {
            match outcome {
                Ok(Admitted::Yes) => {
                    ctx.holds.remove(id);
                    report.admitted.push(id);
                }
                Ok(Admitted::Dead) => {
                    ctx.holds.remove(id);
                    report.dead.push(id);
                }
                outcome => {
                    ctx.checker.reserve(&s.gang, &hold.placement);
                    if let Err(e) = outcome {
                        report.errors += 1;
                        ctx.metrics.error("admission", e.metric_label());
                        tracing::warn!(job = %id, error = %e, "admission of a preemptor failed; retrying next round");
                    }
                    wait(
                        &mut marks,
                        s,
                        PREEMPTING,
                        hold.message(),
                        s.pending.position,
                    );
                }
            }
        }
    }

    let view = ctx.checker.view()?;
    let mut usage: BTreeMap<String, Resources> = ctx
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
    // Admissions still in flight count as they will once recorded (one recorded since the
    // snapshot counts twice in this round: its namespace looks a little busier, never less).
    for (namespace, total) in flying.values() {
        let used = usage.entry(namespace.clone()).or_default();
        *used = used.saturating_add(total);
    }
    let entitlements = ordering::entitlements(&ctx.catalog, &view);
    let policy = Policy {
        promote_after: ctx.config.promote_after.0,
        max_admissions: ctx.config.max_admissions_per_round,
        backfill: ctx.config.backfill,
        reservations: ctx.config.reservations,
    };
    // Start estimates replay this round's own candidates (every few seconds, not every round).
    let estimate_input = ctx.estimated.due(ctx.config.estimate_every.0).then(|| {
        candidates
            .iter()
            .filter_map(|c| {
                let s = sized.get(&c.id)?;
                Some(live::Named {
                    candidate: c.clone(),
                    name: s.pending.job.name.clone(),
                })
            })
            .collect::<Vec<_>>()
    });
    let decisions = {
        let mut room = ClusterRoom::new(&view);
        let decisions =
            ordering::decide(now, candidates, &usage, &entitlements, &policy, &mut room);
        ctx.metrics
            .holds
            .set(i64::try_from(room.holders()).unwrap_or(i64::MAX));
        decisions
    };

    let promote = chrono::Duration::from_std(policy.promote_after).unwrap_or(chrono::Duration::MAX);
    let mut blocked = Vec::new();
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
                    let job = &s.pending.job;
                    if job.priority == Priority::High || now - s.pending.enqueued_at >= promote {
                        blocked.push(Blocked {
                            job: id,
                            attempt: s.pending.attempt,
                            level: Priority::High,
                            priority: job.priority,
                            enqueued_at: s.pending.enqueued_at,
                            gang: &s.gang,
                        });
                    }
                    wait(
                        &mut marks,
                        s,
                        reason.kind.code(),
                        reason.message,
                        u64::from(position),
                    );
                }
            }
            Decision::Never { id, reason } => {
                let Some(s) = sized.get(&id) else { continue };
                let dead = if matches!(reason.kind, NeverKind::Invalid { .. }) {
                    DeadReason::Invalid
                } else {
                    DeadReason::NeverFits
                };
                dead_letter(ctx, s.pending, dead, &reason.message, &mut report).await;
            }
        }
    }

    // Preemption (below) still changes this round's waits: with it, the round keeps its turn
    // to the end and writes them all then.
    let preempting = observer.is_some() && ctx.config.preemption.enabled;
    // Otherwise the turn goes on once both the waits are written (at the same time as the
    // creates) and the last admission is confirmed.
    let (kept, hand_on) = if preempting {
        (Some(deciding), None)
    } else {
        (None, Some(Arc::new(deciding)))
    };
    let written = if preempting { 0 } else { marks.len() };
    let early_marks = {
        let (turn, marks) = (hand_on.clone(), &marks[..written]);
        let sized = &sized;
        async move {
            // No turn to hand on: preemption, and the marks wait for the end.
            let Some(turn) = turn else { return Ok(()) };
            show_waiting(ctx, sized, marks);
            let written = write_marks(ctx, sized, marks).await;
            drop(turn);
            written
        }
    };
    let flight = ctx.in_flight.enter(admits.iter().map(|s| {
        (
            s.pending.job.id,
            s.pending.job.namespace.clone(),
            s.gang.total(),
        )
    }));
    // The outbox relay gives way while this round creates (`queues::relay::yielding`).
    let admitting = (!admits.is_empty()).then(|| ctx.store.admissions().start());
    let (marked, outcomes) = futures::join!(early_marks, admit_all(ctx, &admits, hand_on));
    drop(admitting);
    marked?;
    for (s, outcome) in admits.into_iter().zip(outcomes) {
        let id = s.pending.job.id;
        match outcome {
            Ok(Admitted::Yes) => report.admitted.push(id),
            Ok(Admitted::Wait(code, message)) => {
                wait(&mut marks, s, &code, message, s.pending.position);
            }
            Ok(Admitted::Dead) => report.dead.push(id),
            Err(e) => {
                report.errors += 1;
                ctx.metrics.error("admission", e.metric_label());
                tracing::warn!(job = %id, namespace = %s.pending.job.namespace, error = %e, "admission failed; retrying next round");
            }
        }
    }
    if let Some(observer) = observer.filter(|_| preempting) {
        match preempt::preempt(ctx, observer, now, &blocked, &usage, &entitlements).await {
            Ok(started) => {
                for (id, message) in started {
                    let Some(mark) = marks.iter_mut().find(|m| m.job == id) else {
                        continue;
                    };
                    mark.code = PREEMPTING.into();
                    mark.message = message;
                }
            }
            Err(e) => {
                report.errors += 1;
                ctx.metrics.error("admission", e.metric_label());
                tracing::warn!(error = %e, "preemption failed; trying again next round");
            }
        }
    }
    report.waiting = marks.len();
    // Shown already when written before the turn went on, unless admissions added some.
    if preempting || marks.len() > written {
        show_waiting(ctx, &sized, &marks);
    }
    write_marks(ctx, &sized, &marks[written..]).await?;
    // Recorded: out of flight before the turn goes on (if this round still has it).
    drop(flight);
    drop(kept);
    if let Some(waiting) = estimate_input {
        let input = live::Input {
            view: view.clone(),
            waiting,
            held: held_ids,
            usage: usage.clone(),
            entitlements: entitlements.clone(),
            policy: policy.clone(),
        };
        live::spawn(ctx, observer, now, input);
    }
    ctx.metrics.rounds.inc();
    ctx.metrics
        .round_seconds
        .observe(started.elapsed().as_secs_f64());
    Ok(report)
}

/// What [`admit`] did with a job.
enum Admission {
    /// Its application is created (or adopted), to be recorded by [`record`].
    Created(Box<Submitted>),
    Wait(String, String),
    Dead,
}

/// How a job's admission ended, once recorded.
enum Admitted {
    Yes,
    Wait(String, String),
    Dead,
}

/// Admissions of one round whose creates run at the same time (the end-to-end bench gives
/// its plain client the same limit).
pub const ADMISSIONS_IN_FLIGHT: usize = 16;
/// Created applications recorded in one statement, at most.
const RECORD_BATCH: usize = 256;
/// How long the recorder waits for more finished creates before writing: a statement has a
/// fixed cost (plan, locks, commit), and under load these few milliseconds make its batches
/// several times larger (the end-to-end bench: PostgreSQL's CPU down about 15 %). The wait
/// ends as soon as the last create of the round is in, so a round's end is not delayed.
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(4);

/// Admits `admits` in their decided order: each capacity confirmation and reservation in
/// turn (each sees the reservations before it), the creates — which wait on the API server —
/// [`ADMISSIONS_IN_FLIGHT`] at a time, started in decided order and finished in any, and the
/// created ones recorded while more creates run: one statement at a time, each taking every
/// creation finished meanwhile and within [`RECORD_LINGER`] (so batches grow with the rate,
/// and a create never waits for a record). Outcomes in the order of `admits`.
///
/// Confirmations run ahead of the creates instead of one create slot at a time: `hand_on`,
/// the round's turn to decide, is given up once the last admission is confirmed, so with a
/// strategy that confirms on its own view (the snapshot) the next round decides at once over
/// the jobs stored meanwhile and its creates join these, rather than waiting until all but
/// the last few of this round's creates are done.
async fn admit_all(
    ctx: &Context,
    admits: &[&SizedJob<'_>],
    hand_on: Option<Arc<OwnedMutexGuard<()>>>,
) -> Vec<Result<Admitted>> {
    let (created, mut finished) = futures::channel::mpsc::unbounded();
    // Plain loops, not stream combinators: closures over `ctx` in a stream would not be `Send`
    // for every lifetime, which the daemon's spawned loop needs.
    let create = async move {
        let mut in_flight = futures::stream::FuturesUnordered::new();
        // Confirmed, their create not started yet (all slots taken), in decided order.
        let mut confirmed = std::collections::VecDeque::new();
        let start = |in_flight: &mut futures::stream::FuturesUnordered<_>,
                     confirmed: &mut std::collections::VecDeque<_>| {
            while in_flight.len() < ADMISSIONS_IN_FLIGHT {
                let Some((i, s, verdict)) = confirmed.pop_front() else {
                    break;
                };
                in_flight.push(create_at(ctx, i, s, verdict));
            }
        };
        for (i, s) in admits.iter().copied().enumerate() {
            // A confirmation that waits on the API server (dry-run, placeholders) lets the
            // creates already started go on finishing meanwhile.
            let confirmation = confirm(ctx, s);
            tokio::pin!(confirmation);
            let verdict = loop {
                start(&mut in_flight, &mut confirmed);
                tokio::select! {
                    biased;
                    verdict = &mut confirmation => break verdict,
                    Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                        // The receiver lives until every sender is gone.
                        let _ = created.unbounded_send(done);
                    }
                }
            };
            confirmed.push_back((i, s, verdict));
        }
        drop(hand_on);
        loop {
            start(&mut in_flight, &mut confirmed);
            let Some(done) = in_flight.next().await else {
                break;
            };
            let _ = created.unbounded_send(done);
        }
    };
    let record = async {
        let mut outcomes: Vec<Option<Result<Admitted>>> = admits.iter().map(|_| None).collect();
        while let Some(first) = finished.next().await {
            let mut batch = vec![first];
            let linger = tokio::time::sleep(RECORD_LINGER);
            tokio::pin!(linger);
            while batch.len() < RECORD_BATCH {
                tokio::select! {
                    biased;
                    next = finished.next() => match next {
                        Some(done) => batch.push(done),
                        None => break,
                    },
                    () = &mut linger => break,
                }
            }
            let (at, admissions): (Vec<usize>, Vec<_>) = batch.into_iter().unzip();
            for (i, outcome) in at.into_iter().zip(record(ctx, admissions).await) {
                outcomes[i] = Some(outcome);
            }
        }
        outcomes
    };
    let ((), outcomes) = futures::join!(create, record);
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(Error::Store(queues::Error::Corrupt(
                    "an admission ended without an outcome".into(),
                )))
            })
        })
        .collect()
}

/// Records the created admissions of `chunk` in one batch.
async fn record(ctx: &Context, chunk: Vec<Result<Admission>>) -> Vec<Result<Admitted>> {
    let batch: Vec<Submitted> = chunk
        .iter()
        .filter_map(|o| match o {
            Ok(Admission::Created(s)) => Some(Submitted::clone(s)),
            _ => None,
        })
        .collect();
    let mut recorded = if batch.is_empty() {
        Vec::new()
    } else {
        match ctx.store.record_submitted(&batch).await {
            Ok(outcomes) => outcomes
                .into_iter()
                .map(|o| o.map_err(Error::from))
                .collect(),
            Err(e) => {
                let e = Arc::new(e);
                batch.iter().map(|_| Err(Error::Batch(e.clone()))).collect()
            }
        }
    }
    .into_iter();
    chunk
        .into_iter()
        .map(|o| match o? {
            Admission::Created(s) => {
                let outcome = recorded.next().unwrap_or_else(|| {
                    Err(Error::Store(queues::Error::Corrupt(
                        "the store answered fewer outcomes than admissions".into(),
                    )))
                });
                if outcome.is_ok() {
                    tracing::info!(job = %s.job, attempt = s.submission.attempt, app = %s.submission.spark_app_name, "submitted");
                }
                outcome.map(|()| Admitted::Yes)
            }
            Admission::Wait(code, message) => Ok(Admitted::Wait(code, message)),
            Admission::Dead => Ok(Admitted::Dead),
        })
        .collect()
}

async fn dead_letter(
    ctx: &Context,
    p: &PendingJob,
    reason: DeadReason,
    message: &str,
    report: &mut RoundReport,
) {
    match ctx
        .store
        .dead_letter(p.job.id, p.state, reason, message)
        .await
    {
        Ok(()) => {
            report.dead.push(p.job.id);
            tracing::info!(job = %p.job.id, namespace = %p.job.namespace, %reason, message, "dead-lettered");
        }
        Err(e) => {
            ctx.metrics.error("admission", e.metric_label());
            tracing::warn!(job = %p.job.id, error = %e, "cannot dead-letter; retrying next round");
        }
    }
}
