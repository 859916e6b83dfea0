//! Ledger tests: no double spending across back-to-back decisions, conversion as pods appear
//! and bind (never counted twice, never dropped), expiry, release, matching rules.

use std::collections::BTreeMap;

use super::*;
use crate::decide::decide;
use crate::testing::{gang, gi, labels, node, pool, xorshift};
use crate::verdict::Verdict;
use crate::view::QuotaView;

fn one_node_view() -> ClusterView {
    ClusterView {
        nodes: vec![node("a", 8000, gi(32), None)],
        quotas: BTreeMap::from([(
            "ns".to_string(),
            QuotaView {
                hard: Resources {
                    cpu_millis: 100_000,
                    memory_bytes: gi(1000),
                    pods: 100,
                },
                used: Resources::default(),
            },
        )]),
        pools: vec![],
    }
}

fn fits(v: Verdict) -> Placement {
    match v {
        Verdict::Fits(p) => p,
        other => panic!("expected fits, got {other:?}"),
    }
}

/// A pod of gang `key` as the cache would report it.
fn seen<'a>(
    id: &'a str,
    key_labels: &'a BTreeMap<String, String>,
    role: PodRole,
    req: Resources,
    bound: bool,
) -> ObservedPod<'a> {
    ObservedPod {
        id,
        namespace: "ns",
        labels: key_labels,
        role: Some(role),
        requests: req,
        bound,
        active: true,
    }
}

#[test]
fn back_to_back_decisions_never_spend_the_same_room() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(300));
    let base = one_node_view();
    let a = gang("a", "ns", (2000, gi(4)), 1, (4000, gi(8)));
    let b = gang("b", "ns", (2000, gi(4)), 1, (4000, gi(8)));

    let placement = fits(decide(&base, &a));
    ledger.reserve(&a, &placement, now);

    // The cluster has not changed (no pods yet); the second decision sees the promise.
    let mut v = base.clone();
    ledger.apply_to_view(&mut v, now);
    assert_eq!(v.nodes[0].requested.cpu_millis, 6000);
    assert_eq!(v.quotas["ns"].used.cpu_millis, 6000);
    assert!(matches!(decide(&v, &b), Verdict::Wait(_)));

    // Same through a working set.
    let mut ws = WorkingSet::new(&base);
    ledger.apply(&mut ws, now, false);
    assert!(matches!(ws.admit(&b), Verdict::Wait(_)));

    // Released: the room is back.
    assert!(ledger.release("a"));
    let mut v = base.clone();
    ledger.apply_to_view(&mut v, now);
    assert!(matches!(decide(&v, &b), Verdict::Fits(_)));
}

#[test]
fn each_pod_converts_its_share_exactly_once() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(300));
    let g = gang("job", "ns", (1000, gi(2)), 2, (2000, gi(4)));
    let placement = Placement {
        nodes: vec!["a".into(), "a".into(), "a".into()],
        scale_up: vec![],
    };
    ledger.reserve(&g, &placement, now);
    let pod_labels = labels(&[("app", "job"), ("spark-role", "x")]);
    let driver = g.pods[0].requests;
    let exec = g.pods[1].requests;

    // What the cache would count for node "a" (bound pods) and namespace "ns" (existing pods),
    // plus what the ledger adds: constant through the whole lifecycle.
    let mut node_pods = Resources::default();
    let mut ns_pods = Resources::default();
    let totals = |l: &Ledger, node_pods: Resources, ns_pods: Resources| {
        let on_node = l
            .node_reservations(now)
            .get("a")
            .copied()
            .unwrap_or_default();
        let in_ns = l
            .namespace_reservations(now)
            .get("ns")
            .copied()
            .unwrap_or_default();
        (
            node_pods.saturating_add(&on_node),
            ns_pods.saturating_add(&in_ns),
        )
    };
    let full = g.total();
    assert_eq!(totals(&ledger, node_pods, ns_pods), (full, full));

    // Driver created (pending): counted by the quota as a pod, on the node by the ledger.
    assert!(ledger.observe(&seen("d", &pod_labels, PodRole::Driver, driver, false)));
    ns_pods = ns_pods.saturating_add(&driver);
    assert_eq!(totals(&ledger, node_pods, ns_pods), (full, full));
    assert_eq!(
        ledger.get("job").unwrap().slots[0].state,
        SlotState::Created
    );

    // Driver bound.
    assert!(ledger.observe(&seen("d", &pod_labels, PodRole::Driver, driver, true)));
    node_pods = node_pods.saturating_add(&driver);
    assert_eq!(totals(&ledger, node_pods, ns_pods), (full, full));

    // The same event again changes nothing.
    assert!(!ledger.observe(&seen("d", &pod_labels, PodRole::Driver, driver, true)));

    // Executors appear and bind.
    for id in ["e1", "e2"] {
        assert!(ledger.observe(&seen(id, &pod_labels, PodRole::Executor, exec, false)));
        ns_pods = ns_pods.saturating_add(&exec);
        assert_eq!(totals(&ledger, node_pods, ns_pods), (full, full));
        assert!(ledger.observe(&seen(id, &pod_labels, PodRole::Executor, exec, true)));
        node_pods = node_pods.saturating_add(&exec);
        assert_eq!(totals(&ledger, node_pods, ns_pods), (full, full));
    }
    // Fully converted: the entry is gone.
    assert!(ledger.get("job").is_none());
    assert_eq!(ledger.stats(now), LedgerStats::default());

    // A third executor (dynamic allocation beyond the minimum) finds no slot: ignored.
    assert!(!ledger.observe(&seen("e3", &pod_labels, PodRole::Executor, exec, false)));
}

#[test]
fn an_unbound_pod_that_disappears_gives_its_slot_back() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(300));
    let g = gang("job", "ns", (1000, gi(2)), 1, (2000, gi(4)));
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["a".into(), "a".into()],
            scale_up: vec![],
        },
        now,
    );
    let l = labels(&[("app", "job")]);
    ledger.observe(&seen(
        "e1",
        &l,
        PodRole::Executor,
        g.pods[1].requests,
        false,
    ));
    assert_eq!(ledger.namespace_reservations(now)["ns"], g.pods[0].requests);
    assert!(ledger.forget("e1"));
    assert_eq!(ledger.namespace_reservations(now)["ns"], g.total());
    assert!(!ledger.forget("unknown"));
}

#[test]
fn promises_lapse_after_the_ttl() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(60));
    let g = gang("job", "ns", (1000, gi(2)), 0, (0, 0));
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["a".into()],
            scale_up: vec![],
        },
        now,
    );
    let later = now + Duration::from_secs(61);
    // Expired entries stop counting at once, before housekeeping removes them.
    assert!(ledger.node_reservations(later).is_empty());
    assert_eq!(ledger.stats(now).entries, 1);
    assert_eq!(
        ledger.expire(now + Duration::from_secs(30)),
        Vec::<String>::new()
    );
    assert_eq!(ledger.expire(later), vec!["job".to_string()]);
    assert!(ledger.get("job").is_none());
}

#[test]
fn matching_rules() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(60));
    let g = gang("job", "ns", (1000, gi(2)), 1, (2000, gi(4)));
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["a".into(), "b".into()],
            scale_up: vec![],
        },
        now,
    );
    let mine = labels(&[("app", "job"), ("extra", "1")]);
    let other = labels(&[("app", "other")]);
    let exec = g.pods[1].requests;

    // Wrong labels or namespace: no match.
    assert!(!ledger.observe(&seen("x", &other, PodRole::Executor, exec, true)));
    let mut wrong_ns = seen("y", &mine, PodRole::Executor, exec, true);
    wrong_ns.namespace = "elsewhere";
    assert!(!ledger.observe(&wrong_ns));
    // A finished pod never converts a promise.
    let mut done = seen("z", &mine, PodRole::Executor, exec, true);
    done.active = false;
    assert!(!ledger.observe(&done));
    // The executor takes the executor slot (on "b"), not the driver's.
    assert!(ledger.observe(&seen("e", &mine, PodRole::Executor, exec, true)));
    let slots = &ledger.get("job").unwrap().slots;
    assert_eq!(
        (slots[0].state, slots[1].state),
        (SlotState::Reserved, SlotState::Bound)
    );

    // An empty selector would capture every pod of the namespace: it matches none.
    let mut anon = gang("anon", "ns", (1000, gi(1)), 0, (0, 0));
    anon.pod_labels.clear();
    ledger.reserve(
        &anon,
        &Placement {
            nodes: vec!["a".into()],
            scale_up: vec![],
        },
        now,
    );
    assert!(!ledger.observe(&seen(
        "q",
        &other,
        PodRole::Driver,
        anon.pods[0].requests,
        true
    )));
}

#[test]
fn reserving_again_replaces_the_promise() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(60));
    let g = gang("job", "ns", (1000, gi(2)), 0, (0, 0));
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["a".into()],
            scale_up: vec![],
        },
        now,
    );
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["b".into()],
            scale_up: vec![],
        },
        now,
    );
    let r = ledger.node_reservations(now);
    assert_eq!(r.keys().map(String::as_str).collect::<Vec<_>>(), ["b"]);
}

#[test]
fn promises_on_nodes_a_pool_will_add_show_in_the_view() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(60));
    let mut v = ClusterView {
        nodes: vec![],
        quotas: BTreeMap::new(),
        pools: vec![pool("spot", 8000, gi(32), 0, 2)],
    };
    let g = gang("job", "ns", (2000, gi(8)), 1, (6000, gi(24)));
    let placement = fits(decide(&v, &g));
    assert_eq!(placement.nodes, ["spot/+1", "spot/+1"]);
    ledger.reserve(&g, &placement, now);
    ledger.apply_to_view(&mut v, now);
    assert_eq!(v.pools[0].current, 1);
    assert_eq!(v.nodes.len(), 1);
    assert_eq!(v.nodes[0].name, "spot/+1");
    assert_eq!(
        v.nodes[0].free(),
        Resources {
            cpu_millis: 0,
            memory_bytes: 0,
            pods: 108
        }
    );
    // The next gang gets the pool's second node, and then the pool is full.
    let next = fits(decide(&v, &gang("next", "ns", (2000, gi(8)), 0, (0, 0))));
    assert_eq!(next.nodes, ["spot/+2"]);
    ledger.reserve(&gang("next", "ns", (2000, gi(8)), 0, (0, 0)), &next, now);
    let mut fresh = ClusterView {
        nodes: vec![],
        quotas: BTreeMap::new(),
        pools: vec![pool("spot", 8000, gi(32), 0, 2)],
    };
    ledger.apply_to_view(&mut fresh, now);
    assert_eq!(fresh.pools[0].current, 2);
    assert!(matches!(
        decide(&fresh, &gang("third", "ns", (7000, gi(8)), 0, (0, 0))),
        Verdict::Wait(_)
    ));
    assert_eq!(
        ledger.holder_on(now, |n| n.starts_with("spot/")),
        Some("job")
    );
}

/// Empty 8-cpu nodes `a`, `b` and `c`; a gang `first` of a 1-cpu driver and two executors;
/// a gang `second` of a 1-cpu driver and executor.
fn three_nodes_two_gangs() -> (ClusterView, GangDemand, GangDemand) {
    let base = ClusterView {
        nodes: ["a", "b", "c"]
            .into_iter()
            .map(|n| node(n, 8000, gi(32), None))
            .collect(),
        ..ClusterView::default()
    };
    let first = gang("first", "ns", (1000, gi(2)), 2, (1000, gi(2)));
    let second = gang("second", "ns", (1000, gi(2)), 1, (1000, gi(2)));
    (base, first, second)
}

fn placement(nodes: &[&str]) -> Placement {
    Placement {
        nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        scale_up: vec![],
    }
}

/// Where `second` goes and what node `a` shows as requested, through the view and through
/// the working set (which must agree).
fn second_goes(
    ledger: &Ledger,
    base: &ClusterView,
    second: &GangDemand,
    now: Instant,
) -> (Vec<String>, Resources) {
    let mut v = base.clone();
    ledger.apply_to_view(&mut v, now);
    let mut ws = WorkingSet::new(base);
    ledger.apply(&mut ws, now, false);
    let through_ws = fits(ws.admit(second)).nodes;
    let through_view = fits(decide(&v, second)).nodes;
    assert_eq!(through_ws, through_view, "view and working set agree");
    (through_view, v.nodes[0].requested)
}

#[test]
fn a_spreading_gang_takes_its_nodes_from_everyone_until_its_pods_are_bound() {
    let now = Instant::now();
    let (base, first, second) = three_nodes_two_gangs();
    // The first gang's executors are pinned to {a, b}: the scheduler may put both on a.
    let spread = placement(&["a", "a", "b"]);

    // Shared: 5 cpu are left on a, the fullest node, and best fit puts the second gang there.
    let mut shared = Ledger::new(Duration::from_secs(300));
    shared.reserve(&first, &spread, now);
    let (nodes, requested) = second_goes(&shared, &base, &second, now);
    assert_eq!(nodes, ["a", "a"]);
    assert_eq!(requested.cpu_millis, 2000);

    // Exclusive: a and b are full for everyone else while the first gang's pods are on the way.
    let mut exclusive = Ledger::new(Duration::from_secs(300)).with_exclusive_nodes(true);
    exclusive.reserve(&first, &spread, now);
    assert!(exclusive.spreads(&first, &spread));
    let (nodes, requested) = second_goes(&exclusive, &base, &second, now);
    assert_eq!(nodes, ["c", "c"]);
    assert_eq!(requested, base.nodes[0].allocatable);

    // Once they are bound, a is offered again (the pods themselves count from then on).
    let pod_labels = labels(&[("app", "first")]);
    for (id, role) in [
        ("d", PodRole::Driver),
        ("e1", PodRole::Executor),
        ("e2", PodRole::Executor),
    ] {
        exclusive.observe(&seen(id, &pod_labels, role, first.pods[0].requests, true));
    }
    assert!(exclusive.get("first").is_none());
    assert_eq!(second_goes(&exclusive, &base, &second, now).0, ["a", "a"]);
}

#[test]
fn a_gang_whose_executors_share_one_node_keeps_only_its_exact_room() {
    let now = Instant::now();
    let (base, first, second) = three_nodes_two_gangs();
    // Driver on a, both executors on b: each pod is pinned to one node, none can take more.
    let exact = placement(&["a", "b", "b"]);
    let mut ledger = Ledger::new(Duration::from_secs(300)).with_exclusive_nodes(true);
    ledger.reserve(&first, &exact, now);
    assert!(!ledger.spreads(&first, &exact));
    let (nodes, requested) = second_goes(&ledger, &base, &second, now);
    assert_eq!(
        nodes,
        ["b", "b"],
        "best fit: b (2 cpu promised) is the fullest"
    );
    assert_eq!(
        requested.cpu_millis, 1000,
        "a shows the driver's exact room"
    );

    // A spreading gang keeps away from every node with pods on the way (strict).
    let mut ws = WorkingSet::new(&base);
    ledger.apply(&mut ws, now, true);
    let wide = gang("wide", "ns", (1000, gi(2)), 2, (3000, gi(2)));
    assert_eq!(fits(ws.admit(&wide)).nodes, ["c", "c", "c"]);
    let mut ws = WorkingSet::new(&base);
    ledger.apply(&mut ws, now, true);
    let wider = gang("wider", "ns", (1000, gi(2)), 3, (4000, gi(2)));
    assert!(
        matches!(ws.admit(&wider), Verdict::Wait(_)),
        "c alone cannot hold it, a and b have pods on the way"
    );
}

#[test]
fn what_spreads() {
    let ledger = Ledger::new(Duration::from_secs(300)).with_exclusive_nodes(true);
    let g = gang("g", "ns", (1000, gi(2)), 2, (1000, gi(2)));
    let lone = gang("lone", "ns", (1000, gi(2)), 0, (0, 0));
    let cases: [(&GangDemand, &[&str], bool); 6] = [
        (&g, &["a", "a", "a"], false),
        (&g, &["a", "b", "b"], false),
        (&g, &["a", "a", "b"], true),
        (&g, &["a", "b", "c"], true),
        (&g, &["a", "b", "spot/+1"], true),
        (&lone, &["spot/+1"], true),
    ];
    for (gang, nodes, want) in cases {
        assert_eq!(ledger.spreads(gang, &placement(nodes)), want, "{nodes:?}");
    }
    let shared = Ledger::new(Duration::from_secs(300));
    assert!(
        !shared.spreads(&g, &placement(&["a", "b", "c"])),
        "only with exclusive nodes"
    );
}

#[test]
fn a_gang_keeps_every_node_of_its_placement_until_its_last_pod_is_bound() {
    let now = Instant::now();
    let (base, first, second) = three_nodes_two_gangs();
    let mut ledger = Ledger::new(Duration::from_secs(300)).with_exclusive_nodes(true);
    ledger.reserve(&first, &placement(&["a", "b", "c"]), now);
    // An executor is created first and takes the first executor slot (planned on b), the
    // driver binds on a, the other executor binds on b. c has an open slot, a and b have
    // none, yet the last executor may still land on b (its set is {b, c}).
    let pod_labels = labels(&[("app", "first")]);
    let requests = first.pods[0].requests;
    ledger.observe(&seen("e1", &pod_labels, PodRole::Executor, requests, false));
    ledger.observe(&seen("d", &pod_labels, PodRole::Driver, requests, true));
    ledger.observe(&seen("e2", &pod_labels, PodRole::Executor, requests, true));
    let mut v = base.clone();
    ledger.apply_to_view(&mut v, now);
    assert!(
        matches!(decide(&v, &second), Verdict::Wait(_)),
        "every node stays promised while the first gang's executor is unbound"
    );
    let mut ws = WorkingSet::new(&base);
    ledger.apply(&mut ws, now, false);
    assert!(matches!(ws.admit(&second), Verdict::Wait(_)));

    ledger.observe(&seen("e1", &pod_labels, PodRole::Executor, requests, true));
    assert!(ledger.get("first").is_none());
}

/// The totals kept as entries change equal the totals computed afresh, after every step of a
/// long mixed sequence (reserve, pods created, bound, finished and deleted, release, expiry),
/// with spreading, pinned and pool-added placements; and what a decision applies holds them.
#[test]
fn kept_totals_equal_totals_computed_afresh_through_any_sequence() {
    let start = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(30)).with_exclusive_nodes(true);
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    let nodes = ["n0", "n1", "n2", "pool/+1"];
    let mut pods: Vec<(String, String, PodRole)> = Vec::new(); // (id, gang, role)
    let mut gangs: Vec<String> = Vec::new();
    for step in 0..3000u64 {
        let now = start + Duration::from_secs(step / 20);
        match next(7) {
            0 | 1 => {
                let key = format!("g{}", next(40));
                let executors = 1 + next(3) as usize;
                let g = gang(
                    &key,
                    ["ns", "other"][next(2) as usize],
                    (500, gi(1)),
                    executors,
                    (1000, gi(2)),
                );
                let placement = Placement {
                    nodes: (0..=executors)
                        .map(|_| nodes[next(4) as usize].to_string())
                        .collect(),
                    scale_up: vec![],
                };
                ledger.reserve(&g, &placement, now);
                gangs.push(key);
            }
            2 | 3 if !gangs.is_empty() => {
                let key = gangs[next(gangs.len() as u64) as usize].clone();
                let id = format!("pod-{step}");
                let role = if next(3) == 0 {
                    PodRole::Driver
                } else {
                    PodRole::Executor
                };
                let l = labels(&[("app", &key)]);
                let req = Resources {
                    cpu_millis: 1000,
                    memory_bytes: gi(2),
                    pods: 1,
                };
                ledger.observe(&ObservedPod {
                    namespace: "ns",
                    ..seen(&id, &l, role, req, false)
                });
                ledger.observe(&ObservedPod {
                    namespace: "other",
                    ..seen(&id, &l, role, req, false)
                });
                pods.push((id, key, role));
            }
            4 if !pods.is_empty() => {
                let (id, key, role) = pods[next(pods.len() as u64) as usize].clone();
                let l = labels(&[("app", &key)]);
                let req = Resources {
                    cpu_millis: 1000,
                    memory_bytes: gi(2),
                    pods: 1,
                };
                let finished = next(4) == 0;
                ledger.observe(&ObservedPod {
                    active: !finished,
                    ..seen(&id, &l, role, req, true)
                });
            }
            5 if !pods.is_empty() => {
                let (id, ..) = pods.swap_remove(next(pods.len() as u64) as usize);
                ledger.forget(&id);
            }
            6 if !gangs.is_empty() => {
                if next(2) == 0 {
                    ledger.release(&gangs[next(gangs.len() as u64) as usize].clone());
                } else {
                    ledger.expire(now);
                }
            }
            _ => {}
        }
        assert_eq!(
            ledger.totals,
            Totals::of(ledger.entries.values()),
            "step {step}"
        );
        assert_eq!(
            ledger.by_expiry.len(),
            ledger.entries.len(),
            "step {step}: one expiry per entry"
        );
    }
    assert!(
        !ledger.entries.is_empty(),
        "the sequence left promises to check"
    );
}

/// A lapsed promise that housekeeping has not dropped yet no longer counts, though the kept
/// totals still hold it.
#[test]
fn lapsed_promises_leave_the_totals_before_they_are_expired() {
    let now = Instant::now();
    let mut ledger = Ledger::new(Duration::from_secs(10));
    let g = gang("g", "ns", (1000, gi(1)), 1, (1000, gi(1)));
    ledger.reserve(
        &g,
        &Placement {
            nodes: vec!["a".into(), "a".into()],
            scale_up: vec![],
        },
        now,
    );
    assert_eq!(ledger.node_reservations(now)["a"].cpu_millis, 2000);
    let later = now + Duration::from_secs(11);
    assert!(ledger.any_lapsed(later) && !ledger.any_live(later));
    assert!(ledger.node_reservations(later).is_empty());
    assert!(ledger.namespace_reservations(later).is_empty());
    assert_eq!(ledger.next_expiry(now), Some(now + Duration::from_secs(10)));
    assert_eq!(ledger.next_expiry(later), None);
    assert_eq!(ledger.expire(later), ["g"]);
    assert!(!ledger.any_lapsed(later));
}
