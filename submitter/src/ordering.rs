//! Who goes next: the admission order as a pure function of the pending heads, each
//! namespace's running usage and entitlement, and the room the cluster has.
//!
//! The rules (DESIGN "Ordering and fairness"):
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
use std::time::Duration;

use capacity::{GangDemand, NeverReason, Placement, Resources, Verdict, WaitReason};
use chrono::{DateTime, Utc};
use jobs::{JobId, Priority};

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
    pub gang: GangDemand,
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
pub trait Room {
    /// The verdict for the gang now, outside every hold; on `Fits` its room is taken.
    fn admit(&mut self, gang: &GangDemand) -> Verdict;
    /// The verdict [`Room::admit`] would give now, taking nothing.
    fn probe(&mut self, gang: &GangDemand) -> Verdict;
    /// Sets aside the room a blocked gang is waiting for, so later admissions only backfill
    /// capacity it cannot use.
    fn hold(&mut self, gang: &GangDemand);
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
    let mut decisions = Vec::new();
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
            match room.admit(&c.gang) {
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
                        room.hold(&c.gang);
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
        if let Verdict::Wait(_) = room.probe(&c.gang) {
            room.hold(&c.gang);
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

#[cfg(test)]
mod tests {
    use capacity::{PodDemand, PodRole, WaitKind};
    use uuid::Uuid;

    use super::*;

    /// A one-dimensional cluster: `free` cpu now, `eventual` cpu once running work ends;
    /// reservations claim eventual cpu, admissions need both.
    struct Cpus {
        free: u64,
        eventual: u64,
        reserved: u64,
        largest_node: u64,
        /// Keys of the gangs that held room, in order.
        held: Vec<String>,
    }

    impl Room for Cpus {
        fn probe(&mut self, gang: &GangDemand) -> Verdict {
            let (free, eventual) = (self.free, self.eventual);
            let verdict = self.admit(gang);
            (self.free, self.eventual) = (free, eventual);
            verdict
        }

        fn admit(&mut self, gang: &GangDemand) -> Verdict {
            if gang
                .pods
                .iter()
                .any(|p| p.requests.cpu_millis > self.largest_node)
            {
                return Verdict::Never(NeverReason {
                    kind: capacity::NeverKind::PodTooLarge {
                        role: PodRole::Executor,
                        resource: capacity::Resource::Cpu,
                    },
                    message: "too large".into(),
                });
            }
            let need = gang.total().cpu_millis;
            let unreserved = self.eventual.saturating_sub(self.reserved);
            if need <= self.free && need <= unreserved {
                self.free -= need;
                self.eventual -= need;
                Verdict::Fits(Placement {
                    nodes: vec!["n".into(); gang.pods.len()],
                    scale_up: vec![],
                })
            } else {
                let kind = if need <= self.free {
                    WaitKind::Reserved {
                        holder: "head".into(),
                    }
                } else {
                    WaitKind::NotConfirmed
                };
                Verdict::Wait(WaitReason {
                    kind,
                    message: "no room".into(),
                })
            }
        }
        fn hold(&mut self, gang: &GangDemand) {
            let need = gang.total().cpu_millis;
            if need <= self.eventual.saturating_sub(self.reserved) {
                self.reserved += need;
                self.held.push(gang.key.clone());
            }
        }
    }

    fn cpus(free: u64) -> Cpus {
        Cpus {
            free,
            eventual: free,
            reserved: 0,
            largest_node: u64::MAX,
            held: Vec::new(),
        }
    }

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn job(n: u128, ns: &str, priority: Priority, age_secs: i64, cpu: u64) -> Candidate {
        Candidate {
            id: JobId(Uuid::from_u128(n)),
            namespace: ns.into(),
            priority,
            rank: 0,
            enqueued_at: t0() - chrono::Duration::seconds(age_secs),
            gang: GangDemand {
                key: n.to_string(),
                namespace: ns.into(),
                pod_labels: BTreeMap::new(),
                pods: vec![PodDemand {
                    role: PodRole::Driver,
                    requests: Resources {
                        cpu_millis: cpu,
                        memory_bytes: 0,
                        pods: 1,
                    },
                    node_selector: BTreeMap::new(),
                    tolerations: vec![],
                    priority: 0,
                }],
            },
        }
    }

    fn policy() -> Policy {
        Policy {
            promote_after: Duration::from_secs(3600),
            max_admissions: 100,
            backfill: true,
            reservations: 100,
        }
    }

    fn admitted(ds: &[Decision]) -> Vec<u128> {
        ds.iter()
            .filter_map(|d| {
                if let Decision::Admit { id, .. } = d {
                    Some(id.0.as_u128())
                } else {
                    None
                }
            })
            .collect()
    }

    fn entitled(pairs: &[(&str, u64)]) -> BTreeMap<String, Resources> {
        pairs
            .iter()
            .map(|(ns, cpu)| {
                (
                    (*ns).to_owned(),
                    Resources {
                        cpu_millis: *cpu,
                        memory_bytes: 1,
                        pods: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn high_before_normal_across_namespaces() {
        let jobs = vec![
            job(1, "a", Priority::Normal, 100, 1000),
            job(2, "b", Priority::High, 10, 1000),
        ];
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut cpus(1000),
        );
        assert_eq!(
            admitted(&ds),
            [2],
            "the younger high job wins the only room"
        );
        assert!(matches!(ds[1], Decision::Wait { position: 2, .. }));
    }

    #[test]
    fn fifo_within_a_namespace_and_level() {
        let jobs = vec![
            job(3, "a", Priority::Normal, 10, 100),
            job(1, "a", Priority::Normal, 30, 100),
            job(2, "a", Priority::Normal, 20, 100),
        ];
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1)]),
            &policy(),
            &mut cpus(10_000),
        );
        assert_eq!(admitted(&ds), [1, 2, 3]);
    }

    #[test]
    fn smallest_dominant_share_goes_first() {
        // a already uses half its entitlement, b nothing: b's younger head goes first, then
        // admissions alternate as shares even out.
        let usage = BTreeMap::from([(
            "a".to_owned(),
            Resources {
                cpu_millis: 2000,
                memory_bytes: 0,
                pods: 0,
            },
        )]);
        let jobs = vec![
            job(1, "a", Priority::Normal, 50, 1000),
            job(2, "a", Priority::Normal, 40, 1000),
            job(3, "b", Priority::Normal, 10, 1000),
            job(4, "b", Priority::Normal, 5, 1000),
            job(5, "b", Priority::Normal, 1, 1000),
        ];
        let ds = decide(
            t0(),
            jobs,
            &usage,
            &entitled(&[("a", 4000), ("b", 4000)]),
            &policy(),
            &mut cpus(10_000),
        );
        assert_eq!(admitted(&ds), [3, 4, 1, 5, 2]);
    }

    #[test]
    fn weights_scale_shares() {
        // b is entitled to twice a's cpu: it gets two admissions for each of a's.
        let jobs: Vec<Candidate> = (0..6)
            .map(|i| job(10 + i, "a", Priority::Normal, 100 - i as i64, 1000))
            .chain((0..6).map(|i| job(20 + i, "b", Priority::Normal, 100 - i as i64, 1000)))
            .collect();
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 3000), ("b", 6000)]),
            &policy(),
            &mut cpus(6000),
        );
        let ids = admitted(&ds);
        assert_eq!(ids.iter().filter(|i| **i < 20).count(), 2, "{ids:?}");
        assert_eq!(ids.iter().filter(|i| **i >= 20).count(), 4, "{ids:?}");
    }

    #[test]
    fn ties_go_to_the_oldest_head() {
        let jobs = vec![
            job(1, "a", Priority::Normal, 10, 1000),
            job(2, "b", Priority::Normal, 20, 1000),
        ];
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut cpus(1000),
        );
        assert_eq!(admitted(&ds), [2]);
    }

    #[test]
    fn a_blocked_head_keeps_its_place_and_backfill_cannot_take_its_room() {
        // 3 cpu free and 4 in all: the head (4) waits and reserves all 4; the small jobs behind
        // it would fit in the free 3 but that is room the head needs.
        let jobs = vec![
            job(1, "a", Priority::High, 30, 4000),
            job(2, "a", Priority::High, 20, 1000),
            job(3, "b", Priority::Normal, 10, 1000),
        ];
        let mut room = Cpus {
            free: 3000,
            eventual: 4000,
            reserved: 0,
            largest_node: u64::MAX,
            held: Vec::new(),
        };
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut room,
        );
        assert!(admitted(&ds).is_empty(), "{ds:?}");
        assert!(matches!(&ds[0], Decision::Wait { position: 1, .. }));
        assert!(matches!(
            &ds[1],
            Decision::Wait {
                reason: WaitReason {
                    kind: WaitKind::Reserved { .. },
                    ..
                },
                position: 2,
                ..
            }
        ));
        assert!(matches!(&ds[2], Decision::Wait { position: 3, .. }));
    }

    #[test]
    fn backfill_uses_what_the_head_cannot() {
        // 16 cpu in all, 6 free now. The head needs 12: it waits and claims 12 of the 16, so
        // 4 remain for backfill: the first 3-cpu job runs now, the second would delay the head.
        let jobs = vec![
            job(1, "a", Priority::Normal, 30, 12_000),
            job(2, "a", Priority::Normal, 20, 3000),
            job(3, "b", Priority::Normal, 10, 3000),
        ];
        let mut room = Cpus {
            free: 6000,
            eventual: 16_000,
            reserved: 0,
            largest_node: u64::MAX,
            held: Vec::new(),
        };
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut room,
        );
        assert_eq!(
            admitted(&ds),
            [2],
            "the oldest job behind the head backfills into the 4 cpu it cannot use"
        );
        assert!(ds.iter().any(|d| matches!(d, Decision::Wait { id, reason: WaitReason { kind: WaitKind::Reserved { .. }, .. }, .. } if id.0.as_u128() == 3)));
    }

    #[test]
    fn old_normal_jobs_are_promoted() {
        let jobs = vec![
            job(1, "a", Priority::Normal, 7200, 1000),
            job(2, "b", Priority::High, 10, 1000),
        ];
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut cpus(1000),
        );
        assert_eq!(
            admitted(&ds),
            [1],
            "a two-hour-old normal job competes as high and is older"
        );
    }

    #[test]
    fn never_fits_is_decided_not_waited_for() {
        let jobs = vec![
            job(1, "a", Priority::High, 30, 64_000),
            job(2, "a", Priority::High, 20, 1000),
        ];
        let mut room = Cpus {
            free: 8000,
            eventual: 8000,
            reserved: 0,
            largest_node: 16_000,
            held: Vec::new(),
        };
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1)]),
            &policy(),
            &mut room,
        );
        assert!(matches!(ds[0], Decision::Never { .. }));
        assert_eq!(
            admitted(&ds),
            [2],
            "an impossible head does not block the queue"
        );
    }

    #[test]
    fn admissions_per_round_are_bounded() {
        let jobs: Vec<Candidate> = (0..5)
            .map(|i| job(i, "a", Priority::Normal, 100 - i as i64, 10))
            .collect();
        let p = Policy {
            max_admissions: 2,
            ..policy()
        };
        let ds = decide(
            t0(),
            jobs,
            &BTreeMap::new(),
            &entitled(&[("a", 1)]),
            &p,
            &mut cpus(1_000_000),
        );
        assert_eq!(admitted(&ds), [0, 1]);
        assert_eq!(
            ds.iter()
                .filter(|d| matches!(d, Decision::Wait { .. }))
                .count(),
            3
        );
    }

    #[test]
    fn without_backfill_a_blocked_head_stops_every_job_behind_it() {
        // Job 1 (oldest) needs 800 of 500 free; job 2 (100) fits. With backfill it runs in
        // the room job 1 cannot use; without, it waits behind job 1 — in every namespace.
        let jobs = || {
            vec![
                job(1, "a", Priority::Normal, 30, 800),
                job(2, "a", Priority::Normal, 20, 100),
                job(3, "b", Priority::Normal, 10, 100),
            ]
        };
        let with = decide(
            t0(),
            jobs(),
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &policy(),
            &mut cpus(500),
        );
        assert_eq!(admitted(&with), [2, 3]);
        let strict = Policy {
            backfill: false,
            ..policy()
        };
        let without = decide(
            t0(),
            jobs(),
            &BTreeMap::new(),
            &entitled(&[("a", 1), ("b", 1)]),
            &strict,
            &mut cpus(500),
        );
        assert!(admitted(&without).is_empty(), "{without:?}");
        let behind: Vec<u32> = without
            .iter()
            .filter_map(|d| match d {
                Decision::Wait {
                    reason, position, ..
                } if matches!(&reason.kind, WaitKind::Reserved { holder } if *holder == JobId(Uuid::from_u128(1)).to_string()) => {
                    Some(*position)
                }
                _ => None,
            })
            .collect();
        assert_eq!(behind, [2, 3], "both later jobs name the blocked head");
    }

    #[test]
    fn reservations_are_capped_and_go_to_the_longest_waiting() {
        // 6 cpu free, 40 once running work ends. Three 12-cpu jobs cannot start; two 3-cpu jobs
        // could. With one reservation only the oldest big job (3) holds 12 of the 40 and both
        // small jobs start; with three, 36 are held and only one small job fits the rest.
        let jobs = || {
            vec![
                job(1, "a", Priority::Normal, 30, 12_000),
                job(2, "b", Priority::Normal, 40, 12_000),
                job(3, "c", Priority::Normal, 50, 12_000),
                job(4, "a", Priority::Normal, 20, 3000),
                job(5, "b", Priority::Normal, 10, 3000),
            ]
        };
        let entitled = entitled(&[("a", 1), ("b", 1), ("c", 1)]);
        let room = || Cpus {
            free: 6000,
            eventual: 40_000,
            reserved: 0,
            largest_node: u64::MAX,
            held: Vec::new(),
        };
        let run = |reservations: usize| {
            let mut r = room();
            let p = Policy {
                reservations,
                ..policy()
            };
            let ds = decide(t0(), jobs(), &BTreeMap::new(), &entitled, &p, &mut r);
            (admitted(&ds), r.held)
        };
        assert_eq!(run(1), (vec![4, 5], vec!["3".to_owned()]));
        assert_eq!(
            run(3),
            (
                vec![4],
                vec!["3".to_owned(), "2".to_owned(), "1".to_owned()]
            )
        );
        let (ids, held) = run(0);
        assert_eq!((ids, held.len()), (vec![4, 5], 0), "no reservations at all");
    }

    #[test]
    fn reservations_go_to_high_jobs_first_then_by_age_not_share() {
        // b's normal job is the oldest but a high job (younger) waits too: with one
        // reservation the high job holds. Without it, the oldest normal job holds even though
        // its namespace (b, busiest) comes last in the fair-share order.
        let usage = BTreeMap::from([(
            "b".to_owned(),
            Resources {
                cpu_millis: 8000,
                memory_bytes: 0,
                pods: 0,
            },
        )]);
        let entitled = entitled(&[("a", 8000), ("b", 8000)]);
        let one = Policy {
            reservations: 1,
            ..policy()
        };
        let fresh = || Cpus {
            eventual: 20_000,
            ..cpus(1000)
        };
        let mut room = fresh();
        decide(
            t0(),
            vec![
                job(1, "b", Priority::Normal, 90, 6000),
                job(2, "a", Priority::Normal, 30, 6000),
                job(3, "a", Priority::High, 10, 6000),
            ],
            &usage,
            &entitled,
            &one,
            &mut room,
        );
        assert_eq!(room.held, ["3"]);
        let mut room = fresh();
        decide(
            t0(),
            vec![
                job(1, "b", Priority::Normal, 90, 6000),
                job(2, "a", Priority::Normal, 30, 6000),
            ],
            &usage,
            &entitled,
            &one,
            &mut room,
        );
        assert_eq!(room.held, ["1"]);
    }

    #[test]
    fn dominant_share_math() {
        let r = |c, m| Resources {
            cpu_millis: c,
            memory_bytes: m,
            pods: 0,
        };
        assert_eq!(dominant_share(&r(0, 0), &r(0, 0)), 0.0);
        assert_eq!(dominant_share(&r(1000, 4), &r(4000, 8)), 0.5);
        assert_eq!(dominant_share(&r(1, 0), &r(0, 8)), f64::INFINITY);
    }
}
