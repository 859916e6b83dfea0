//! Scheduler semantics, case by case, as kube-scheduler behaves.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube_sim::{PoolConfig, SimConfig};
use serde_json::json;

use crate::support::*;

fn unschedulable_message(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        })
        .and_then(|c| c.message.clone())
}

async fn message_of(pods: &Api<Pod>, name: &str) -> String {
    let p = wait_for(
        pods,
        name,
        "Unschedulable",
        pod_is(|p| unschedulable_message(p).is_some()),
    )
    .await;
    unschedulable_message(&p).unwrap()
}

async fn running_on(pods: &Api<Pod>, name: &str) -> String {
    let p = wait_for(pods, name, "Running", pod_is(|p| phase(p) == "Running")).await;
    node_of(&p).unwrap()
}

fn two_small_nodes() -> SimConfig {
    fast(SimConfig::uniform(2, "2", "4Gi"))
}

#[tokio::test]
async fn fits_and_becomes_running_with_real_looking_status() {
    let sim = start(two_small_nodes());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("ok", "1", "1Gi"))
        .await
        .unwrap();
    running_on(&pods, "ok").await;
    let p = pods.get("ok").await.unwrap();
    let st = p.status.unwrap();
    assert!(st.pod_ip.is_some() && st.host_ip.is_some() && st.start_time.is_some());
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.ready && cs.state.as_ref().unwrap().running.is_some());
    let conds = st.conditions.unwrap();
    for t in ["PodScheduled", "Initialized", "Ready", "ContainersReady"] {
        assert!(
            conds.iter().any(|c| c.type_ == t && c.status == "True"),
            "{t}"
        );
    }
}

#[tokio::test]
async fn does_not_fit_by_memory_or_cpu_with_the_real_message_and_event() {
    let sim = start(two_small_nodes());
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("big-mem", "1", "5Gi"))
        .await
        .unwrap();
    assert_eq!(
        message_of(&pods, "big-mem").await,
        "0/2 nodes are available: 2 Insufficient memory. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    pods.create(&PostParams::default(), &pod("big-cpu", "3", "1Gi"))
        .await
        .unwrap();
    assert_eq!(
        message_of(&pods, "big-cpu").await,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );
    let events: Api<Event> = Api::namespaced(client, "default");
    let ev = eventually("FailedScheduling event", async || {
        events
            .list(&ListParams::default().fields("reason=FailedScheduling"))
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.involved_object.name.as_deref() == Some("big-mem"))
    })
    .await;
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert_eq!(ev.action.as_deref(), Some("Scheduling"));
}

#[tokio::test]
async fn taints_tolerations_and_node_selectors() {
    let cfg = fast(
        SimConfig::default()
            .with_pool(PoolConfig::new("general", 1, "2", "4Gi"))
            .with_pool(PoolConfig::new("spot", 1, "8", "32Gi").taint("spot", "true", "NoSchedule")),
    );
    let sim = start(cfg);
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("wide", "4", "1Gi"))
        .await
        .unwrap();
    assert_eq!(
        message_of(&pods, "wide").await,
        "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {spot: true}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
    );
    let mut tolerant = serde_json::to_value(pod("tolerant", "4", "1Gi")).unwrap();
    tolerant["spec"]["tolerations"] =
        json!([{"key": "spot", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]);
    pods.create(&PostParams::default(), &pod_json(tolerant))
        .await
        .unwrap();
    assert_eq!(running_on(&pods, "tolerant").await, "spot-0000");
    let mut exists = serde_json::to_value(pod("exists", "100m", "1Gi")).unwrap();
    exists["spec"]["tolerations"] = json!([{"key": "spot", "operator": "Exists"}]);
    exists["spec"]["nodeSelector"] = json!({"pool": "spot"});
    pods.create(&PostParams::default(), &pod_json(exists))
        .await
        .unwrap();
    assert_eq!(running_on(&pods, "exists").await, "spot-0000");
    let mut lost = serde_json::to_value(pod("lost", "100m", "1Gi")).unwrap();
    lost["spec"]["nodeSelector"] = json!({"pool": "gpu"});
    pods.create(&PostParams::default(), &pod_json(lost))
        .await
        .unwrap();
    assert_eq!(
        message_of(&pods, "lost").await,
        "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {spot: true}. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[tokio::test]
async fn pod_count_unschedulable_nodes_and_retry_when_room_frees() {
    let sim = start(fast(
        SimConfig::default().with_pool(PoolConfig::new("tiny", 1, "8", "8Gi").max_pods(2)),
    ));
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    for n in ["a", "b", "c"] {
        pods.create(&PostParams::default(), &pod(n, "100m", "100Mi"))
            .await
            .unwrap();
    }
    running_on(&pods, "a").await;
    running_on(&pods, "b").await;
    assert_eq!(
        message_of(&pods, "c").await,
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    sim.set_node_unschedulable("tiny-0000", true).unwrap();
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let msg = message_of(&pods, "c").await;
    let msg = if msg.contains("unschedulable") {
        msg
    } else {
        eventually("cordoned message", async || {
            let p = pods.get("c").await.unwrap();
            unschedulable_message(&p).filter(|m| m.contains("unschedulable"))
        })
        .await
    };
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
    );
    sim.set_node_unschedulable("tiny-0000", false).unwrap();
    assert_eq!(running_on(&pods, "c").await, "tiny-0000");
}

#[tokio::test]
async fn init_containers_count_per_pod_requests() {
    let sim = start(fast(SimConfig::uniform(1, "4", "8Gi")));
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let p = json!({"metadata": {"name": "init"}, "spec": {
        "initContainers": [{"name": "setup", "image": "busybox", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}],
        "containers": [{"name": "main", "image": "busybox", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}});
    pods.create(&PostParams::default(), &pod_json(p))
        .await
        .unwrap();
    running_on(&pods, "init").await;
    // effective request is max(3, 1) = 3 cores: 1 left
    pods.create(&PostParams::default(), &pod("second", "1500m", "1Gi"))
        .await
        .unwrap();
    assert!(
        message_of(&pods, "second")
            .await
            .starts_with("0/1 nodes are available: 1 Insufficient cpu.")
    );
}

#[tokio::test]
async fn preemption_evicts_lower_priority_pods() {
    let cfg = fast(SimConfig::uniform(1, "4", "8Gi"))
        .with_priority_class("low", 10, false)
        .with_priority_class("high", 1000, false);
    let sim = start(cfg);
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for n in ["low-1", "low-2"] {
        let mut p = pod(n, "2", "1Gi");
        p.spec.as_mut().unwrap().priority_class_name = Some("low".into());
        pods.create(&PostParams::default(), &p).await.unwrap();
        running_on(&pods, n).await;
    }
    let mut hi = pod("high", "3", "1Gi");
    hi.spec.as_mut().unwrap().priority_class_name = Some("high".into());
    pods.create(&PostParams::default(), &hi).await.unwrap();
    assert_eq!(running_on(&pods, "high").await, "general-0000");
    wait_gone(&pods, "low-1").await;
    wait_gone(&pods, "low-2").await;
    let events: Api<Event> = Api::namespaced(client, "default");
    let preempted = events
        .list(&ListParams::default().fields("reason=Preempted"))
        .await
        .unwrap();
    assert_eq!(preempted.items.len(), 2);
    assert!(
        preempted.items[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("Preempted by pod ")
    );
}

#[tokio::test]
async fn preemption_policy_never_does_not_preempt() {
    let cfg = fast(SimConfig::uniform(1, "4", "8Gi"))
        .with_priority_class("low", 10, false)
        .with_priority_class("polite", 1000, true);
    let sim = start(cfg);
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let mut low = pod("low", "3", "1Gi");
    low.spec.as_mut().unwrap().priority_class_name = Some("low".into());
    pods.create(&PostParams::default(), &low).await.unwrap();
    running_on(&pods, "low").await;
    let mut polite = pod("polite", "3", "1Gi");
    polite.spec.as_mut().unwrap().priority_class_name = Some("polite".into());
    let created = pods.create(&PostParams::default(), &polite).await.unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().preemption_policy.as_deref(),
        Some("Never")
    );
    assert_eq!(
        message_of(&pods, "polite").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    assert_eq!(phase(&pods.get("low").await.unwrap()), "Running");
}

#[tokio::test]
async fn scoring_least_allocated_spreads_most_allocated_packs() {
    let sim = start(fast(SimConfig::uniform(2, "4", "8Gi")));
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("s1", "1", "1Gi"))
        .await
        .unwrap();
    let n1 = running_on(&pods, "s1").await;
    pods.create(&PostParams::default(), &pod("s2", "1", "1Gi"))
        .await
        .unwrap();
    let n2 = running_on(&pods, "s2").await;
    assert_eq!(n1, "general-0000", "ties go to the first node by name");
    assert_ne!(n1, n2);

    let mut cfg = fast(SimConfig::uniform(2, "4", "8Gi"));
    cfg.scheduler.scoring = kube_sim::Scoring::MostAllocated;
    let sim = start(cfg);
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("m1", "1", "1Gi"))
        .await
        .unwrap();
    let n1 = running_on(&pods, "m1").await;
    pods.create(&PostParams::default(), &pod("m2", "1", "1Gi"))
        .await
        .unwrap();
    assert_eq!(running_on(&pods, "m2").await, n1);
}
