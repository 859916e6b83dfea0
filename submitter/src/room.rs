//! The real [`Room`]: the capacity checker's view of the cluster, consumed gang by gang with
//! capacity's best-fit packing. A waiting gang holds the room it is waiting for
//! (`WorkingSet::hold`), so gangs ordered after it only backfill what it cannot use; their
//! wait reasons then name the holder.

use capacity::{ClusterView, GangDemand, Verdict, WaitKind, WorkingSet};

use crate::ordering::Room;

/// A decision round's room over one view of the cluster.
pub struct ClusterRoom<'v> {
    ws: WorkingSet<'v>,
    /// Keys of the gangs holding room this round, in order.
    holders: Vec<String>,
}

impl<'v> ClusterRoom<'v> {
    /// A room over a view (ledger reservations already counted in it).
    pub fn new(view: &'v ClusterView) -> Self {
        Self {
            ws: WorkingSet::new(view),
            holders: Vec::new(),
        }
    }
}

impl Room for ClusterRoom<'_> {
    fn admit(&mut self, gang: &GangDemand) -> Verdict {
        match self.ws.admit(gang) {
            Verdict::Wait(mut reason)
                if matches!(reason.kind, WaitKind::Insufficient { .. })
                    && !self.holders.is_empty() =>
            {
                // The shortage may be room set aside for jobs ahead of it: say so.
                let first = &self.holders[0];
                let others = self.holders.len() - 1;
                let ahead = if others == 0 {
                    format!("job {first}")
                } else {
                    format!("job {first} and {others} more")
                };
                reason.message = format!(
                    "{}; room is also held for {ahead} ahead in the queue",
                    reason.message
                );
                Verdict::Wait(reason)
            }
            other => other,
        }
    }

    fn hold(&mut self, gang: &GangDemand) {
        if !self.ws.hold(gang).is_empty() {
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
    use queues::{JobId, Priority};
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
            gang: g,
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
}
