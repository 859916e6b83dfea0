//! Deletion through the kube client: collections, namespaces, graceful pods, cascades.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::support::*;

fn cfg() -> kube_sim::SimConfig {
    fast(kube_sim::SimConfig::uniform(2, "4", "16Gi"))
}

#[tokio::test]
async fn delete_collection_and_namespace_lifecycle() {
    let sim = start(cfg().with_namespace("scratch"));
    let client = client(&sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "scratch");
    for i in 0..4 {
        let mut p = pod(&format!("d{i}"), "10m", "1Mi");
        p.metadata
            .labels
            .get_or_insert_default()
            .insert("batch".into(), (i % 2).to_string());
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let out = pods
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default().labels("batch=0"),
        )
        .await
        .unwrap();
    let deleted = out.left().unwrap();
    assert_eq!(deleted.items.len(), 2);
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns = nss
        .delete("scratch", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    wait_gone(&nss, "scratch").await;
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn graceful_pod_deletion_sets_deletion_timestamp_then_goes() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    pods.create(&PostParams::default(), &pod("g", "10m", "1Mi"))
        .await
        .unwrap();
    wait_for(&pods, "g", "Running", pod_is(|p| phase(p) == "Running")).await;
    let out = pods
        .delete("g", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(out.metadata.deletion_timestamp.is_some());
    assert_eq!(out.metadata.deletion_grace_period_seconds, Some(30));
    wait_gone(&pods, "g").await;
}

#[tokio::test]
async fn owner_references_cascade_in_background_and_orphan() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    let owner = pods
        .create(&PostParams::default(), &pod("owner", "10m", "1Mi"))
        .await
        .unwrap();
    let oref = json!([{"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}]);
    for name in ["dep1", "dep2"] {
        let mut p = serde_json::to_value(pod(name, "10m", "1Mi")).unwrap();
        p["metadata"]["ownerReferences"] = oref.clone();
        pods.create(&PostParams::default(), &pod_json(p))
            .await
            .unwrap();
    }
    // orphan dep2 first by deleting a second owner? Use Orphan on a fresh owner instead.
    pods.delete("owner", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    wait_gone(&pods, "dep1").await;
    wait_gone(&pods, "dep2").await;

    let owner = pods
        .create(&PostParams::default(), &pod("owner2", "10m", "1Mi"))
        .await
        .unwrap();
    let mut p = serde_json::to_value(pod("kept", "10m", "1Mi")).unwrap();
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Pod", "name": "owner2", "uid": owner.metadata.uid.unwrap()}]);
    pods.create(&PostParams::default(), &pod_json(p))
        .await
        .unwrap();
    pods.delete("owner2", &DeleteParams::orphan().grace_period(0))
        .await
        .unwrap();
    wait_gone(&pods, "owner2").await;
    let kept = pods.get("kept").await.unwrap();
    assert!(
        kept.metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn foreground_deletion_removes_dependents_first() {
    let sim = start(fast(kube_sim::SimConfig::uniform(2, "8", "32Gi")));
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    apps.create(
        &PostParams::default(),
        &spark_app("fg", json!({"kube-sim.dev/runtime": "1h"}), 2),
    )
    .await
    .unwrap();
    eventually("driver and executors running", async || {
        let l = pods
            .list(&ListParams::default().labels("sparkoperator.k8s.io/app-name=fg"))
            .await
            .unwrap();
        (l.items.len() == 3 && l.items.iter().all(|p| phase(p) == "Running")).then_some(())
    })
    .await;
    let out = apps
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    let app = out
        .left()
        .expect("a foreground delete returns the object, still there");
    assert!(app.metadata.deletion_timestamp.is_some());
    assert!(
        app.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    eventually("app gone", async || {
        apps.get_opt("fg").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        pods.list(&ListParams::default().labels("sparkoperator.k8s.io/app-name=fg"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
