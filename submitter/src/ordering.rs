//! Who goes next: the admission order as a pure function of the pending heads, each
//! namespace's running usage and entitlement, and the room the cluster has.
//!
//! The rules (summarised in `docs/architecture.md`, "AMQP path, step by step", step 6):
//! 1. every high job (and every normal job older than the promotion age) is considered before
//!    any normal job;
//! 2. among namespaces at one level, the one using the smallest dominant share of its
//!    entitlement goes first, ties to the oldest head; within a namespace and level, FIFO;
//! 3. a job that does not fit keeps its place in the order, and the longest-waiting such jobs of
//!    the most urgent level (at most [`Policy::reservations`]) have the [`Room`] set aside what
//!    they will need, so jobs behind them are admitted only into capacity those reservations do
//!    not claim (backfill that never delays them). Reservations go by age, not by the fair-share
//!    order, so the same jobs keep them from round to round and the room they accumulate is not
//!    handed to another job half-drained; the cap keeps idle held room small (every waiting
//!    job holding room is strict order in disguise: the cluster idles while work that fits
//!    waits);
//! 4. a job that can never fit is not waited for.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use capacity::{ClusterView, GangDemand, NeverReason, Placement, Resources, Verdict, WaitReason};
use chrono::{DateTime, Utc};
use jobs::{Catalog, JobId, Priority};

use crate::room::ShapeId;

/// A pending job as the decision sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The job.
    pub id: JobId,
    /// Its namespace.
    pub namespace: String,
    /// Its queue level.
    pub priority: Priority,
    /// Its place in its (namespace, priority) queue, 1 = head (FIFO key).
    pub rank: u64,
    /// When it entered the orchestrator: the promotion age and the tie-break between
    /// namespaces' heads.
    pub enqueued_at: DateTime<Utc>,
    /// What it needs to run.
    pub gang: Arc<GangDemand>,
    /// `gang`'s shape ([`ShapeId::of`]).
    pub shape: ShapeId,
}

/// Knobs of the decision.
#[derive(Debug, Clone)]
pub struct Policy {
    /// A normal job waiting at least this long is treated as high (anti-starvation).
    pub promote_after: Duration,
    /// Most admissions in one round (bounds API writes per round).
    pub max_admissions: usize,
    /// Whether jobs ordered after a blocked one may use capacity it cannot (rule 3). `false`
    /// is strict head-of-line order: the first job that must wait blocks every job after it
    /// (a baseline for measuring what backfill buys).
    pub backfill: bool,
    /// Most waiting jobs that set room aside in a round (rule 3).
    pub reservations: usize,
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Submit it now, on this placement.
    Admit {
        /// The job.
        id: JobId,
        /// Where its pods go.
        placement: Placement,
    },
    /// Not now.
    Wait {
        /// The job.
        id: JobId,
        /// Why (the "why pending" shown to users).
        reason: WaitReason,
        /// 1-based position in this round's order.
        position: u32,
    },
    /// Never: dead-letter it.
    Never {
        /// The job.
        id: JobId,
        /// Why.
        reason: NeverReason,
    },
}

/// What the cluster can hold, as the round consumes it. Implementations take the room of
/// admitted gangs and hold room for blocked ones.
///
/// Each takes the gang's [`ShapeId`] too: gangs of one shape get the same answers while the
/// room is unchanged.
pub trait Room {
    /// The verdict for the gang now, outside every hold; on `Fits` its room is taken.
    fn admit(&mut self, gang: &GangDemand, shape: ShapeId) -> Verdict;
    /// The verdict [`Room::admit`] would give now, taking nothing.
    fn probe(&mut self, gang: &GangDemand, shape: ShapeId) -> Verdict;
    /// Sets aside the room a blocked gang is waiting for, so later admissions only backfill
    /// capacity it cannot use.
    fn hold(&mut self, gang: &GangDemand, shape: ShapeId);
}

/// A namespace's dominant share of its entitlement: `max(cpu used / cpu entitled, memory used /
/// memory entitled)`. An entitlement of zero in a dimension it uses is an infinite share.
pub fn dominant_share(used: &Resources, entitled: &Resources) -> f64 {
    let share = |u: u64, e: u64| match (u, e) {
        (0, _) => 0.0,
        (_, 0) => f64::INFINITY,
        (u, e) => u as f64 / e as f64,
    };
    share(used.cpu_millis, entitled.cpu_millis).max(share(used.memory_bytes, entitled.memory_bytes))
}

/// Orders the candidates and decides each, consuming the room as it admits.
pub fn decide(
    now: DateTime<Utc>,
    candidates: Vec<Candidate>,
    usage: &BTreeMap<String, Resources>,
    entitlements: &BTreeMap<String, Resources>,
    policy: &Policy,
    room: &mut impl Room,
) -> Vec<Decision> {
    let promote = chrono::Duration::from_std(policy.promote_after).unwrap_or(chrono::Duration::MAX);
    let level = |c: &Candidate| {
        if c.priority == Priority::High || now - c.enqueued_at >= promote {
            Priority::High
        } else {
            Priority::Normal
        }
    };

    // Per level, per namespace, FIFO.
    let mut queues: BTreeMap<(Priority, String), VecDeque<Candidate>> = BTreeMap::new();
    for c in candidates {
        queues
            .entry((level(&c), c.namespace.clone()))
            .or_default()
            .push_back(c);
    }
    for q in queues.values_mut() {
        q.make_contiguous()
            .sort_by_key(|c| (c.rank, c.enqueued_at, c.id));
    }

    if policy.backfill {
        reserve(&queues, policy, room);
    }

    let mut usage = usage.clone();
    let mut decisions = Vec::with_capacity(queues.values().map(VecDeque::len).sum());
    let mut admitted = 0usize;
    let mut position = 0u32;
    let mut blocked_by: Option<JobId> = None;
    for lvl in Priority::ALL {
        // Namespaces of this level by (share, oldest head); only the namespace just served
        // changes its share, so it alone is re-keyed.
        let key = |ns: &str, q: &VecDeque<Candidate>, usage: &BTreeMap<String, Resources>| {
            let share = dominant_share(
                &usage.get(ns).copied().unwrap_or_default(),
                &entitlements.get(ns).copied().unwrap_or_default(),
            );
            q.front().map(|c| {
                Reverse(Turn {
                    share,
                    head: (c.enqueued_at, c.id),
                    namespace: ns.to_owned(),
                })
            })
        };
        let mut turns: BinaryHeap<Reverse<Turn>> = queues
            .iter()
            .filter(|((l, _), _)| *l == lvl)
            .filter_map(|((_, ns), q)| key(ns, q, &usage))
            .collect();
        while let Some(Reverse(turn)) = turns.pop() {
            let queue_key = (lvl, turn.namespace);
            let Some(queue) = queues.get_mut(&queue_key) else {
                continue;
            };
            let Some(c) = queue.pop_front() else { continue };
            position += 1;
            if admitted >= policy.max_admissions {
                decisions.push(Decision::Wait {
                    id: c.id,
                    reason: round_full(policy.max_admissions),
                    position,
                });
                if let Some(next) = queues
                    .get(&queue_key)
                    .and_then(|q| key(&queue_key.1, q, &usage))
                {
                    turns.push(next);
                }
                continue;
            }
            if let Some(head) = blocked_by {
                decisions.push(Decision::Wait {
                    id: c.id,
                    reason: behind(head),
                    position,
                });
                if let Some(next) = queues
                    .get(&queue_key)
                    .and_then(|q| key(&queue_key.1, q, &usage))
                {
                    turns.push(next);
                }
                continue;
            }
            match room.admit(&c.gang, c.shape) {
                Verdict::Fits(placement) => {
                    let used = usage.entry(c.namespace.clone()).or_default();
                    *used = used.saturating_add(&c.gang.total());
                    admitted += 1;
                    decisions.push(Decision::Admit {
                        id: c.id,
                        placement,
                    });
                }
                Verdict::Wait(reason) => {
                    if !policy.backfill {
                        blocked_by = Some(c.id);
                        room.hold(&c.gang, c.shape);
                    }
                    // With backfill, the holders set their room aside before the round's first
                    // admission (`reserve`).
                    decisions.push(Decision::Wait {
                        id: c.id,
                        reason,
                        position,
                    });
                }
                Verdict::Never(reason) => {
                    // No longer a queue member: it takes no position.
                    position -= 1;
                    decisions.push(Decision::Never { id: c.id, reason });
                }
            }
            if let Some(next) = queues
                .get(&queue_key)
                .and_then(|q| key(&queue_key.1, q, &usage))
            {
                turns.push(next);
            }
        }
    }
    decisions
}

/// Rule 3's reservations, made before any admission of the round: walks the candidates by
/// (level, age) and has the room hold for each one that does not fit now, until
/// `policy.reservations` hold. Fitting jobs are only probed (the fair-share pass admits them);
/// the walk stops after `max_admissions + reservations` jobs, since beyond that the round
/// admits nobody anyway. Room only shrinks during a round, so a holder still waits when its
/// fair-share turn comes.
fn reserve(
    queues: &BTreeMap<(Priority, String), VecDeque<Candidate>>,
    policy: &Policy,
    room: &mut impl Room,
) {
    if policy.reservations == 0 {
        return;
    }
    let mut by_age: Vec<(Priority, &Candidate)> = queues
        .iter()
        .flat_map(|((level, _), q)| q.iter().map(move |c| (*level, c)))
        .collect();
    by_age.sort_by_key(|(level, c)| (*level, c.enqueued_at, c.id));
    let budget = policy.max_admissions.saturating_add(policy.reservations);
    let mut holders = 0;
    for (_, c) in by_age.into_iter().take(budget) {
        if let Verdict::Wait(_) = room.probe(&c.gang, c.shape) {
            room.hold(&c.gang, c.shape);
            holders += 1;
            if holders == policy.reservations {
                return;
            }
        }
    }
}

/// A namespace's turn: smallest dominant share first, then the oldest head.
#[derive(Debug, PartialEq)]
struct Turn {
    share: f64,
    head: (DateTime<Utc>, JobId),
    namespace: String,
}

impl Eq for Turn {}

impl PartialOrd for Turn {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Turn {
    fn cmp(&self, other: &Self) -> Ordering {
        self.share
            .total_cmp(&other.share)
            .then_with(|| self.head.cmp(&other.head))
            .then_with(|| self.namespace.cmp(&other.namespace))
    }
}

fn behind(head: JobId) -> WaitReason {
    WaitReason {
        kind: capacity::WaitKind::Reserved {
            holder: head.to_string(),
        },
        message: format!(
            "waiting behind job {head}, which does not fit yet (backfill is off: no job \
             overtakes a blocked one)"
        ),
    }
}

fn round_full(max: usize) -> WaitReason {
    WaitReason {
        kind: capacity::WaitKind::NotConfirmed,
        message: format!(
            "waiting for the next admission round ({max} jobs are admitted per round)"
        ),
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

#[cfg(test)]
#[path = "ordering_tests.rs"]
mod tests;
