//! ResourceQuota admission and the quota controller's recount.

use k8s_openapi::api::core::v1::{Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, PostParams};
use kube_sim::SimConfig;
use serde_json::json;

use crate::support::*;

fn cfg(hard: &[(&str, &str)]) -> SimConfig {
    fast(
        SimConfig::uniform(4, "8", "32Gi")
            .with_namespace("team-a")
            .with_quota("team-a", "compute", hard),
    )
}

async fn used(quotas: &Api<ResourceQuota>, key: &str) -> String {
    let q = quotas.get("compute").await.unwrap();
    q.status.unwrap().used.unwrap()[key].0.clone()
}

#[tokio::test]
async fn exceeded_quota_is_403_with_the_real_message() {
    let sim = start(cfg(&[
        ("requests.cpu", "4"),
        ("requests.memory", "8Gi"),
        ("pods", "10"),
    ]));
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    let quotas: Api<ResourceQuota> = Api::namespaced(client, "team-a");
    pods.create(&PostParams::default(), &pod("p1", "2", "1Gi"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("p2", "1", "1Gi"))
        .await
        .unwrap();
    assert_eq!(used(&quotas, "requests.cpu").await, "3");
    assert_eq!(used(&quotas, "pods").await, "2");
    let e = api_error(
        pods.create(&PostParams::default(), &pod("p3", "2", "1Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "pods \"p3\" is forbidden: exceeded quota: compute, requested: requests.cpu=2, used: requests.cpu=3, limited: requests.cpu=4"
    );
    let e = api_error(
        pods.create(&PostParams::default(), &pod("p4", "3", "8Gi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"p4\" is forbidden: exceeded quota: compute, requested: requests.cpu=3,requests.memory=8Gi, used: requests.cpu=3,requests.memory=2Gi, limited: requests.cpu=4,requests.memory=8Gi"
    );
    // dry run is checked but not counted
    pods.create(
        &PostParams {
            dry_run: true,
            ..Default::default()
        },
        &pod("dry", "1", "1Gi"),
    )
    .await
    .unwrap();
    assert_eq!(used(&quotas, "requests.cpu").await, "3");
}

#[tokio::test]
async fn missing_requests_and_aliases() {
    let sim = start(cfg(&[("cpu", "2"), ("memory", "2Gi")]));
    let pods: Api<Pod> = Api::namespaced(client(&sim), "team-a");
    let bare = pod_json(
        json!({"metadata": {"name": "bare"}, "spec": {"containers": [{"name": "c1", "image": "busybox"}]}}),
    );
    let e = api_error(
        pods.create(&PostParams::default(), &bare)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"bare\" is forbidden: failed quota: compute: must specify cpu for: c1; memory for: c1"
    );
    pods.create(&PostParams::default(), &pod("a", "1500m", "1Gi"))
        .await
        .unwrap();
    let e = api_error(
        pods.create(&PostParams::default(), &pod("b", "1", "512Mi"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        e.message,
        "pods \"b\" is forbidden: exceeded quota: compute, requested: cpu=1, used: cpu=1500m, limited: cpu=2"
    );
}

#[tokio::test]
async fn usage_is_recomputed_when_pods_go_or_finish() {
    let sim = start(cfg(&[("requests.cpu", "4"), ("pods", "2")]));
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    let quotas: Api<ResourceQuota> = Api::namespaced(client, "team-a");
    let mut short = serde_json::to_value(pod("short", "1", "1Gi")).unwrap();
    short["metadata"]["annotations"] = json!({"kube-sim.dev/runtime": "5s"});
    pods.create(&PostParams::default(), &pod_json(short))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("long", "1", "1Gi"))
        .await
        .unwrap();
    let e = api_error(
        pods.create(&PostParams::default(), &pod("third", "1", "1Gi"))
            .await
            .unwrap_err(),
    );
    assert!(
        e.message
            .contains("exceeded quota: compute, requested: pods=1, used: pods=2, limited: pods=2"),
        "{}",
        e.message
    );
    // the short pod completes: it no longer counts
    wait_for(
        &pods,
        "short",
        "Succeeded",
        pod_is(|p| phase(p) == "Succeeded"),
    )
    .await;
    eventually("usage drops", async || {
        (used(&quotas, "pods").await == "1").then_some(())
    })
    .await;
    pods.create(&PostParams::default(), &pod("third", "1", "1Gi"))
        .await
        .unwrap();
    pods.delete("long", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("usage drops again", async || {
        (used(&quotas, "requests.cpu").await == "1").then_some(())
    })
    .await;
}

#[tokio::test]
async fn quota_spec_changes_are_picked_up() {
    let sim = start(cfg(&[("pods", "1")]));
    let client = client(&sim);
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team-a");
    quotas
        .patch(
            "compute",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": {"hard": {"pods": "5"}}})),
        )
        .await
        .unwrap();
    let q = eventually("status.hard follows spec.hard", async || {
        let q = quotas.get("compute").await.unwrap();
        (q.status.as_ref().unwrap().hard.as_ref().unwrap()["pods"].0 == "5").then_some(q)
    })
    .await;
    assert_eq!(q.status.unwrap().used.unwrap()["pods"].0, "0");
}

#[tokio::test]
async fn object_count_quota_for_spark_applications() {
    let sim = start(cfg(&[(
        "count/sparkapplications.sparkoperator.k8s.io",
        "1",
    )]));
    let apps = spark_api(&client(&sim), "team-a");
    let mut one = spark_app("one", json!({"kube-sim.dev/runtime": "1h"}), 1);
    one.metadata.namespace = None;
    apps.create(&PostParams::default(), &one).await.unwrap();
    let mut two = spark_app("two", json!({}), 1);
    two.metadata.namespace = None;
    let e = api_error(apps.create(&PostParams::default(), &two).await.unwrap_err());
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "sparkapplications.sparkoperator.k8s.io \"two\" is forbidden: exceeded quota: compute, requested: count/sparkapplications.sparkoperator.k8s.io=1, used: count/sparkapplications.sparkoperator.k8s.io=1, limited: count/sparkapplications.sparkoperator.k8s.io=1"
    );
}
