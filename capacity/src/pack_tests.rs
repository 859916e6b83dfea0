//! Table-driven tests of gang packing: fragmentation, best-fit decreasing, selectors and taints,
//! autoscaling pools, all-or-nothing rollback, reservations taken off, holds for a blocked head.

use super::*;
use crate::fit::get;
use crate::model::{PodRole, TaintEffect};
use crate::testing::{constrained, gang, gi, labels, node, pool, taint, toleration, used};
use crate::verdict::Resource;

fn view(nodes: Vec<NodeView>, pools: Vec<AutoscalePool>) -> ClusterView {
    let mut nodes = nodes;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    ClusterView {
        nodes,
        quotas: BTreeMap::new(),
        pools,
    }
}

/// Expected outcome of one pack.
#[derive(Debug)]
enum Want {
    /// Fits, pods on these nodes (gang order), with this scale-up.
    Fits(&'static [&'static str], &'static [(&'static str, u32)]),
    /// Short of this resource, by at least this much of it, for this pod index.
    Short(usize, Resource),
}

struct Case {
    name: &'static str,
    nodes: Vec<NodeView>,
    pools: Vec<AutoscalePool>,
    gang: GangDemand,
    want: Want,
}

fn spot_node(name: &str, cpu: u64, mem: u64) -> NodeView {
    let mut n = node(name, cpu, mem, Some("spot"));
    n.taints
        .push(taint("spot", "true", TaintEffect::NoSchedule));
    n
}

fn cases() -> Vec<Case> {
    let tolerate_spot = [toleration(Some("spot"), None, None)];
    vec![
        Case {
            name: "fits on one node",
            nodes: vec![node("a", 8000, gi(32), None)],
            pools: vec![],
            gang: gang("g", "ns", (1000, gi(2)), 2, (2000, gi(4))),
            want: Want::Fits(&["a", "a", "a"], &[]),
        },
        Case {
            name: "fragmented cpu: 6 cpu free in total, no node has 3",
            nodes: vec![
                used(node("a", 4000, gi(16), None), 2000, 0, 1),
                used(node("b", 4000, gi(16), None), 2000, 0, 1),
                used(node("c", 4000, gi(16), None), 2000, 0, 1),
            ],
            pools: vec![],
            gang: gang("g", "ns", (1000, gi(1)), 1, (3000, gi(1))),
            want: Want::Short(1, Resource::Cpu),
        },
        Case {
            name: "fragmented across dimensions: cpu on one node, memory on another",
            nodes: vec![
                used(node("a", 8000, gi(16), None), 4000, gi(14), 1),
                used(node("b", 8000, gi(16), None), 7500, 0, 1),
            ],
            pools: vec![],
            gang: gang("g", "ns", (2000, gi(4)), 0, (0, 0)),
            want: Want::Short(0, Resource::Memory),
        },
        Case {
            name: "decreasing order: the big executors first, the driver in what is left",
            nodes: vec![node("x", 5000, gi(32), None), node("y", 3000, gi(32), None)],
            pools: vec![],
            gang: gang("g", "ns", (2000, gi(1)), 2, (3000, gi(1))),
            want: Want::Fits(&["x", "y", "x"], &[]),
        },
        Case {
            name: "pod slots are a dimension too",
            nodes: vec![used(node("a", 64_000, gi(256), None), 0, 0, 109)],
            pools: vec![],
            gang: gang("g", "ns", (1000, gi(1)), 1, (1000, gi(1))),
            want: Want::Short(1, Resource::Pods),
        },
        Case {
            name: "cordoned nodes take nothing",
            nodes: vec![{
                let mut n = node("a", 8000, gi(32), None);
                n.unschedulable = true;
                n
            }],
            pools: vec![],
            gang: gang("g", "ns", (1000, gi(1)), 0, (0, 0)),
            want: Want::Short(0, Resource::Pods),
        },
        Case {
            name: "spot executors need the toleration and the selector",
            nodes: vec![
                node("g1", 4000, gi(16), Some("general")),
                spot_node("s1", 16_000, gi(64)),
            ],
            pools: vec![],
            gang: {
                let mut g = gang("g", "ns", (1000, gi(2)), 2, (4000, gi(8)));
                for p in g.pods.iter_mut().skip(1) {
                    p.node_selector = labels(&[("pool", "spot")]);
                    p.tolerations = tolerate_spot.to_vec();
                }
                g
            },
            want: Want::Fits(&["g1", "s1", "s1"], &[]),
        },
        Case {
            name: "without the toleration spot nodes are out",
            nodes: vec![
                node("g1", 4000, gi(16), Some("general")),
                spot_node("s1", 16_000, gi(64)),
            ],
            pools: vec![],
            gang: gang("g", "ns", (1000, gi(2)), 1, (4000, gi(8))),
            want: Want::Short(0, Resource::Cpu),
        },
        Case {
            name: "autoscaling pool adds nodes when existing ones are full",
            nodes: vec![used(
                node("s1", 8000, gi(32), Some("spot")),
                8000,
                gi(32),
                10,
            )],
            pools: vec![pool("spot", 8000, gi(32), 1, 5)],
            gang: constrained(
                gang("g", "ns", (2000, gi(8)), 2, (6000, gi(24))),
                &[("pool", "spot")],
                &[],
            ),
            want: Want::Fits(&["spot/+1", "spot/+1", "spot/+2"], &[("spot", 2)]),
        },
        Case {
            name: "existing room first, then the pool",
            nodes: vec![used(node("s1", 8000, gi(32), Some("spot")), 2000, gi(8), 2)],
            pools: vec![pool("spot", 8000, gi(32), 1, 5)],
            gang: constrained(
                gang("g", "ns", (2000, gi(8)), 1, (6000, gi(24))),
                &[("pool", "spot")],
                &[],
            ),
            want: Want::Fits(&["spot/+1", "s1"], &[("spot", 1)]),
        },
        Case {
            name: "pool at its maximum: wait, naming the pool",
            nodes: vec![used(
                node("s1", 8000, gi(32), Some("spot")),
                8000,
                gi(32),
                10,
            )],
            pools: vec![pool("spot", 8000, gi(32), 1, 1)],
            gang: constrained(
                gang("g", "ns", (2000, gi(8)), 0, (0, 0)),
                &[("pool", "spot")],
                &[],
            ),
            want: Want::Short(0, Resource::Cpu),
        },
        Case {
            name: "the smallest pool shape that holds the pod is opened",
            nodes: vec![],
            pools: vec![
                pool("big", 64_000, gi(256), 0, 3),
                pool("small", 8000, gi(32), 0, 3),
            ],
            gang: gang("g", "ns", (4000, gi(16)), 0, (0, 0)),
            want: Want::Fits(&["small/+1"], &[("small", 1)]),
        },
    ]
}

#[test]
fn packing_table() {
    for case in cases() {
        let v = view(case.nodes, case.pools);
        let mut ws = WorkingSet::new(&v);
        let got = ws.pack(&case.gang);
        match (&case.want, got) {
            (Want::Fits(nodes, scale), Ok(p)) => {
                assert_eq!(p.nodes, *nodes, "{}", case.name);
                let scale: Vec<ScaleUp> = scale
                    .iter()
                    .map(|(pool, n)| ScaleUp {
                        pool: (*pool).to_string(),
                        nodes: *n,
                    })
                    .collect();
                assert_eq!(p.scale_up, scale, "{}", case.name);
            }
            (Want::Short(pod, resource), Err(s)) => {
                assert_eq!(s.pod, *pod, "{}: {s:?}", case.name);
                let (r, short_by) = s.scarcest();
                assert_eq!(r, *resource, "{}: {}", case.name, s.message());
                assert!(get(&short_by, r) > 0, "{}: short by nothing", case.name);
            }
            (want, got) => panic!("{}: want {want:?}, got {got:?}", case.name),
        }
    }
}

#[test]
fn a_failed_pack_changes_nothing() {
    let v = view(
        vec![node("a", 4000, gi(16), None), node("b", 4000, gi(16), None)],
        vec![pool("p", 4000, gi(16), 0, 1)],
    );
    let mut ws = WorkingSet::new(&v);
    let before: Vec<_> = (0..2).map(|i| ws.free(i)).collect();
    // 4 pods of 3 cpu: two nodes and one pool node take three; the fourth fails.
    assert!(
        ws.pack(&gang("g", "ns", (3000, gi(1)), 3, (3000, gi(1))))
            .is_err()
    );
    let after: Vec<_> = (0..2).map(|i| ws.free(i)).collect();
    assert_eq!(before, after);
    // The pool node opened during the failed attempt was closed again.
    let p = ws
        .pack(&gang("h", "ns", (3000, gi(1)), 2, (3000, gi(1))))
        .unwrap();
    assert_eq!(
        p.scale_up,
        vec![ScaleUp {
            pool: "p".into(),
            nodes: 1
        }]
    );
}

#[test]
fn best_fit_keeps_the_big_hole_for_the_next_gang() {
    // First-fit by name would put the small pod on "a" and split the only 8-cpu hole.
    let v = view(
        vec![
            node("a", 8000, gi(32), None),
            used(node("b", 8000, gi(32), None), 6000, 0, 1),
        ],
        vec![],
    );
    let mut ws = WorkingSet::new(&v);
    let small = ws
        .pack(&gang("small", "ns", (2000, gi(1)), 0, (0, 0)))
        .unwrap();
    assert_eq!(small.nodes, ["b"]);
    let big = ws
        .pack(&gang("big", "ns", (8000, gi(8)), 0, (0, 0)))
        .unwrap();
    assert_eq!(big.nodes, ["a"]);
}

#[test]
fn two_gangs_in_a_round_never_share_room() {
    let v = view(vec![node("a", 8000, gi(32), None)], vec![]);
    let mut ws = WorkingSet::new(&v);
    let g = gang("g", "ns", (2000, gi(4)), 1, (4000, gi(8)));
    assert!(ws.pack(&g).is_ok());
    let second = ws
        .pack(&gang("h", "ns", (2000, gi(4)), 1, (4000, gi(8))))
        .unwrap_err();
    assert_eq!(second.scarcest().0, Resource::Cpu);
}

#[test]
fn reservations_come_off_existing_and_expected_nodes() {
    let v = view(
        vec![node("a", 8000, gi(32), Some("spot"))],
        vec![pool("spot", 8000, gi(32), 1, 2)],
    );
    let mut ws = WorkingSet::new(&v);
    ws.take_reserved(
        "a",
        &Resources {
            cpu_millis: 6000,
            memory_bytes: gi(8),
            pods: 1,
        },
    );
    ws.take_reserved(
        "spot/+1",
        &Resources {
            cpu_millis: 7000,
            memory_bytes: gi(8),
            pods: 1,
        },
    );
    ws.take_reserved(
        "gone-node",
        &Resources {
            cpu_millis: 7000,
            memory_bytes: gi(8),
            pods: 1,
        },
    );
    // 2 cpu on "a", 1 cpu on the expected node, and the pool is at max (1 + 1 expected).
    let p = ws
        .pack(&gang("g", "ns", (2000, gi(1)), 1, (1000, gi(1))))
        .unwrap();
    assert_eq!(p.nodes, ["a", "spot/+1"]);
    assert_eq!(
        p.scale_up,
        vec![ScaleUp {
            pool: "spot".into(),
            nodes: 1
        }]
    );
    assert!(ws.pack(&gang("h", "ns", (500, gi(1)), 0, (0, 0))).is_err());
}

#[test]
fn views_with_expected_nodes_continue_their_numbering() {
    let mut expected = node("spot/+1", 8000, gi(32), Some("spot"));
    expected.requested = Resources {
        cpu_millis: 8000,
        memory_bytes: gi(32),
        pods: 1,
    };
    let v = view(vec![expected], vec![pool("spot", 8000, gi(32), 1, 3)]);
    let mut ws = WorkingSet::new(&v);
    let p = ws.pack(&gang("g", "ns", (4000, gi(1)), 0, (0, 0))).unwrap();
    assert_eq!(p.nodes, ["spot/+2"]);
}

#[test]
fn a_held_head_leaves_backfill_only_what_it_cannot_use() {
    // The head needs 8 cpu on one node; "a" has 6 free now (2 more when a pod ends).
    let v = view(
        vec![
            used(node("a", 8000, gi(32), None), 2000, gi(4), 1),
            used(node("b", 8000, gi(32), None), 5000, gi(4), 1),
        ],
        vec![],
    );
    let mut ws = WorkingSet::new(&v);
    let head = gang("head", "ns", (8000, gi(8)), 0, (0, 0));
    assert!(ws.pack(&head).is_err());
    let held = ws.hold(&head);
    assert_eq!(
        held,
        vec![(
            "a".to_string(),
            Resources {
                cpu_millis: 6000,
                memory_bytes: gi(8),
                pods: 1
            }
        )]
    );
    // A small job can still use "b", but nothing on "a".
    let small = ws
        .pack(&gang("small", "ns", (3000, gi(1)), 0, (0, 0)))
        .unwrap();
    assert_eq!(small.nodes, ["b"]);
    assert!(
        ws.pack(&gang("more", "ns", (1000, gi(1)), 0, (0, 0)))
            .is_err()
    );
}

#[test]
fn virtual_node_names_round_trip() {
    assert_eq!(virtual_node_name("spot", 3), "spot/+3");
    assert_eq!(parse_virtual_node("spot/+3"), Some(("spot", 3)));
    assert_eq!(parse_virtual_node("node-1"), None);
    assert_eq!(parse_virtual_node("spot/+x"), None);
}

#[test]
fn eligibility_is_reused_across_working_sets() {
    let v = view(
        vec![
            node("a", 8000, gi(32), Some("x")),
            node("b", 8000, gi(32), Some("y")),
        ],
        vec![],
    );
    let mut ws = WorkingSet::new(&v);
    let g = constrained(
        gang("g", "ns", (1000, gi(1)), 0, (0, 0)),
        &[("pool", "y")],
        &[],
    );
    assert_eq!(ws.pack(&g).unwrap().nodes, ["b"]);
    let cache = ws.into_eligibility();
    assert_eq!(cache.len(), 1);
    let mut again = WorkingSet::from_parts(&v.nodes, &v.pools, BTreeMap::new(), cache);
    assert_eq!(again.pack(&g).unwrap().nodes, ["b"]);
    let _ = PodRole::Driver;
}
