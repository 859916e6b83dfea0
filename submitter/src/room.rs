//! The real [`Room`]: the capacity checker's view of the cluster, consumed gang by gang with
//! capacity's best-fit packing. A waiting gang holds the room it is waiting for
//! (`WorkingSet::hold`), so gangs ordered after it only backfill what it cannot use; their
//! wait reasons then name the holder.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{LazyLock, Mutex, PoisonError};

use capacity::decide::{QuotaOutcome, check_quota};
use capacity::{
    ClusterView, GangDemand, Resources, Toleration, Verdict, WaitKind, WaitReason, WorkingSet,
};

use crate::ordering::Room;

/// The pods of a gang as packing sees them (requests, selector, tolerations).
type Shape = Vec<(Resources, BTreeMap<String, String>, Vec<Toleration>)>;

/// A gang's shape, interned: two gangs have the same id exactly when packing sees the same
/// pods. A round asks about every waiting job, and thousands of jobs share a few shapes;
/// hashing and comparing their pods there was a sixth of a steady round, so a job's shape is
/// interned once, when it is sized, and rounds compare ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShapeId(u64);

/// The process's interned shapes. Past [`MAX_SHAPES`] it starts a new generation: ids already
/// handed out stay unique (the generation is part of the id), an old and a new id of one shape
/// only miss each other's cached verdicts.
struct Shapes {
    generation: u64,
    ids: HashMap<Shape, ShapeId>,
}

/// Distinct shapes remembered before a new generation (publishers choose shapes).
const MAX_SHAPES: usize = 1 << 16;

static SHAPES: LazyLock<Mutex<Shapes>> = LazyLock::new(|| {
    Mutex::new(Shapes {
        generation: 0,
        ids: HashMap::new(),
    })
});

impl ShapeId {
    /// The id of `gang`'s shape.
    pub fn of(gang: &GangDemand) -> ShapeId {
        let shape = shape(gang);
        let mut shapes = SHAPES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = shapes.ids.get(&shape) {
            return *id;
        }
        if shapes.ids.len() >= MAX_SHAPES {
            shapes.ids.clear();
            shapes.generation += 1;
        }
        let id = ShapeId((shapes.generation << 32) | shapes.ids.len() as u64);
        shapes.ids.insert(shape, id);
        id
    }
}

/// A decision round's room over one view of the cluster.
///
/// Room only shrinks during a round, so a shape that could not be packed cannot be packed
/// later in the same round, and a hold that found nothing free finds nothing again: both are
/// remembered, which keeps a round over thousands of waiting jobs cheap without changing any
/// decision.
pub struct ClusterRoom<'v> {
    ws: WorkingSet<'v>,
    /// Keys of the gangs holding room this round, in order.
    holders: Vec<String>,
    unpackable: HashMap<ShapeId, WaitReason>,
    nothing_to_hold: HashSet<ShapeId>,
}

impl<'v> ClusterRoom<'v> {
    /// A room over a view (ledger reservations already counted in it).
    pub fn new(view: &'v ClusterView) -> Self {
        Self {
            ws: WorkingSet::new(view),
            holders: Vec::new(),
            unpackable: HashMap::new(),
            nothing_to_hold: HashSet::new(),
        }
    }

    /// Gangs holding room this round.
    pub fn holders(&self) -> usize {
        self.holders.len()
    }

    /// The working set's verdict, answering a shape known not to pack without packing it
    /// again; `take` says whether a fit takes its room.
    fn verdict(&mut self, gang: &GangDemand, shape: ShapeId, take: bool) -> Verdict {
        if let Some(reason) = self.unpackable.get(&shape) {
            // Quota is per namespace: its verdicts still come first (the gang's total only
            // where there is a quota: summing every waiting gang's pods was 6 % of a round).
            let Some(quota) = self.ws.quotas().get(&gang.namespace) else {
                return Verdict::Wait(reason.clone());
            };
            return match check_quota(&gang.namespace, Some(quota), &gang.total()) {
                QuotaOutcome::ExceedsHard(never) => Verdict::Never(never),
                QuotaOutcome::Short(wait) => Verdict::Wait(wait),
                QuotaOutcome::Room => Verdict::Wait(reason.clone()),
            };
        }
        let verdict = if take {
            self.ws.admit(gang)
        } else {
            self.ws.probe_admit(gang)
        };
        if let Verdict::Wait(reason) = &verdict
            && matches!(reason.kind, WaitKind::Insufficient { .. })
        {
            self.unpackable.insert(shape, reason.clone());
        }
        verdict
    }
}

fn shape(gang: &GangDemand) -> Shape {
    gang.pods
        .iter()
        .map(|p| (p.requests, p.node_selector.clone(), p.tolerations.clone()))
        .collect()
}

impl Room for ClusterRoom<'_> {
    fn admit(&mut self, gang: &GangDemand, shape: ShapeId) -> Verdict {
        match self.verdict(gang, shape, true) {
            Verdict::Wait(mut reason) if matches!(reason.kind, WaitKind::Insufficient { .. }) => {
                // The shortage may be room set aside for jobs ahead of it: say so.
                let mut others = self.holders.iter().filter(|k| **k != gang.key);
                if let Some(first) = others.next() {
                    let more = others.count();
                    let ahead = if more == 0 {
                        format!("job {first}")
                    } else {
                        format!("job {first} and {more} more")
                    };
                    reason.message = format!(
                        "{}; room is also held for {ahead} waiting longer",
                        reason.message
                    );
                }
                Verdict::Wait(reason)
            }
            other => other,
        }
    }

    fn probe(&mut self, gang: &GangDemand, shape: ShapeId) -> Verdict {
        self.verdict(gang, shape, false)
    }

    fn hold(&mut self, gang: &GangDemand, shape: ShapeId) {
        if self.nothing_to_hold.contains(&shape) {
            return;
        }
        if self.ws.hold(gang).is_empty() {
            self.nothing_to_hold.insert(shape);
        } else {
            self.holders.push(gang.key.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use capacity::testing::{gang, node};
    use capacity::{NeverKind, Resources};
    use chrono::{DateTime, Utc};
    use jobs::{JobId, Priority};
    use uuid::Uuid;

    use super::*;
    use crate::ordering::{Candidate, Decision, Policy, decide};

    const GI: u64 = 1 << 30;

    fn candidate(n: u128, ns: &str, priority: Priority, age: i64, g: GangDemand) -> Candidate {
        Candidate {
            id: JobId(Uuid::from_u128(n)),
            namespace: ns.into(),
            priority,
            rank: 0,
            enqueued_at: DateTime::<Utc>::from_timestamp(1_800_000_000 - age, 0).unwrap(),
            shape: ShapeId::of(&g),
            gang: g.into(),
        }
    }

    fn run(view: &ClusterView, jobs: Vec<Candidate>) -> Vec<Decision> {
        let entitled: BTreeMap<String, Resources> = ["a", "b"]
            .iter()
            .map(|ns| {
                (
                    (*ns).to_owned(),
                    Resources {
                        cpu_millis: 100_000,
                        memory_bytes: 400 * GI,
                        pods: 0,
                    },
                )
            })
            .collect();
        let policy = Policy {
            promote_after: Duration::from_secs(3600),
            max_admissions: 100,
            backfill: true,
            reservations: 100,
        };
        decide(
            DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            jobs,
            &BTreeMap::new(),
            &entitled,
            &policy,
            &mut ClusterRoom::new(view),
        )
    }

    fn view(nodes: usize, cpu: u64, mem: u64) -> ClusterView {
        ClusterView {
            nodes: (0..nodes)
                .map(|i| node(&format!("n{i}"), cpu, mem, None))
                .collect(),
            ..ClusterView::default()
        }
    }

    #[test]
    fn fragmentation_is_a_wait_not_a_fit() {
        // 4 nodes × 4 cpu = 16 cpu free in total, but no node holds a 6-cpu executor.
        let v = view(4, 4000, 16 * GI);
        let ds = run(
            &v,
            vec![candidate(
                1,
                "a",
                Priority::Normal,
                10,
                gang("j1", "a", (1000, GI), 1, (6000, GI)),
            )],
        );
        assert!(
            matches!(&ds[0], Decision::Never { reason, .. } if matches!(reason.kind, NeverKind::PodTooLarge { .. })),
            "{ds:?}"
        );
        let ds = run(
            &v,
            vec![candidate(
                1,
                "a",
                Priority::Normal,
                10,
                gang("j1", "a", (1000, GI), 4, (3500, GI)),
            )],
        );
        assert!(
            matches!(&ds[0], Decision::Wait { .. }),
            "13 cpu needed, 16 free, but 4 × 3.5 + 1 cannot be packed on 4 × 4: {ds:?}"
        );
    }

    #[test]
    fn two_gangs_that_fit_one_at_a_time_are_not_both_admitted() {
        let v = view(2, 4000, 16 * GI);
        let g = |k: &str| gang(k, "a", (1000, GI), 2, (2000, GI));
        let ds = run(
            &v,
            vec![
                candidate(1, "a", Priority::Normal, 20, g("j1")),
                candidate(2, "a", Priority::Normal, 10, g("j2")),
            ],
        );
        assert!(matches!(ds[0], Decision::Admit { .. }));
        assert!(
            matches!(ds[1], Decision::Wait { .. }),
            "the second gang must not spend the first one's room: {ds:?}"
        );
    }

    #[test]
    fn waiting_heads_hold_room_and_backfill_gets_the_rest() {
        // 3 nodes × 4 cpu. The high job needs 3 × 4 cpu: it waits (one node is busy) and holds
        // the free nodes; a small normal job behind it cannot take them.
        let mut v = view(3, 4000, 16 * GI);
        v.nodes[2] = capacity::testing::used(v.nodes[2].clone(), 4000, 0, 1);
        let big = gang("big", "a", (4000, GI), 2, (4000, GI));
        let small = gang("small", "b", (1000, GI), 0, (0, 0));
        let ds = run(
            &v,
            vec![
                candidate(1, "a", Priority::High, 10, big),
                candidate(2, "b", Priority::Normal, 20, small.clone()),
            ],
        );
        assert!(matches!(&ds[0], Decision::Wait { .. }));
        match &ds[1] {
            Decision::Wait { reason, .. } => assert!(
                reason.message.contains("held for job big"),
                "{}",
                reason.message
            ),
            other => panic!("backfill took held room: {other:?}"),
        }
        // Without the big job the small one runs: the hold, not the cluster, stopped it.
        let ds = run(&v, vec![candidate(2, "b", Priority::Normal, 20, small)]);
        assert!(matches!(ds[0], Decision::Admit { .. }));
    }

    #[test]
    fn a_shape_that_failed_keeps_failing_but_quota_verdicts_still_apply() {
        use capacity::QuotaView;
        let mut v = view(3, 4000, 16 * GI);
        let big = Resources {
            cpu_millis: 4000,
            memory_bytes: 16 * GI,
            pods: 100,
        };
        v.quotas.insert(
            "b".into(),
            QuotaView {
                hard: Resources {
                    cpu_millis: 2000,
                    ..big
                },
                used: Resources::default(),
            },
        );
        let mut room = ClusterRoom::new(&v);
        let mut admit = |g: GangDemand| room.admit(&g, ShapeId::of(&g));
        let g = |k: &str, ns: &str| gang(k, ns, (1000, GI), 4, (2500, GI));
        assert!(
            matches!(admit(g("first", "a")), Verdict::Wait(_)),
            "four 2.5-cpu executors on three 4-cpu nodes"
        );
        assert!(
            matches!(admit(g("second", "a")), Verdict::Wait(_)),
            "remembered"
        );
        assert!(
            matches!(admit(g("third", "b")), Verdict::Never(_)),
            "b's quota hard limit (2 cpu) is still checked"
        );
        assert!(
            matches!(
                admit(gang("small", "a", (1000, GI), 1, (1000, GI))),
                Verdict::Fits(_)
            ),
            "other shapes are packed"
        );
    }

    #[test]
    fn a_shape_id_is_the_same_exactly_when_packing_sees_the_same_pods() {
        use capacity::testing::constrained;
        let base = || gang("x", "a", (1000, GI), 2, (2000, GI));
        let tol = |key: &str| Toleration {
            key: Some(key.into()),
            exists: true,
            value: None,
            effect: None,
        };
        let mut priority = base();
        priority.pods[0].priority = 7;
        // (other gang, same id): key, namespace, labels and pod priority are not packing's.
        let cases: Vec<(GangDemand, bool)> = vec![
            (base(), true),
            (gang("other-key", "b", (1000, GI), 2, (2000, GI)), true),
            (priority, true),
            (gang("x", "a", (1001, GI), 2, (2000, GI)), false),
            (gang("x", "a", (1000, GI), 3, (2000, GI)), false),
            (gang("x", "a", (1000, GI), 2, (2000, 2 * GI)), false),
            (constrained(base(), &[("pool", "a")], &[]), false),
            (constrained(base(), &[("pool", "b")], &[]), false),
            (constrained(base(), &[], &[tol("gpu")]), false),
        ];
        let id = ShapeId::of(&base());
        for (i, (other, same)) in cases.iter().enumerate() {
            assert_eq!(ShapeId::of(other) == id, *same, "case {i}");
        }
        assert_ne!(
            ShapeId::of(&constrained(base(), &[("pool", "a")], &[])),
            ShapeId::of(&constrained(base(), &[("pool", "b")], &[])),
        );
    }
}
