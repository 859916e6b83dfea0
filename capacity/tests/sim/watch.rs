//! Watch recovery: after the simulator drops every watch, or answers the re-watch with
//! `410 Gone`, the cache catches up with what changed meanwhile and stays exact.

use capacity::CapacityConfig;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::DeleteParams;
use kube_sim::SimConfig;

use crate::support::{Running, cache_converges, create_pod, eventually, pod_json, sim};

fn total_pods(t: &std::collections::BTreeMap<String, capacity::Resources>) -> u64 {
    t.values().map(|r| r.pods).sum()
}

/// `orchestrator_capacity_watch_events_total{kind="pods",event="relist"}`.
fn relists(run: &Running) -> u64 {
    let text = run.metrics_text();
    text.lines()
        .find(|l| {
            l.starts_with(r#"orchestrator_capacity_watch_events_total{kind="pods",event="relist"}"#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_up_after_dropped_watches() {
    let sim = sim(SimConfig::uniform(3, "8", "32Gi").with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &CapacityConfig::default()).await;
    for i in 0..3 {
        create_pod(&client, "default", pod_json(&format!("a-{i}"), "1", "1Gi")).await;
    }
    cache_converges(&client, &run.capacity, "first pods", |t| total_pods(t) == 3).await;

    sim.drop_watches();
    for i in 0..3 {
        create_pod(&client, "default", pod_json(&format!("b-{i}"), "2", "1Gi")).await;
    }
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("a-0", &DeleteParams::default())
        .await
        .unwrap();
    cache_converges(
        &client,
        &run.capacity,
        "changes made while the watches were down",
        |t| total_pods(t) == 5,
    )
    .await;

    // Dropped again, repeatedly, while changes keep coming.
    sim.drop_watches_after(Some(2));
    for i in 0..4 {
        create_pod(
            &client,
            "default",
            pod_json(&format!("c-{i}"), "500m", "1Gi"),
        )
        .await;
    }
    cache_converges(
        &client,
        &run.capacity,
        "changes under flapping watches",
        |t| total_pods(t) == 9,
    )
    .await;
    sim.drop_watches_after(None);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relists_after_410_gone() {
    let sim = sim(SimConfig::uniform(2, "8", "32Gi").with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &CapacityConfig::default()).await;
    let initial = relists(&run);
    assert_eq!(initial, 1, "one initial list");
    for i in 0..2 {
        create_pod(&client, "default", pod_json(&format!("a-{i}"), "1", "1Gi")).await;
    }
    cache_converges(&client, &run.capacity, "first pods", |t| total_pods(t) == 2).await;

    // Every re-watch (nodes, pods, quotas) is answered 410: the watcher must relist.
    sim.expire_next_watches(3);
    sim.drop_watches();
    create_pod(&client, "default", pod_json("b-0", "2", "1Gi")).await;
    Api::<Pod>::namespaced(client.clone(), "default")
        .delete("a-1", &DeleteParams::default())
        .await
        .unwrap();
    eventually("a relist after the 410", || async {
        (relists(&run) > initial).then_some(())
    })
    .await;
    cache_converges(&client, &run.capacity, "state after the relist", |t| {
        total_pods(t) == 2
    })
    .await;

    // And it keeps following the watch afterwards.
    create_pod(&client, "default", pod_json("c-0", "1", "1Gi")).await;
    cache_converges(&client, &run.capacity, "events after the relist", |t| {
        total_pods(t) == 3
    })
    .await;
    run.stop().await;
}
