//! Summary tests: per-pool sums of nodes and bound pods, ledger reservations attributed to the
//! pool of their planned node (or of the node a pool is to add), placeholders counted where
//! they are bound, lapsed reservations left out, configured pools shown with no node.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use super::*;
use crate::cache::{Kind, PodRecord};
use crate::ledger::Ledger;
use crate::testing::{gang, gi, labels, node, pool};
use crate::verdict::Placement;

fn pod(name: &str, node: Option<&str>, cpu: &str, pod_labels: &[(&str, &str)]) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{name}")),
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
                        ("memory".to_string(), Quantity("1Gi".into())),
                    ])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }),
    }
}

fn cache() -> Cache {
    let mut c = Cache::new(
        "pool",
        "spark-role",
        vec![pool("burst", 4000, gi(16), 0, 5)],
        Ledger::new(Duration::from_secs(60)),
    );
    let mut cordoned = node("g2", 4000, gi(16), Some("general"));
    cordoned.unschedulable = true;
    c.replace_nodes(vec![
        node("g1", 4000, gi(16), Some("general")),
        cordoned,
        node("bare", 2000, gi(8), None),
    ]);
    c.replace_pods(Vec::new());
    c.replace_quotas([(
        ("ns".to_string(), "q".to_string()),
        Some(Resources {
            cpu_millis: 10_000,
            memory_bytes: gi(40),
            pods: 20,
        }),
    )]);
    for k in [Kind::Nodes, Kind::Pods, Kind::Quotas] {
        c.mark_synced(k);
    }
    c
}

fn apply(c: &mut Cache, p: Pod) {
    let (key, rec) = PodRecord::from_pod(p, "spark-role");
    c.upsert_pod(key, rec);
}

fn amounts(cpu_millis: u64, memory_bytes: u64, pods: u64) -> Amounts {
    Amounts {
        cpu_millis,
        memory_bytes,
        pods,
    }
}

fn pool_of<'a>(s: &'a ClusterSummary, name: Option<&str>) -> &'a PoolSummary {
    s.pools
        .iter()
        .find(|p| p.name.as_deref() == name)
        .unwrap_or_else(|| panic!("no pool {name:?} in {s:?}"))
}

#[test]
fn pools_sum_their_nodes_pods_reservations_and_placeholders() {
    let mut c = cache();
    let now = Instant::now();
    apply(&mut c, pod("app", Some("g1"), "1", &[]));
    apply(&mut c, pod("bare-app", Some("bare"), "500m", &[]));
    apply(
        &mut c,
        pod("ph-bound", Some("g2"), "2", &[(PLACEHOLDER_LABEL, "true")]),
    );
    apply(
        &mut c,
        pod("ph-pending", None, "2", &[(PLACEHOLDER_LABEL, "true")]),
    );
    // A gang promised on g1 (driver) and on a node the burst pool is to add (executor).
    c.reserve(
        &gang("g", "ns", (1000, gi(2)), 1, (3000, gi(4))),
        &Placement {
            nodes: vec!["g1".into(), "burst/+1".into()],
            scale_up: vec![],
        },
        now,
    );

    let s = c.summary(now);
    assert!(s.ready);
    let names: Vec<Option<&str>> = s.pools.iter().map(|p| p.name.as_deref()).collect();
    assert_eq!(names, [None, Some("burst"), Some("general")]);

    let general = pool_of(&s, Some("general"));
    assert_eq!((general.nodes, general.unschedulable), (2, 1));
    assert_eq!(general.max_nodes, None, "not an autoscaling pool");
    assert_eq!(general.allocatable, amounts(8000, gi(32), 220));
    assert_eq!(
        general.requested,
        amounts(3000, gi(2), 2),
        "the bound app and the bound placeholder"
    );
    assert_eq!(general.reserved, amounts(1000, gi(2), 1), "the driver slot");
    assert_eq!(general.placeholders.pods, 1);
    assert_eq!(general.placeholders.requested, amounts(2000, gi(1), 1));

    let burst = pool_of(&s, Some("burst"));
    assert_eq!((burst.nodes, burst.max_nodes), (0, Some(5)));
    assert_eq!(burst.allocatable, Amounts::default());
    assert_eq!(
        burst.reserved,
        amounts(3000, gi(4), 1),
        "the executor slot on a node to add"
    );

    let bare = pool_of(&s, None);
    assert_eq!(bare.requested, amounts(500, gi(1), 1));
    assert_eq!(bare.placeholders.pods, 0);

    assert_eq!(s.reservations, 1);
    assert_eq!(s.pending_placeholders, 1);
    let q = s.quotas.get("ns").unwrap();
    assert_eq!(q.hard, amounts(10_000, gi(40), 20));
    assert_eq!(
        q.used.cpu_millis,
        1000 + 500 + 2000 + 2000,
        "active pods, bound or not (reservations are shown per pool)"
    );
}

#[test]
fn lapsed_and_converted_reservations_are_not_reserved() {
    let mut c = cache();
    let now = Instant::now();
    c.reserve(
        &gang("g", "ns", (1000, gi(2)), 0, (0, 0)),
        &Placement {
            nodes: vec!["g1".into()],
            scale_up: vec![],
        },
        now,
    );
    let reserved = |c: &Cache, at| pool_of(&c.summary(at), Some("general")).reserved;
    assert_eq!(reserved(&c, now), amounts(1000, gi(2), 1));
    assert_eq!(
        reserved(&c, now + Duration::from_secs(61)),
        Amounts::default(),
        "past the ledger's TTL"
    );
    // The driver pod appears bound: the slot converts into a request.
    apply(
        &mut c,
        pod(
            "driver",
            Some("g1"),
            "1",
            &[("app", "g"), ("spark-role", "driver")],
        ),
    );
    let s = c.summary(now);
    let general = pool_of(&s, Some("general"));
    assert_eq!(general.reserved, Amounts::default());
    assert_eq!(general.requested.cpu_millis, 1000);
}

#[test]
fn an_empty_cluster_lists_only_configured_pools() {
    let c = Cache::new(
        "pool",
        "spark-role",
        vec![pool("burst", 4000, gi(16), 0, 3)],
        Ledger::new(Duration::from_secs(60)),
    );
    let s = c.summary(Instant::now());
    assert!(!s.ready, "no watch has synced");
    assert_eq!(s.pools.len(), 1);
    assert_eq!(s.pools[0].name.as_deref(), Some("burst"));
    assert_eq!(s.pools[0].nodes, 0);
    assert!(s.quotas.is_empty());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["pools"][0]["maxNodes"], 3);
    assert_eq!(json["pools"][0]["allocatable"]["cpuMillis"], 0);
    assert_eq!(json["pendingPlaceholders"], 0);
}
