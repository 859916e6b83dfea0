//! Baseline 2, the seed blog's MVP capacity check: "query Kubernetes for available CPU and
//! memory; if the cluster has enough for the driver + executors, submit". Free capacity is
//! summed over the whole cluster, so a gang "fits" when the sum covers it even if no node can
//! hold its executors (fragmentation) — which is how drivers end up running with executors
//! pending.
//!
//! It plugs into the real submitter as a [`CapacityChecker`]: [`pooled`] shows the submitter's
//! ordering round the cluster as one node holding the sum (so its packing is the sum check),
//! and [`sum_verdict`] answers `check`. To measure the sum rule alone, the MVP keeps the
//! snapshot strategy's reservation ledger (our addition: the blog's MVP had none, so it
//! would also double-spend room between polls); [`spread`] places the gang's reservation on
//! real nodes, most free first, without regard to fit.

use std::collections::BTreeMap;
use std::sync::Arc;

use capacity::snapshot::SnapshotChecker;
use capacity::{
    CapacityChecker, ClusterView, GangDemand, NodeView, Placement, PodRole, Resource, Resources,
    Verdict, WaitKind, WaitReason,
};

/// Name of the one node of a [`pooled`] view.
pub const POOLED_NODE: &str = "cluster-sum";

/// The MVP checker over a running snapshot strategy (its watch cache and ledger).
pub struct MvpChecker {
    snapshot: Arc<SnapshotChecker>,
}

impl MvpChecker {
    /// Wraps a snapshot checker whose watches are running.
    pub fn new(snapshot: Arc<SnapshotChecker>) -> Self {
        Self { snapshot }
    }
}

#[async_trait::async_trait]
impl CapacityChecker for MvpChecker {
    fn name(&self) -> &'static str {
        "mvp-sum"
    }

    fn view(&self) -> capacity::Result<Arc<ClusterView>> {
        Ok(Arc::new(pooled(&*self.snapshot.view()?)))
    }

    /// The seed's MVP only sums; it plans no nodes to pin to.
    fn binding_placements(&self) -> bool {
        false
    }

    async fn check(&self, demand: &GangDemand) -> capacity::Result<Verdict> {
        Ok(sum_verdict(&*self.snapshot.view()?, demand))
    }

    fn reserve(&self, demand: &GangDemand, placement: &Placement) {
        self.snapshot.reserve(demand, placement);
    }

    fn release(&self, key: &str) {
        self.snapshot.release(key);
    }
}

/// Allocatable and requested summed over every schedulable node.
pub fn totals(view: &ClusterView) -> (Resources, Resources) {
    view.nodes.iter().filter(|n| !n.unschedulable).fold(
        (Resources::default(), Resources::default()),
        |(a, r), n| {
            (
                a.saturating_add(&n.allocatable),
                r.saturating_add(&n.requested),
            )
        },
    )
}

/// The cluster as one node: allocatable and requested summed, labels every node shares, no
/// taints; quotas kept, autoscaling pools dropped.
pub fn pooled(view: &ClusterView) -> ClusterView {
    let (allocatable, requested) = totals(view);
    let mut labels: Option<BTreeMap<String, String>> = None;
    for n in view.nodes.iter().filter(|n| !n.unschedulable) {
        labels = Some(match labels {
            None => n.labels.clone(),
            Some(l) => l
                .into_iter()
                .filter(|(k, v)| n.labels.get(k) == Some(v))
                .collect(),
        });
    }
    ClusterView {
        nodes: vec![NodeView {
            name: POOLED_NODE.to_owned(),
            pool: None,
            labels: labels.unwrap_or_default(),
            taints: Vec::new(),
            unschedulable: false,
            allocatable,
            requested,
        }],
        quotas: view.quotas.clone(),
        pools: Vec::new(),
    }
}

/// Fits when the summed free cpu and memory cover the gang's total; the placement is
/// [`spread`]. Otherwise waits, naming the short resource.
pub fn sum_verdict(view: &ClusterView, gang: &GangDemand) -> Verdict {
    let (allocatable, requested) = totals(view);
    let free = allocatable.saturating_sub(&requested);
    let need = gang.total();
    let short_cpu = need.cpu_millis.saturating_sub(free.cpu_millis);
    let short_mem = need.memory_bytes.saturating_sub(free.memory_bytes);
    if short_cpu == 0 && short_mem == 0 {
        return Verdict::Fits(Placement {
            nodes: spread(view, gang),
            scale_up: Vec::new(),
        });
    }
    let resource = if short_cpu > 0 {
        Resource::Cpu
    } else {
        Resource::Memory
    };
    Verdict::Wait(WaitReason {
        kind: WaitKind::Insufficient {
            role: PodRole::Executor,
            resource,
            short_by: Resources {
                cpu_millis: short_cpu,
                memory_bytes: short_mem,
                pods: 0,
            },
            pool: None,
        },
        message: format!(
            "the cluster's summed free capacity ({} mcpu, {} MiB) does not cover the gang ({} \
             mcpu, {} MiB)",
            free.cpu_millis,
            free.memory_bytes >> 20,
            need.cpu_millis,
            need.memory_bytes >> 20
        ),
    })
}

/// A node per pod, each on the node with the most free cpu after the pods before it — fit
/// not checked (the MVP does not know where pods will land).
pub fn spread(view: &ClusterView, gang: &GangDemand) -> Vec<String> {
    let mut free: Vec<(i128, &str)> = view
        .nodes
        .iter()
        .filter(|n| !n.unschedulable)
        .map(|n| {
            (
                i128::from(n.allocatable.cpu_millis) - i128::from(n.requested.cpu_millis),
                n.name.as_str(),
            )
        })
        .collect();
    gang.pods
        .iter()
        .map(|p| {
            let Some(best) = free
                .iter_mut()
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            else {
                return POOLED_NODE.to_owned();
            };
            best.0 -= i128::from(p.requests.cpu_millis);
            best.1.to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use capacity::testing::{gang, node};

    use super::*;

    const GI: u64 = 1 << 30;

    fn two_half_full_nodes() -> ClusterView {
        // Two 16-cpu nodes with 10 cpu used each: 12 cpu free in total, 6 on each.
        let mut a = node("a", 16_000, 64 * GI, None);
        a.requested = Resources {
            cpu_millis: 10_000,
            memory_bytes: 40 * GI,
            pods: 3,
        };
        let mut b = a.clone();
        b.name = "b".into();
        ClusterView {
            nodes: vec![a, b],
            ..ClusterView::default()
        }
    }

    #[test]
    fn the_sum_says_fits_where_bin_packing_says_wait() {
        let v = two_half_full_nodes();
        // A 2-cpu driver and one 8-cpu executor: 10 cpu ≤ 12 free in sum, but no node has 8.
        let g = gang("j", "ns", (2000, 4 * GI), 1, (8000, 16 * GI));
        assert!(matches!(sum_verdict(&v, &g), Verdict::Fits(_)));
        assert!(matches!(capacity::decide(&v, &g), Verdict::Wait(_)));
        // The submitter's round sees the same through the pooled view.
        assert!(matches!(
            capacity::decide(&pooled(&v), &g),
            Verdict::Fits(_)
        ));
    }

    #[test]
    fn waits_when_the_sum_is_short_and_names_the_resource() {
        let v = two_half_full_nodes();
        let g = gang("j", "ns", (2000, 4 * GI), 2, (6000, 8 * GI));
        match sum_verdict(&v, &g) {
            Verdict::Wait(WaitReason {
                kind:
                    WaitKind::Insufficient {
                        resource, short_by, ..
                    },
                ..
            }) => {
                assert_eq!(resource, Resource::Cpu);
                assert_eq!(short_by.cpu_millis, 2000);
                assert_eq!(short_by.memory_bytes, 0);
            }
            other => panic!("{other:?}"),
        }
        let mem = gang("m", "ns", (1000, 30 * GI), 1, (1000, 30 * GI));
        assert!(matches!(
            sum_verdict(&v, &mem),
            Verdict::Wait(WaitReason {
                kind: WaitKind::Insufficient {
                    resource: Resource::Memory,
                    ..
                },
                ..
            })
        ));
    }

    #[test]
    fn pooled_view_sums_and_keeps_common_labels_only() {
        let mut v = two_half_full_nodes();
        v.nodes[0].labels.insert("zone".into(), "z1".into());
        v.nodes[1].labels.insert("zone".into(), "z2".into());
        v.nodes[0].labels.insert("pool".into(), "general".into());
        v.nodes[1].labels.insert("pool".into(), "general".into());
        let p = pooled(&v);
        assert_eq!(p.nodes.len(), 1);
        assert_eq!(p.nodes[0].allocatable.cpu_millis, 32_000);
        assert_eq!(p.nodes[0].requested.cpu_millis, 20_000);
        assert_eq!(
            p.nodes[0].labels.get("pool").map(String::as_str),
            Some("general")
        );
        assert!(!p.nodes[0].labels.contains_key("zone"));
    }

    #[test]
    fn cordoned_nodes_do_not_count() {
        let mut v = two_half_full_nodes();
        v.nodes[1].unschedulable = true;
        let g = gang("j", "ns", (2000, 4 * GI), 1, (3000, 4 * GI));
        assert!(matches!(sum_verdict(&v, &g), Verdict::Fits(_)));
        let g = gang("j", "ns", (2000, 4 * GI), 1, (5000, 4 * GI));
        assert!(matches!(sum_verdict(&v, &g), Verdict::Wait(_)));
    }

    #[test]
    fn spread_puts_each_pod_on_the_most_free_node() {
        let mut v = two_half_full_nodes();
        v.nodes[1].requested.cpu_millis = 4_000; // b: 12 free, a: 6 free
        let g = gang("j", "ns", (4000, GI), 2, (4000, GI));
        assert_eq!(spread(&v, &g), ["b", "b", "a"]);
    }
}
