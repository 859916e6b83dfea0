//! Least privilege, both ways, as a later test of the daemon will check it: a workload
//! runs as a ServiceAccount; what it was refused shows as 403s, and what its roles grant
//! but it never used shows as unused grants.

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::rbac::{SA, sim};
use crate::support::*;

#[tokio::test]
async fn unused_grants_are_reported() {
    let sim = sim();
    let orch = sim.client_as("ops/orch").unwrap();
    Api::<Node>::all(orch.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let pods = Api::<Pod>::namespaced(orch.clone(), "team-a");
    pods.create(&PostParams::default(), &pod("p", "100m", "64Mi"))
        .await
        .unwrap();
    pods.get("p").await.unwrap();
    let leases = Api::<Lease>::namespaced(orch.clone(), "ops");
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "orch-leader"}})).unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    let grants = sim.grants("ops/orch").unwrap();
    let unused: Vec<(Option<&str>, &str, &str, &str)> = grants
        .iter()
        .filter(|(_, used)| !used)
        .map(|(g, _)| {
            (
                g.namespace.as_deref(),
                g.verb.as_str(),
                g.group.as_str(),
                g.resource.as_str(),
            )
        })
        .collect();
    assert_eq!(
        unused,
        [
            (None, "get", "", "nodes"),
            (None, "watch", "", "nodes"),
            (Some("ops"), "get", "coordination.k8s.io", "leases"),
            (Some("ops"), "patch", "coordination.k8s.io", "leases"),
            (Some("ops"), "update", "coordination.k8s.io", "leases"),
            (Some("team-a"), "list", "", "pods"),
            (Some("team-a"), "watch", "", "pods"),
        ]
    );
    let used: Vec<_> = grants
        .iter()
        .filter(|(_, u)| *u)
        .map(|(g, _)| (g.verb.as_str(), g.resource.as_str()))
        .collect();
    assert_eq!(
        used,
        [
            ("list", "nodes"),
            ("create", "leases"),
            ("create", "pods"),
            ("get", "pods")
        ]
    );
    // The same over the admin endpoint (what a test driving the binary reads).
    let admin = sim.client().unwrap();
    let v = http(
        &admin,
        "GET",
        "/sim/access/grants?user=system:serviceaccount:ops:orch",
        None,
    )
    .await;
    assert_eq!(v["grants"].as_array().unwrap().len(), grants.len());
    assert!(
        v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["verb"] == "watch"
                && g["resource"] == "nodes"
                && g["used"] == false
                && g["namespace"].is_null()
                && g["via"]
                    .as_str()
                    .unwrap()
                    .starts_with("ClusterRoleBinding orch-nodes")),
        "{v}"
    );
    assert!(sim.grants("ops/ghost").is_err());
    assert!(sim.access_log().iter().any(|e| e.record.user == SA));
}

#[tokio::test]
async fn watches_stream_over_tls_for_a_service_account() {
    let sim = sim();
    let admin = Api::<Pod>::namespaced(sim.client().unwrap(), "team-a");
    let orch = Api::<Pod>::namespaced(sim.client_as("ops/orch").unwrap(), "team-a");
    admin
        .create(&PostParams::default(), &pod("w", "100m", "64Mi"))
        .await
        .unwrap();
    // A watch by name over HTTPS: resourceNames-style attributes, chunked TLS stream.
    let wp = WatchParams::default().fields("metadata.name=w");
    let mut stream = orch.watch(&wp, "0").await.unwrap().boxed();
    let first = tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Added(p) => assert_eq!(p.metadata.name.as_deref(), Some("w")),
        other => panic!("expected ADDED, got {other:?}"),
    }
    let watched = sim
        .access_log()
        .into_iter()
        .any(|e| e.record.user == SA && e.record.verb == "watch" && e.record.resource == "pods");
    assert!(watched);
    // Outside team-a the same watch is refused before it starts.
    let other = Api::<Pod>::namespaced(sim.client_as("ops/orch").unwrap(), "team-b");
    let e = api_error(other.watch(&wp, "0").await.err().expect("watch refused"));
    assert_eq!(
        e.message,
        format!(
            r#"pods "w" is forbidden: User "{SA}" cannot watch resource "pods" in API group "" in the namespace "team-b""#
        )
    );
}
