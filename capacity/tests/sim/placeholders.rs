//! The placeholder strategy: the scheduler binds every placeholder (fits, on the nodes it
//! chose), `reserve` deletes them; unbound placeholders time out into a wait and are deleted;
//! real higher-priority pods preempt held placeholders; the sweeper removes what a crashed
//! process left.

use std::time::Duration;

use capacity::config::PlaceholderConfig;
use capacity::placeholders::PLACEHOLDER_LABEL;
use capacity::testing::{gang, gi};
use capacity::verdict::WaitKind;
use capacity::{Capacity, CapacityConfig, Metrics, Strategy, Verdict};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::ListParams;
use kube_sim::SimConfig;

use crate::support::{Running, create_pod, eventually, pod_json, pods_in, sim};

fn config(placeholders: PlaceholderConfig) -> CapacityConfig {
    CapacityConfig {
        strategy: Strategy::Placeholders,
        placeholders,
        ..CapacityConfig::default()
    }
}

fn selector() -> String {
    format!("{PLACEHOLDER_LABEL}=true")
}

async fn leases(client: &kube::Client, ns: &str) -> usize {
    Api::<Lease>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&selector()))
        .await
        .unwrap()
        .items
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fits_on_the_nodes_the_scheduler_chose_and_reserve_deletes_them() {
    let sim = sim(SimConfig::uniform(2, "4", "16Gi")
        .with_namespace("team-a")
        .with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &config(PlaceholderConfig::default())).await;
    let checker = run.capacity.checker();

    let g = gang("job-1", "team-a", (1000, gi(2)), 2, (2000, gi(4)));
    let Verdict::Fits(placement) = checker.check(&g).await.unwrap() else {
        panic!("expected fits")
    };
    let held = pods_in(&client, "team-a", &selector()).await;
    assert_eq!(held.len(), 3);
    for (name, node, _) in &held {
        let i: usize = name.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(
            node.as_deref(),
            Some(placement.nodes[i].as_str()),
            "placement is where the scheduler bound {name}"
        );
    }
    assert!(placement.nodes.iter().all(|n| n.starts_with("general-")));
    assert_eq!(leases(&client, "team-a").await, 1);
    assert!(
        run.metrics_text()
            .contains(r#"orchestrator_capacity_placeholders{state="held"} 3"#)
    );

    checker.reserve(&g, &placement);
    eventually(
        "placeholders and their owner deleted after reserve",
        || async {
            (pods_in(&client, "team-a", &selector()).await.is_empty()
                && leases(&client, "team-a").await == 0)
                .then_some(())
        },
    )
    .await;
    assert!(
        run.capacity
            .snapshot()
            .with_cache(|c| c.ledger().get("job-1").is_some()),
        "the ledger took over"
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_placeholders_time_out_into_a_wait_and_are_deleted() {
    let sim = sim(SimConfig::uniform(2, "4", "16Gi")
        .with_namespace("team-a")
        .with_speed(20.0));
    let client = sim.client().unwrap();
    let cfg = config(PlaceholderConfig {
        timeout: Duration::from_secs(1),
        require_snapshot_fit: false,
        ..PlaceholderConfig::default()
    });
    let run = Running::start(client.clone(), &cfg).await;
    for i in 0..2 {
        create_pod(
            &client,
            "default",
            pod_json(&format!("busy-{i}"), "3", "1Gi"),
        )
        .await;
    }
    eventually("fillers bound", || async {
        let pods = pods_in(&client, "default", "").await;
        (pods.len() == 2 && pods.iter().all(|(_, n, _)| n.is_some())).then_some(())
    })
    .await;
    let checker = run.capacity.checker();
    // The snapshot says wait; with require_snapshot_fit off the scheduler gets asked anyway.
    let Verdict::Wait(w) = checker
        .check(&gang("job-2", "team-a", (500, gi(1)), 1, (2000, gi(1))))
        .await
        .unwrap()
    else {
        panic!("expected wait")
    };
    assert_eq!(w.kind, WaitKind::NotConfirmed);
    assert!(
        w.message.contains("placeholder pods bound within 1s"),
        "{}",
        w.message
    );
    assert!(
        w.message.contains("Insufficient cpu"),
        "the scheduler's reason: {}",
        w.message
    );
    eventually("pending placeholders deleted", || async {
        (pods_in(&client, "team-a", &selector()).await.is_empty()
            && leases(&client, "team-a").await == 0)
            .then_some(())
    })
    .await;
    assert!(
        run.metrics_text()
            .contains(r#"orchestrator_capacity_placeholders_deleted_total{reason="wait"} 2"#)
    );
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_pods_preempt_held_placeholders() {
    let sim = sim(SimConfig::uniform(1, "4", "16Gi")
        .with_namespace("team-a")
        .with_speed(20.0));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &config(PlaceholderConfig::default())).await;
    let checker = run.capacity.checker();
    let g = gang("job-3", "team-a", (1000, gi(2)), 1, (2000, gi(4)));
    assert!(matches!(checker.check(&g).await.unwrap(), Verdict::Fits(_)));

    // Before any reserve, a real pod (priority 0 > -10) needs the room: the scheduler evicts.
    create_pod(&client, "team-a", pod_json("real", "3", "4Gi")).await;
    eventually(
        "the real pod bound after preempting placeholders",
        || async {
            let real = pods_in(&client, "team-a", "!spark-orchestrator.dev/placeholder").await;
            (real.len() == 1 && real[0].1.is_some()).then_some(())
        },
    )
    .await;
    checker.release(&g.key);
    eventually(
        "the rest of the placeholders deleted on release",
        || async {
            pods_in(&client, "team-a", &selector())
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_removes_what_a_crashed_process_left() {
    // Two 4-cpu nodes: the three 2.5-cpu placeholders fit the cluster in total (so the gang is
    // not "never"), but only one per node binds.
    let sim = sim(SimConfig::uniform(2, "4", "16Gi")
        .with_namespace("team-a")
        .with_speed(20.0));
    let client = sim.client().unwrap();

    // Process A: its check creates placeholders that cannot all bind, then it dies mid-check
    // (the task is aborted and nothing of A runs any more — no janitor, no sweeper).
    let crashed_cfg = config(PlaceholderConfig {
        require_snapshot_fit: false,
        ..PlaceholderConfig::default()
    });
    let a = Capacity::new(client.clone(), &crashed_cfg, Metrics::new());
    let token = tokio_util::sync::CancellationToken::new();
    let watches = tokio::spawn({
        let a = a.clone();
        let token = token.clone();
        async move { a.snapshot().run(token).await }
    });
    a.wait_ready(crate::support::PATIENCE).await.unwrap();
    let check = tokio::spawn({
        let checker = a.checker();
        async move {
            checker
                .check(&gang("doomed", "team-a", (2500, gi(1)), 2, (2500, gi(1))))
                .await
        }
    });
    eventually("A's placeholders exist", || async {
        (pods_in(&client, "team-a", &selector()).await.len() == 3).then_some(())
    })
    .await;
    check.abort();
    assert!(check.await.unwrap_err().is_cancelled());
    token.cancel();
    watches.await.unwrap().unwrap();
    drop(a);
    assert_eq!(
        pods_in(&client, "team-a", &selector()).await.len(),
        3,
        "the crash left them behind"
    );

    // Process B: its sweeper removes placeholders older than max_age that it does not hold.
    let b_cfg = config(PlaceholderConfig {
        timeout: Duration::from_millis(500),
        max_age: Duration::from_secs(1),
        sweep_interval: Duration::from_millis(200),
        ..PlaceholderConfig::default()
    });
    let b = Running::start(client.clone(), &b_cfg).await;
    eventually("orphans swept", || async {
        (pods_in(&client, "team-a", &selector()).await.is_empty()
            && leases(&client, "team-a").await == 0)
            .then_some(())
    })
    .await;
    // Counted once the sweep's deletes have returned, which may be after the list above saw
    // the last pod gone (creation times have whole seconds: two sweeps can share the three).
    eventually("the three deletes counted", || async {
        b.metrics_text()
            .contains(r#"orchestrator_capacity_placeholders_deleted_total{reason="sweep"} 3"#)
            .then_some(())
    })
    .await;
    b.stop().await;
}
