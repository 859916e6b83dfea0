//! The snapshot strategy on a live (simulated) cluster: the cache equals a fresh list through
//! pods created, bound, completed and deleted; verdicts on a fragmented cluster; the ledger
//! across back-to-back decisions and its conversion as the real pods appear.

use capacity::model::PodRole;
use capacity::testing::{gang, gi, labels};
use capacity::verdict::{NeverKind, Resource, WaitKind};
use capacity::{CapacityConfig, GangDemand, Verdict};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use kube_sim::SimConfig;

use crate::support::{Running, cache_converges, create_pod, eventually, pod_json, sim};

fn total_pods(t: &std::collections::BTreeMap<String, capacity::Resources>) -> u64 {
    t.values().map(|r| r.pods).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_stays_exact_through_pods_lives() {
    let sim = sim(SimConfig::uniform(3, "4", "16Gi")
        .with_namespace("team-a")
        .with_quota("team-a", "compute", &[("requests.cpu", "100")])
        .with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &CapacityConfig::default()).await;

    // Created and bound.
    for i in 0..4 {
        create_pod(
            &client,
            "team-a",
            pod_json(&format!("long-{i}"), "1", "2Gi"),
        )
        .await;
    }
    for i in 0..2 {
        let mut p = pod_json(&format!("short-{i}"), "500m", "1Gi");
        p["metadata"]["annotations"]["kube-sim.dev/runtime"] = "60s".into();
        create_pod(&client, "team-a", p).await;
    }
    cache_converges(&client, &run.capacity, "six pods bound", |t| {
        total_pods(t) == 6
    })
    .await;

    // One that cannot bind anywhere now: charged to the quota, on no node.
    create_pod(&client, "team-a", pod_json("too-big-now", "3800m", "1Gi")).await;
    eventually("the pending pod charged to the quota", || async {
        let used = run
            .capacity
            .snapshot()
            .with_cache(|c| c.quota("team-a").map(|q| q.used));
        (used.map(|u| u.pods) == Some(7)).then_some(())
    })
    .await;
    cache_converges(&client, &run.capacity, "pending pod on no node", |t| {
        total_pods(t) == 6
    })
    .await;

    // Completed: the short pods stop counting.
    cache_converges(&client, &run.capacity, "short pods completed", |t| {
        total_pods(t) == 4
    })
    .await;

    // Deleted (gracefully: terminating, then gone).
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    pods.delete("long-0", &DeleteParams::default())
        .await
        .unwrap();
    pods.delete("too-big-now", &DeleteParams::default())
        .await
        .unwrap();
    cache_converges(&client, &run.capacity, "deleted pods gone", |t| {
        total_pods(t) == 3
    })
    .await;
    eventually("quota usage back to the three running pods", || async {
        let used = run
            .capacity
            .snapshot()
            .with_cache(|c| c.quota("team-a").map(|q| q.used));
        (used.map(|u| (u.pods, u.cpu_millis)) == Some((3, 3000))).then_some(())
    })
    .await;
    run.stop().await;
}

/// Fills each of three 4-cpu nodes with one 3-cpu pod: 3 cpu free in total, 1 per node.
async fn fragmented() -> (kube_sim::SimHandle, kube::Client, Running) {
    let sim = sim(SimConfig::uniform(3, "4", "16Gi")
        .with_namespace("team-a")
        .with_quota("team-a", "compute", &[("requests.cpu", "20")])
        .with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &CapacityConfig::default()).await;
    for i in 0..3 {
        create_pod(
            &client,
            "default",
            pod_json(&format!("filler-{i}"), "3", "1Gi"),
        )
        .await;
    }
    cache_converges(&client, &run.capacity, "fillers bound", |t| t.len() == 3).await;
    (sim, client, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdicts_on_a_fragmented_cluster() {
    let (_sim, _client, run) = fragmented().await;
    let checker = run.capacity.checker();

    // 3 cpu free in total, but no node has 2.
    let Verdict::Wait(w) = checker
        .check(&gang("frag", "team-a", (500, gi(1)), 1, (2000, gi(1))))
        .await
        .unwrap()
    else {
        panic!("expected wait")
    };
    assert!(
        matches!(
            w.kind,
            WaitKind::Insufficient {
                role: PodRole::Executor,
                resource: Resource::Cpu,
                ..
            }
        ),
        "{w:?}"
    );
    assert!(w.message.contains("split across 3 nodes"), "{}", w.message);

    // Larger than any node: never.
    let Verdict::Never(n) = checker
        .check(&gang("huge", "team-a", (500, gi(1)), 1, (8000, gi(1))))
        .await
        .unwrap()
    else {
        panic!("expected never")
    };
    assert_eq!(
        n.kind,
        NeverKind::PodTooLarge {
            role: PodRole::Executor,
            resource: Resource::Cpu
        }
    );

    // Over the namespace quota's hard limit: never.
    let Verdict::Never(n) = checker
        .check(&gang("greedy", "team-a", (500, gi(1)), 30, (1000, gi(1))))
        .await
        .unwrap()
    else {
        panic!("expected never")
    };
    assert_eq!(
        n.kind,
        NeverKind::ExceedsQuota {
            resource: Resource::Cpu
        }
    );

    // Small pods fit.
    assert!(matches!(
        checker
            .check(&gang("small", "team-a", (500, gi(1)), 2, (500, gi(1))))
            .await
            .unwrap(),
        Verdict::Fits(_)
    ));
    assert!(run.metrics_text().contains(r#"orchestrator_capacity_verdicts_total{strategy="snapshot",verdict="wait",reason="insufficient"} 1"#));
    run.stop().await;
}

/// The gang's real pods, labelled as Spark labels them.
fn spark_pod(g: &GangDemand, i: usize) -> serde_json::Value {
    let p = &g.pods[i];
    let mut json = pod_json(
        &format!("{}-{i}", g.key),
        &format!("{}m", p.requests.cpu_millis),
        &p.requests.memory_bytes.to_string(),
    );
    for (k, v) in &g.pod_labels {
        json["metadata"]["labels"][k] = v.clone().into();
    }
    json["metadata"]["labels"]["spark-role"] = if p.role == PodRole::Driver {
        "driver"
    } else {
        "executor"
    }
    .into();
    json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_stops_double_spending_until_the_pods_carry_the_room() {
    let (_sim, client, run) = fragmented().await;
    let checker = run.capacity.checker();
    let first = gang("first", "team-a", (500, gi(1)), 2, (500, gi(1)));
    let Verdict::Fits(placement) = checker.check(&first).await.unwrap() else {
        panic!("fits")
    };
    checker.reserve(&first, &placement);

    // Back to back, before any pod exists: the promised room is not spent twice.
    let second = gang("second", "team-a", (1000, gi(1)), 1, (1000, gi(1)));
    let Verdict::Wait(w) = checker.check(&second).await.unwrap() else {
        panic!("expected wait")
    };
    assert_eq!(
        w.kind,
        WaitKind::Reserved {
            holder: "first".into()
        },
        "{}",
        w.message
    );
    // Placements are binding (the default): a node with the first gang's pods on the way is
    // full for every other gang until they are bound.
    let view = checker.view().unwrap();
    let requested: u64 = view.nodes.iter().map(|n| n.requested.cpu_millis).sum();
    let mut promised = placement.nodes.clone();
    promised.sort();
    promised.dedup();
    assert_eq!(
        requested,
        9000 + 1000 * promised.len() as u64,
        "fillers, and the nodes holding the promise counted full"
    );

    // The real pods appear and bind; each converts its share, nothing is counted twice.
    for i in 0..first.pods.len() {
        create_pod(&client, "team-a", spark_pod(&first, i)).await;
    }
    eventually("reservation converted into bound pods", || async {
        let gone = run
            .capacity
            .snapshot()
            .with_cache(|c| c.ledger().get("first").is_none());
        let view = checker.view().unwrap();
        let requested: u64 = view.nodes.iter().map(|n| n.requested.cpu_millis).sum();
        (gone && requested == 10_500).then_some(())
    })
    .await;
    assert_eq!(labels(&[("app", "first")]), first.pod_labels);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_until_the_caches_sync() {
    let sim = sim(SimConfig::uniform(1, "4", "16Gi"));
    let capacity = capacity::Capacity::new(
        sim.client().unwrap(),
        &CapacityConfig::default(),
        capacity::Metrics::new(),
    );
    let checker = capacity.checker();
    assert_eq!(checker.view().unwrap_err().metric_label(), "not-ready");
    let err = checker
        .check(&gang("g", "default", (100, gi(1)), 0, (0, 0)))
        .await
        .unwrap_err();
    assert_eq!(err.metric_label(), "not-ready");
    let err = capacity
        .wait_ready(std::time::Duration::from_millis(10))
        .await
        .unwrap_err();
    assert_eq!(err.metric_label(), "not-ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_is_shared_until_the_cluster_or_the_ledger_changes() {
    let sim = sim(SimConfig::uniform(2, "4", "16Gi")
        .with_namespace("team-a")
        .with_speed(20.0));
    let client = sim.client().unwrap();
    // Housekeeping never runs here: a lapsed promise must leave the view by its own deadline.
    let config = CapacityConfig {
        ledger_ttl: std::time::Duration::from_secs(2),
        housekeeping_interval: std::time::Duration::from_secs(3600),
        ..CapacityConfig::default()
    };
    let run = Running::start(client.clone(), &config).await;
    let checker = run.capacity.checker();
    let requested =
        |v: &capacity::ClusterView| -> u64 { v.nodes.iter().map(|n| n.requested.cpu_millis).sum() };

    let first = checker.view().unwrap();
    assert!(std::sync::Arc::ptr_eq(&first, &checker.view().unwrap()));
    // Releasing a promise nobody holds changes nothing, so the view stays the same one.
    checker.release("nobody");
    assert!(std::sync::Arc::ptr_eq(&first, &checker.view().unwrap()));
    assert_eq!(requested(&first), 0);

    // A promise shows at once, and goes at once when released.
    let g = gang("g", "team-a", (1000, gi(1)), 1, (1000, gi(1)));
    let Verdict::Fits(placement) = checker.check(&g).await.unwrap() else {
        panic!("fits")
    };
    checker.reserve(&g, &placement);
    let promised = checker.view().unwrap();
    assert!(requested(&promised) >= 2000, "the promise counted");
    checker.release("g");
    assert_eq!(requested(&checker.view().unwrap()), 0);

    // A pod bound by the scheduler shows through the watch.
    create_pod(&client, "team-a", pod_json("p", "1500m", "1Gi")).await;
    eventually("the bound pod in the view", || async {
        (requested(&checker.view().unwrap()) == 1500).then_some(())
    })
    .await;

    // A promise that lapses leaves the view though nothing was written since.
    checker.reserve(&g, &placement);
    assert!(requested(&checker.view().unwrap()) >= 3500);
    eventually("the lapsed promise out of the view", || async {
        (requested(&checker.view().unwrap()) == 1500).then_some(())
    })
    .await;
    assert!(
        run.capacity
            .snapshot()
            .with_cache(|c| c.ledger().get("g").is_some()),
        "still in the ledger: only housekeeping drops it"
    );
    run.stop().await;
}
