//! Leases: optimistic concurrency, server-side apply conflicts, kube-lease-manager.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_lease_manager::LeaseManagerBuilder;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn lease_updates_need_a_resource_version_and_apply_conflicts() {
    let sim = start(fast(kube_sim::SimConfig::uniform(1, "1", "1Gi")));
    let leases: Api<Lease> = Api::namespaced(client(&sim), "default");
    let l: Lease = serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {}})).unwrap();
    leases.create(&PostParams::default(), &l).await.unwrap();
    let mut no_rv: Lease =
        serde_json::from_value(json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "x"}}))
            .unwrap();
    let e = api_error(
        leases
            .replace("l", &PostParams::default(), &no_rv)
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        "Lease.coordination.k8s.io \"l\" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update"
    );
    no_rv.metadata.resource_version = Some("1".into());
    let e = api_error(
        leases
            .replace("l", &PostParams::default(), &no_rv)
            .await
            .unwrap_err(),
    );
    assert!(e.is_conflict());

    let apply = |who: &str| {
        Patch::Apply(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": who, "leaseDurationSeconds": 10}}),
        )
    };
    leases
        .patch("l", &PatchParams::apply("mgr-a"), &apply("a"))
        .await
        .unwrap();
    let e = api_error(
        leases
            .patch("l", &PatchParams::apply("mgr-b"), &apply("b"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
    );
    assert_eq!(e.details.unwrap().causes[0].reason, "FieldManagerConflict");
    let out = leases
        .patch("l", &PatchParams::apply("mgr-b").force(), &apply("b"))
        .await
        .unwrap();
    assert_eq!(out.spec.unwrap().holder_identity.as_deref(), Some("b"));
    let mf = out.metadata.managed_fields.unwrap();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("mgr-b")
                && m.operation.as_deref() == Some("Apply"))
    );
    // apply creates, and the same manager may re-apply different values
    leases
        .patch("fresh", &PatchParams::apply("mgr-c"), &apply("c1"))
        .await
        .unwrap();
    let out = leases
        .patch("fresh", &PatchParams::apply("mgr-c"), &apply("c2"))
        .await
        .unwrap();
    assert_eq!(out.spec.unwrap().holder_identity.as_deref(), Some("c2"));
    // apply without a field manager is refused
    let e = api_error(
        leases
            .patch("l", &PatchParams::default(), &apply("c"))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 422);
}

#[tokio::test]
async fn kube_lease_manager_elects_one_leader_and_hands_over() {
    let sim = start(fast(kube_sim::SimConfig::uniform(1, "1", "1Gi")));
    let client = client(&sim);
    let a = LeaseManagerBuilder::new(client.clone(), "leader")
        .with_namespace("default")
        .with_identity("a")
        .with_duration(5)
        .with_grace(1)
        .build()
        .await
        .unwrap();
    let b = LeaseManagerBuilder::new(client.clone(), "leader")
        .with_namespace("default")
        .with_identity("b")
        .with_duration(5)
        .with_grace(1)
        .build()
        .await
        .unwrap();
    let (mut a_rx, a_task) = a.watch().await;
    eventually("a leads", async || {
        let _ = tokio::time::timeout(Duration::from_millis(100), a_rx.changed()).await;
        (*a_rx.borrow()).then_some(())
    })
    .await;
    let (b_rx, b_task) = b.watch().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!*b_rx.borrow(), "only one leader");
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        leases
            .get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("a")
    );
    // a steps down (releases); b takes over
    drop(a_rx);
    let _ = a_task.await;
    let mut b_rx = b_rx;
    eventually("b leads", async || {
        let _ = tokio::time::timeout(Duration::from_millis(100), b_rx.changed()).await;
        (*b_rx.borrow()).then_some(())
    })
    .await;
    assert_eq!(
        leases
            .get("leader")
            .await
            .unwrap()
            .spec
            .unwrap()
            .holder_identity
            .as_deref(),
        Some("b")
    );
    drop(b_rx);
    let _ = b_task.await;
}

#[tokio::test]
async fn kube_lease_manager_fails_over_after_a_crash() {
    let sim = start(fast(kube_sim::SimConfig::uniform(1, "1", "1Gi")));
    let client = client(&sim);
    let build = |id: &'static str| {
        LeaseManagerBuilder::new(client.clone(), "crashy")
            .with_namespace("default")
            .with_identity(id)
            .with_duration(2)
            .with_grace(1)
            .build()
    };
    let a = build("a").await.unwrap();
    let (mut a_rx, a_task) = a.watch().await;
    eventually("a leads", async || {
        let _ = tokio::time::timeout(Duration::from_millis(100), a_rx.changed()).await;
        (*a_rx.borrow()).then_some(())
    })
    .await;
    // a dies without releasing: its apply ownership of the lease fields stays behind
    a_task.abort();
    let b = build("b").await.unwrap();
    let (mut b_rx, b_task) = b.watch().await;
    eventually("b takes over after the lease expired", async || {
        let _ = tokio::time::timeout(Duration::from_millis(100), b_rx.changed()).await;
        (*b_rx.borrow()).then_some(())
    })
    .await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let spec = leases.get("crashy").await.unwrap().spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    drop(b_rx);
    let _ = b_task.await;
    drop(a_rx);
}
