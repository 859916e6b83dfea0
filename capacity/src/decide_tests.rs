//! Table-driven verdicts: never (shape, selector, quota) vs wait (quota room, capacity,
//! fragmentation, full pools) vs fits (now, or with a scale-up), and the user's sentences.

use std::collections::BTreeMap;

use super::*;
use crate::model::{PodRole, TaintEffect};
use crate::testing::{constrained, gang, gi, mi, node, pool, taint, toleration, used};
use crate::verdict::{Placement, ScaleUp};
use crate::view::{AutoscalePool, NodeView};

fn view(
    nodes: Vec<NodeView>,
    pools: Vec<AutoscalePool>,
    quotas: &[(&str, Resources, Resources)],
) -> ClusterView {
    let mut nodes = nodes;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let quotas: BTreeMap<String, QuotaView> = quotas
        .iter()
        .map(|(ns, hard, used)| {
            (
                (*ns).to_string(),
                QuotaView {
                    hard: *hard,
                    used: *used,
                },
            )
        })
        .collect();
    ClusterView {
        nodes,
        quotas,
        pools,
    }
}

fn res(cpu_millis: u64, memory_bytes: u64, pods: u64) -> Resources {
    Resources {
        cpu_millis,
        memory_bytes,
        pods,
    }
}

const UNLIMITED: u64 = u64::MAX;

/// The verdict's machine-readable code: `fits`, `fits+scale-up`, or the wait/never kind.
fn code(v: &Verdict) -> String {
    match v {
        Verdict::Fits(Placement { scale_up, .. }) if scale_up.is_empty() => "fits".into(),
        Verdict::Fits(_) => "fits+scale-up".into(),
        Verdict::Wait(w) => format!("wait:{}", w.kind.code()),
        Verdict::Never(n) => format!("never:{}", n.kind.code()),
    }
}

#[test]
fn verdict_table() {
    let general = || {
        vec![
            node("g1", 16_000, gi(64), Some("general")),
            node("g2", 16_000, gi(64), Some("general")),
        ]
    };
    let spot_tol = [toleration(
        Some("spot"),
        None,
        Some(TaintEffect::NoSchedule),
    )];
    let tainted_spot = |name: &str| {
        let mut n = node(name, 8000, gi(32), Some("spot"));
        n.taints
            .push(taint("spot", "true", TaintEffect::NoSchedule));
        n
    };
    let cases: Vec<(&str, ClusterView, GangDemand, &str)> = vec![
        (
            "fits now",
            view(general(), vec![], &[]),
            gang("g", "ns", (1000, gi(2)), 4, (4000, gi(8))),
            "fits",
        ),
        (
            "pod larger than every node",
            view(general(), vec![], &[]),
            gang("g", "ns", (1000, gi(2)), 1, (32_000, gi(8))),
            "never:pod-too-large",
        ),
        (
            "larger than every node and every pool shape",
            view(general(), vec![pool("big", 24_000, gi(96), 0, 4)], &[]),
            gang("g", "ns", (1000, gi(2)), 1, (32_000, gi(8))),
            "never:pod-too-large",
        ),
        (
            "larger than every node but a pool shape holds it",
            view(general(), vec![pool("big", 48_000, gi(192), 0, 4)], &[]),
            gang("g", "ns", (1000, gi(2)), 1, (32_000, gi(8))),
            "fits+scale-up",
        ),
        (
            "selector matches nothing",
            view(general(), vec![], &[]),
            constrained(
                gang("g", "ns", (1000, gi(2)), 1, (1000, gi(1))),
                &[("pool", "gpu")],
                &[],
            ),
            "never:no-matching-node",
        ),
        (
            "spot nodes exist but the pod does not tolerate them",
            view(vec![tainted_spot("s1")], vec![], &[]),
            constrained(
                gang("g", "ns", (1000, gi(2)), 0, (0, 0)),
                &[("pool", "spot")],
                &[],
            ),
            "never:no-matching-node",
        ),
        (
            "spot with toleration fits",
            view(vec![tainted_spot("s1")], vec![], &[]),
            constrained(
                gang("g", "ns", (1000, gi(2)), 1, (4000, gi(8))),
                &[("pool", "spot")],
                &spot_tol,
            ),
            "fits",
        ),
        (
            "busy cluster: wait, not never",
            view(
                vec![used(node("g1", 16_000, gi(64), None), 15_000, gi(60), 30)],
                vec![],
                &[],
            ),
            gang("g", "ns", (1000, gi(2)), 1, (8000, gi(8))),
            "wait:insufficient",
        ),
        (
            "cordoned big node: wait (it may come back), not never",
            view(
                vec![node("small", 2000, gi(8), None), {
                    let mut n = node("big", 32_000, gi(128), None);
                    n.unschedulable = true;
                    n
                }],
                vec![],
                &[],
            ),
            gang("g", "ns", (1000, gi(1)), 1, (16_000, gi(8))),
            "wait:insufficient",
        ),
        (
            "exceeds the quota hard limit: never",
            view(
                general(),
                vec![],
                &[("ns", res(8000, UNLIMITED, UNLIMITED), res(0, 0, 0))],
            ),
            gang("g", "ns", (1000, gi(2)), 4, (2000, gi(8))),
            "never:exceeds-quota",
        ),
        (
            "pods count over the quota hard limit: never",
            view(
                general(),
                vec![],
                &[("ns", res(UNLIMITED, UNLIMITED, 3), res(0, 0, 0))],
            ),
            gang("g", "ns", (100, gi(1)), 3, (100, gi(1))),
            "never:exceeds-quota",
        ),
        (
            "quota has no room now: wait",
            view(
                general(),
                vec![],
                &[("ns", res(16_000, UNLIMITED, UNLIMITED), res(10_000, 0, 5))],
            ),
            gang("g", "ns", (1000, gi(2)), 4, (2000, gi(8))),
            "wait:quota",
        ),
        (
            "quota of another namespace does not apply",
            view(general(), vec![], &[("other", res(1, 1, 1), res(0, 0, 0))]),
            gang("g", "ns", (1000, gi(2)), 1, (2000, gi(8))),
            "fits",
        ),
        (
            "full pool at max: wait",
            view(
                vec![used(
                    node("s1", 8000, gi(32), Some("spot")),
                    8000,
                    gi(32),
                    3,
                )],
                vec![pool("spot", 8000, gi(32), 1, 1)],
                &[],
            ),
            constrained(
                gang("g", "ns", (1000, gi(2)), 1, (2000, gi(4))),
                &[("pool", "spot")],
                &[],
            ),
            "wait:insufficient",
        ),
        (
            "full nodes, pool can grow: fits with scale-up",
            view(
                vec![used(
                    node("s1", 8000, gi(32), Some("spot")),
                    8000,
                    gi(32),
                    3,
                )],
                vec![pool("spot", 8000, gi(32), 1, 3)],
                &[],
            ),
            constrained(
                gang("g", "ns", (1000, gi(2)), 1, (2000, gi(4))),
                &[("pool", "spot")],
                &[],
            ),
            "fits+scale-up",
        ),
        (
            "each pod fits a node, the gang exceeds all nodes together: never",
            view(general(), vec![], &[]),
            gang("g", "ns", (1000, gi(2)), 4, (10_000, gi(8))),
            "never:exceeds-cluster",
        ),
        (
            "beyond today's nodes, but the pool's maximum holds it: not never",
            view(general(), vec![pool("general", 16_000, gi(64), 2, 4)], &[]),
            gang("g", "ns", (1000, gi(2)), 4, (10_000, gi(8))),
            "fits+scale-up",
        ),
        (
            "beyond the pool's maximum as well: never",
            view(general(), vec![pool("general", 16_000, gi(64), 2, 3)], &[]),
            gang("g", "ns", (1000, gi(2)), 5, (10_000, gi(8))),
            "never:exceeds-cluster",
        ),
        (
            "busy but not too big in aggregate: wait",
            view(
                vec![
                    used(node("g1", 16_000, gi(64), None), 8000, 0, 1),
                    used(node("g2", 16_000, gi(64), None), 8000, 0, 1),
                ],
                vec![],
                &[],
            ),
            gang("g", "ns", (1000, gi(2)), 3, (10_000, gi(8))),
            "wait:insufficient",
        ),
        (
            "spot executors exceed the spot nodes, though the cluster is big: never",
            view(
                {
                    let mut n = general();
                    n.push(tainted_spot("s1"));
                    n
                },
                vec![],
                &[],
            ),
            constrained(
                gang("g", "ns", (1000, gi(2)), 3, (4000, gi(8))),
                &[("pool", "spot")],
                &spot_tol,
            ),
            "never:exceeds-cluster",
        ),
        (
            "empty gang fits trivially",
            view(vec![], vec![], &[]),
            GangDemand {
                key: "g".into(),
                namespace: "ns".into(),
                pod_labels: BTreeMap::new(),
                pods: vec![],
            },
            "fits",
        ),
    ];
    for (name, v, g, want) in cases {
        let got = decide(&v, &g);
        assert_eq!(code(&got), want, "{name}: {got:?}");
    }
}

#[test]
fn aggregate_never_names_the_resource_and_the_excess() {
    let v = view(
        vec![
            node("g1", 16_000, gi(64), None),
            node("g2", 16_000, gi(64), None),
        ],
        vec![],
        &[],
    );
    let Verdict::Never(n) = decide(&v, &gang("g", "ns", (1000, gi(2)), 4, (10_000, gi(8)))) else {
        panic!("expected never")
    };
    assert!(
        n.message.contains("41 cpu") && n.message.contains("9 more") && n.message.contains("32"),
        "{}",
        n.message
    );
}

#[test]
fn why_pending_sentence_for_a_spot_executor() {
    let spot = |name: &str, free_gi: u64| {
        used(
            node(name, 16_000, gi(16), Some("spot")),
            0,
            gi(16 - free_gi),
            1,
        )
    };
    let v = view(
        vec![
            node("g1", 4000, gi(16), Some("general")),
            spot("s1", 8),
            spot("s2", 8),
            spot("s3", 6),
        ],
        vec![],
        &[],
    );
    let mut g = gang("job-1", "ns", (1000, gi(2)), 4, (2000, mi(7373)));
    for p in g.pods.iter_mut().skip(1) {
        p.node_selector = crate::testing::labels(&[("pool", "spot")]);
    }
    let Verdict::Wait(w) = decide(&v, &g) else {
        panic!("expected wait")
    };
    assert_eq!(
        w.message,
        "executor 3 of 4 does not fit: needs 7.2Gi memory, at most 6Gi free on any node with pool=spot; \
         7.6Gi memory free in total, split across 3 nodes (2 of 5 pods of the gang placed)"
    );
    assert_eq!(
        w.kind,
        WaitKind::Insufficient {
            role: PodRole::Executor,
            resource: Resource::Memory,
            short_by: Resources {
                cpu_millis: 0,
                memory_bytes: mi(7373) - gi(6),
                pods: 0
            },
            pool: Some("spot".into()),
        }
    );
}

#[test]
fn quota_sentences() {
    let v = view(
        vec![node("g1", 64_000, gi(256), None)],
        vec![],
        &[(
            "team-a",
            res(16_000, gi(64), UNLIMITED),
            res(12_000, gi(10), 3),
        )],
    );
    let Verdict::Wait(w) = decide(&v, &gang("g", "team-a", (1000, gi(2)), 3, (2000, gi(4)))) else {
        panic!("expected wait")
    };
    assert_eq!(
        w.kind,
        WaitKind::Quota {
            resource: Resource::Cpu,
            short_by: 3000
        }
    );
    assert_eq!(
        w.message,
        "namespace team-a quota cpu: the gang needs 7, 4 left of 16 (12 in use or reserved)"
    );
    let Verdict::Never(n) = decide(&v, &gang("g", "team-a", (1000, gi(2)), 9, (2000, gi(4))))
    else {
        panic!("expected never")
    };
    assert_eq!(
        n.kind,
        NeverKind::ExceedsQuota {
            resource: Resource::Cpu
        }
    );
    assert_eq!(
        n.message,
        "the gang needs 19 cpu in total, more than namespace team-a's quota allows at all (16)"
    );
}

#[test]
fn an_admitted_gang_is_charged_in_the_working_set() {
    // Two gangs in one decision round: the second sees the first's nodes and quota spent.
    let v = view(
        vec![node("a", 8000, gi(32), None), node("b", 8000, gi(32), None)],
        vec![],
        &[("ns", res(12_000, UNLIMITED, UNLIMITED), res(0, 0, 0))],
    );
    let mut ws = WorkingSet::new(&v);
    let first = ws.admit(&gang("one", "ns", (2000, gi(2)), 1, (6000, gi(8))));
    assert_eq!(code(&first), "fits");
    let second = ws.admit(&gang("two", "ns", (2000, gi(2)), 1, (6000, gi(8))));
    assert_eq!(code(&second), "wait:quota", "{second:?}");
    let third = ws.admit(&gang("three", "ns", (1000, gi(2)), 1, (3000, gi(8))));
    assert_eq!(code(&third), "fits");
}

#[test]
fn scale_up_is_flagged_in_the_placement() {
    let v = view(vec![], vec![pool("spot", 8000, gi(32), 0, 10)], &[]);
    let Verdict::Fits(p) = decide(&v, &gang("g", "ns", (1000, gi(2)), 4, (4000, gi(16)))) else {
        panic!("expected fits")
    };
    assert_eq!(
        p.scale_up,
        vec![ScaleUp {
            pool: "spot".into(),
            nodes: 3
        }]
    );
    assert!(p.nodes.iter().all(|n| n.starts_with("spot/+")));
}

#[test]
fn a_probe_answers_like_admit_and_spends_nothing() {
    // One 8-cpu node and a pool that may add one more: the probe's verdicts match admit's,
    // and after any number of probes the same gangs still fit exactly as before.
    let v = view(
        vec![node("a", 8000, gi(32), None)],
        vec![pool("spot", 8000, gi(32), 0, 1)],
        &[("ns", res(30_000, UNLIMITED, UNLIMITED), res(0, 0, 0))],
    );
    let big = gang("big", "ns", (2000, gi(2)), 2, (6000, gi(8)));
    let mut ws = WorkingSet::new(&v);
    for _ in 0..3 {
        let Verdict::Fits(p) = ws.probe_admit(&big) else {
            panic!("the gang fits on the node plus one added node")
        };
        assert_eq!(p.scale_up.len(), 1, "{p:?}");
    }
    assert_eq!(ws.free(0), Some(v.nodes[0].free()), "the node is untouched");
    assert_eq!(
        ws.quotas()["ns"].used,
        res(0, 0, 0),
        "the quota is untouched"
    );
    assert_eq!(
        code(&ws.admit(&big)),
        "fits+scale-up",
        "the pool's one node is still free"
    );
    assert_eq!(
        code(&ws.probe_admit(&big)),
        "wait:insufficient",
        "the admitted gang spent the node and the pool's headroom"
    );
    assert_eq!(code(&ws.admit(&big)), "wait:insufficient");
}
