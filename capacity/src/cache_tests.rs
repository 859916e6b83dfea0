//! Cache tests: aggregates stay exact through a pod's life (pending, bound, completed,
//! deleted), across node churn and relists; the ledger converts through the cache; readiness;
//! waits caused by reservations name the holder.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use super::*;
use crate::testing::{gang, gi, labels, node, pool};

fn pod(
    ns: &str,
    name: &str,
    node: Option<&str>,
    cpu: &str,
    mem: &str,
    phase: &str,
    pod_labels: &[(&str, &str)],
) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some(format!("uid-{ns}-{name}")),
            labels: Some(labels(pod_labels)),
            ..Default::default()
        },
        spec: Some(PodSpec {
            node_name: node.map(str::to_string),
            containers: vec![Container {
                name: "main".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([
                        ("cpu".to_string(), Quantity(cpu.into())),
                        ("memory".to_string(), Quantity(mem.into())),
                    ])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            ..Default::default()
        }),
    }
}

fn ready_cache(nodes: Vec<NodeView>) -> Cache {
    ready_cache_with_pools(nodes, vec![])
}

fn ready_cache_with_pools(nodes: Vec<NodeView>, pools: Vec<AutoscalePool>) -> Cache {
    let mut c = Cache::new(
        "pool",
        "spark-role",
        pools,
        Ledger::new(Duration::from_secs(60)),
    );
    c.replace_nodes(nodes);
    c.replace_pods(Vec::new());
    c.replace_quotas(Vec::new());
    for k in [Kind::Nodes, Kind::Pods, Kind::Quotas] {
        c.mark_synced(k);
    }
    c
}

fn apply(c: &mut Cache, p: Pod) {
    let (key, rec) = PodRecord::from_pod(p, "spark-role");
    c.upsert_pod(key, rec);
}

fn requested(c: &Cache, node: &str) -> Resources {
    c.nodes()
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.requested)
        .unwrap_or_default()
}

fn r(cpu_millis: u64, memory_bytes: u64, pods: u64) -> Resources {
    Resources {
        cpu_millis,
        memory_bytes,
        pods,
    }
}

#[test]
fn not_ready_until_every_kind_synced() {
    let mut c = Cache::new(
        "pool",
        "spark-role",
        vec![],
        Ledger::new(Duration::from_secs(60)),
    );
    c.mark_synced(Kind::Nodes);
    let err = c.view(Instant::now()).unwrap_err();
    assert_eq!(err.metric_label(), "not-ready");
    assert!(err.to_string().contains("pods, resourcequotas"), "{err}");
    c.mark_synced(Kind::Pods);
    c.mark_synced(Kind::Quotas);
    assert!(c.view(Instant::now()).is_ok());
}

#[test]
fn aggregates_follow_a_pods_life() {
    let mut c = ready_cache(vec![node("a", 8000, gi(32), None)]);
    c.replace_quotas([(
        ("ns".to_string(), "q".to_string()),
        Some(r(100_000, gi(100), 50)),
    )]);
    let quota_used = |c: &Cache| c.quota("ns").unwrap().used;

    apply(&mut c, pod("ns", "p", None, "1", "1Gi", "Pending", &[]));
    assert_eq!(
        requested(&c, "a"),
        Resources::default(),
        "pending, unbound: not on a node"
    );
    assert_eq!(
        quota_used(&c),
        r(1000, gi(1), 1),
        "but charged to the quota"
    );

    apply(
        &mut c,
        pod("ns", "p", Some("a"), "1", "1Gi", "Pending", &[]),
    );
    assert_eq!(requested(&c, "a"), r(1000, gi(1), 1), "bound");
    apply(
        &mut c,
        pod("ns", "p", Some("a"), "1", "1Gi", "Running", &[]),
    );
    assert_eq!(requested(&c, "a"), r(1000, gi(1), 1), "running: unchanged");

    apply(
        &mut c,
        pod("ns", "p", Some("a"), "1", "1Gi", "Succeeded", &[]),
    );
    assert_eq!(requested(&c, "a"), Resources::default(), "completed: freed");
    assert_eq!(quota_used(&c), Resources::default());

    c.remove_pod("uid-ns-p");
    assert_eq!(
        requested(&c, "a"),
        Resources::default(),
        "deleting a finished pod frees nothing twice"
    );
    assert_eq!(c.pod_count(), 0);

    apply(
        &mut c,
        pod("ns", "q", Some("a"), "2", "2Gi", "Running", &[]),
    );
    c.remove_pod("uid-ns-q");
    assert_eq!(
        requested(&c, "a"),
        Resources::default(),
        "deleted while running: freed"
    );
}

#[test]
fn pods_on_unknown_nodes_wait_for_the_node() {
    let mut c = ready_cache(vec![]);
    apply(
        &mut c,
        pod("ns", "p", Some("late"), "1", "1Gi", "Running", &[]),
    );
    c.upsert_node(node("late", 8000, gi(32), None));
    assert_eq!(requested(&c, "late"), r(1000, gi(1), 1));
    c.remove_node("late");
    c.upsert_node(node("late", 8000, gi(32), None));
    assert_eq!(
        requested(&c, "late"),
        r(1000, gi(1), 1),
        "node flapped: its pods still count"
    );
    c.remove_node("late");
    c.remove_pod("uid-ns-p");
    c.upsert_node(node("late", 8000, gi(32), None));
    assert_eq!(requested(&c, "late"), Resources::default());
}

#[test]
fn node_updates_keep_requests_and_relists_recount() {
    let mut c = ready_cache(vec![
        node("a", 8000, gi(32), None),
        node("b", 8000, gi(32), None),
    ]);
    apply(
        &mut c,
        pod("ns", "p", Some("a"), "1", "1Gi", "Running", &[]),
    );
    let mut cordoned = node("a", 8000, gi(32), None);
    cordoned.unschedulable = true;
    c.upsert_node(cordoned);
    assert_eq!(requested(&c, "a"), r(1000, gi(1), 1));
    assert!(c.nodes()[0].unschedulable);

    // A relist that no longer has "p" but has "q" on b.
    let (k, rec) = PodRecord::from_pod(
        pod("ns", "q", Some("b"), "3", "3Gi", "Running", &[]),
        "spark-role",
    );
    c.replace_pods([(k, rec)]);
    assert_eq!(requested(&c, "a"), Resources::default());
    assert_eq!(requested(&c, "b"), r(3000, gi(3), 1));
    c.replace_nodes(vec![node("b", 8000, gi(32), None)]);
    assert_eq!(
        requested(&c, "b"),
        r(3000, gi(3), 1),
        "node relist keeps pod requests"
    );
}

#[test]
fn reservations_convert_as_the_cache_sees_the_pods() {
    let now = Instant::now();
    let mut c = ready_cache(vec![node("a", 8000, gi(32), None)]);
    let g = gang("job-1", "ns", (2000, gi(4)), 1, (4000, gi(8)));
    let Verdict::Fits(p) = c.check(&g, now).unwrap() else {
        panic!("fits")
    };
    c.reserve(&g, &p, now);
    let free_cpu = |c: &Cache| c.view(now).unwrap().nodes[0].free().cpu_millis;
    assert_eq!(free_cpu(&c), 2000);

    let driver = [("app", "job-1"), ("spark-role", "driver")];
    let exec = [("app", "job-1"), ("spark-role", "executor")];
    apply(&mut c, pod("ns", "d", None, "2", "4Gi", "Pending", &driver));
    assert_eq!(
        free_cpu(&c),
        2000,
        "created, not bound: still promised on the node"
    );
    apply(
        &mut c,
        pod("ns", "d", Some("a"), "2", "4Gi", "Running", &driver),
    );
    assert_eq!(
        free_cpu(&c),
        2000,
        "bound: the pod counts, the promise does not"
    );
    apply(
        &mut c,
        pod("ns", "e", Some("a"), "4", "8Gi", "Pending", &exec),
    );
    assert_eq!(free_cpu(&c), 2000);
    assert!(c.ledger().get("job-1").is_none(), "fully converted");

    // Pods that existed before the promise convert at once.
    let h = gang("job-2", "ns", (1000, gi(1)), 0, (0, 0));
    apply(
        &mut c,
        pod(
            "ns",
            "early",
            Some("a"),
            "1",
            "1Gi",
            "Running",
            &[("app", "job-2"), ("spark-role", "driver")],
        ),
    );
    c.reserve(
        &h,
        &Placement {
            nodes: vec!["a".into()],
            scale_up: vec![],
        },
        now,
    );
    assert!(c.ledger().get("job-2").is_none());
    assert_eq!(free_cpu(&c), 1000);
}

#[test]
fn a_wait_caused_by_a_reservation_names_the_holder() {
    let now = Instant::now();
    let mut c = ready_cache(vec![node("a", 8000, gi(32), None)]);
    let first = gang("first", "ns", (2000, gi(4)), 1, (4000, gi(8)));
    let Verdict::Fits(p) = c.check(&first, now).unwrap() else {
        panic!("fits")
    };
    c.reserve(&first, &p, now);
    let second = gang("second", "ns", (2000, gi(4)), 1, (4000, gi(8)));
    match c.check(&second, now).unwrap() {
        Verdict::Wait(w) => {
            assert_eq!(
                w.kind,
                WaitKind::Reserved {
                    holder: "first".into()
                }
            );
            assert!(w.message.starts_with("reserved for first"), "{}", w.message);
        }
        other => panic!("expected wait, got {other:?}"),
    }
    // Without the promise the cluster is just busy: a plain insufficient wait.
    apply(
        &mut c,
        pod("ns", "x", Some("a"), "6", "1Gi", "Running", &[]),
    );
    c.release("first");
    match c.check(&second, now).unwrap() {
        Verdict::Wait(w) => assert_eq!(w.kind.code(), "insufficient"),
        other => panic!("expected wait, got {other:?}"),
    }
    // Quota held by a promise.
    c.remove_pod("uid-ns-x");
    c.replace_quotas([(
        ("ns".to_string(), "q".to_string()),
        Some(r(7000, u64::MAX, u64::MAX)),
    )]);
    c.reserve(&first, &p, now);
    match c
        .check(&gang("third", "ns", (2000, gi(1)), 0, (0, 0)), now)
        .unwrap()
    {
        Verdict::Wait(w) => assert_eq!(
            w.kind,
            WaitKind::Reserved {
                holder: "first".into()
            }
        ),
        other => panic!("expected wait, got {other:?}"),
    }
}

#[test]
fn pools_count_their_nodes_and_totals_sum_per_pool() {
    let mut c = ready_cache_with_pools(
        vec![
            node("s1", 8000, gi(32), Some("spot")),
            node("g1", 4000, gi(16), None),
        ],
        vec![pool("spot", 8000, gi(32), 0, 4)],
    );
    apply(
        &mut c,
        pod("ns", "p", Some("s1"), "1", "1Gi", "Running", &[]),
    );
    assert_eq!(c.pools()[0].current, 1);
    let totals = c.pool_totals();
    assert_eq!(totals["spot"].requested, r(1000, gi(1), 1));
    assert_eq!(totals[""].allocatable.cpu_millis, 4000);
}

#[test]
fn multiple_quotas_take_the_lowest_limit_and_scoped_ones_are_ignored() {
    let mut c = ready_cache(vec![]);
    c.replace_quotas([
        (
            ("ns".to_string(), "a".to_string()),
            Some(r(8000, u64::MAX, 10)),
        ),
        (
            ("ns".to_string(), "b".to_string()),
            Some(r(16_000, gi(4), u64::MAX)),
        ),
        (("ns".to_string(), "scoped".to_string()), None),
    ]);
    assert_eq!(c.quota("ns").unwrap().hard, r(8000, gi(4), 10));
    assert!(c.quota("other").is_none());
}

#[test]
fn a_reservation_finds_its_existing_pods_through_the_label_index_kept_up_to_date() {
    let now = Instant::now();
    let mut c = ready_cache(vec![node("a", 8000, gi(32), None)]);
    // A running driver on node `a` labelled as application `app`'s.
    let driver = |ns: &str, name: &str, app: &str| {
        pod(
            ns,
            name,
            Some("a"),
            "1",
            "1Gi",
            "Running",
            &[("app", app), ("spark-role", "driver")],
        )
    };
    // Reserves a one-driver gang `key` in `ns`; true when it is still waiting for its pod.
    let promised = |c: &mut Cache, key: &str| {
        let g = gang(key, "ns", (1000, gi(1)), 0, (0, 0));
        let placement = Placement {
            nodes: vec!["a".into()],
            scale_up: vec![],
        };
        c.reserve(&g, &placement, now);
        c.ledger().get(key).is_some()
    };
    // The first reservation indexes `app`; this gang has no pods yet.
    assert!(promised(&mut c, "job-1"));

    // A pod seen after the index was built is found by a later reservation.
    apply(&mut c, driver("ns", "d2", "job-2"));
    assert!(!promised(&mut c, "job-2"), "its pod took the slot at once");

    // A pod relabelled away, or deleted, is not found any more.
    apply(&mut c, driver("ns", "d3", "job-3"));
    apply(&mut c, driver("ns", "d3", "other"));
    apply(&mut c, driver("ns", "d4", "job-4"));
    c.remove_pod("uid-ns-d4");
    for key in ["job-3", "job-4"] {
        assert!(promised(&mut c, key), "{key} has no pod");
    }

    // Another namespace's pod with the same labels is not the gang's.
    apply(&mut c, driver("other-ns", "d5", "job-5"));
    assert!(promised(&mut c, "job-5"));

    // After a relist the index is rebuilt from the new pods.
    let relisted = [driver("ns", "d6", "job-6")]
        .into_iter()
        .map(|p| PodRecord::from_pod(p, "spark-role"));
    c.replace_pods(relisted);
    assert!(!promised(&mut c, "job-6"));
}

#[test]
fn the_kept_node_scan_is_the_scan_of_the_nodes_after_every_change() {
    // Each step changes the nodes one way; after each, the scan the cache decides with must be
    // what a fresh walk over its nodes gives (a stale one would weigh cpu against memory by
    // a node that is gone, or miss a larger one).
    type Step = (&'static str, fn(&mut Cache));
    let steps: &[Step] = &[
        ("relist", |c| {
            c.replace_nodes(vec![
                node("a", 4000, gi(16), None),
                node("b", 8000, gi(32), None),
            ])
        }),
        ("a larger node added", |c| {
            c.upsert_node(node("c", 64_000, gi(256), None))
        }),
        ("the largest node shrinks", |c| {
            c.upsert_node(node("c", 2000, gi(8), None))
        }),
        ("a node grows", |c| {
            c.upsert_node(node("a", 96_000, gi(8), None))
        }),
        ("the largest node removed", |c| c.remove_node("a")),
        ("a virtual node appears", |c| {
            c.upsert_node(node("general/+7", 16_000, gi(512), Some("general")))
        }),
        ("a heartbeat (nothing sized changes)", |c| {
            c.upsert_node(node("b", 8000, gi(32), None))
        }),
        ("relist to nothing", |c| c.replace_nodes(Vec::new())),
    ];
    let mut c = ready_cache(Vec::new());
    for (what, step) in steps {
        step(&mut c);
        assert_eq!(c.scan, NodeScan::of(c.nodes()), "after: {what}");
    }
}
