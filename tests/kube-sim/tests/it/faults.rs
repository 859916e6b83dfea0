//! Fault injection and the admin API.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube_sim::{ErrorRule, FaultConfig, LatencyRule, SimConfig};
use serde_json::json;

use crate::support::*;

fn cfg() -> SimConfig {
    fast(SimConfig::uniform(2, "4", "8Gi"))
}

#[tokio::test]
async fn error_rules_inject_real_looking_errors_and_can_be_cleared() {
    let sim = start(cfg());
    let pods: Api<Pod> = Api::namespaced(client(&sim), "default");
    sim.add_error_rule(ErrorRule {
        verb: "create".into(),
        resource: "pods".into(),
        rate: 1.0,
        code: 500,
        count: Some(1),
    })
    .unwrap();
    let e = api_error(
        pods.create(&PostParams::default(), &pod("f1", "10m", "1Mi"))
            .await
            .unwrap_err(),
    );
    assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    // count exhausted
    pods.create(&PostParams::default(), &pod("f1", "10m", "1Mi"))
        .await
        .unwrap();
    sim.add_error_rule(ErrorRule {
        verb: "*".into(),
        resource: "pods".into(),
        rate: 1.0,
        code: 409,
        count: None,
    })
    .unwrap();
    let e = api_error(pods.get("f1").await.unwrap_err());
    assert!(e.is_conflict());
    sim.clear_faults();
    pods.get("f1").await.unwrap();
    assert!(sim.stats()["faultsInjected"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn admin_http_api() {
    let sim = start(cfg());
    let client = client(&sim);
    let stats = http(&client, "GET", "/sim/stats", None).await;
    assert_eq!(stats["objects"]["nodes"], 2);
    let s = http(&client, "PUT", "/sim/speed", Some(json!({"speed": 50.0}))).await;
    assert_eq!(s["speed"], 50.0);
    let before = sim.sim_time();
    http(
        &client,
        "POST",
        "/sim/clock/advance",
        Some(json!({"seconds": 3600})),
    )
    .await;
    assert!(sim.sim_time() >= before + Duration::from_secs(3600));
    let f = http(
        &client,
        "PUT",
        "/sim/faults",
        Some(
            json!({"errors": [{"verb": "list", "resource": "nodes", "rate": 1.0, "code": 403}],
        "latency": [{"verb": "get", "resource": "*", "delay": "1ms"}]}),
        ),
    )
    .await;
    assert_eq!(f["errors"][0]["code"], 403);
    let nodes: Api<Node> = Api::all(client.clone());
    let e = api_error(nodes.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(e.code, 403);
    http(&client, "DELETE", "/sim/faults", None).await;
    nodes.list(&ListParams::default()).await.unwrap();
    http(&client, "POST", "/sim/nodes/general-0001/cordon", None).await;
    assert_eq!(
        nodes
            .get("general-0001")
            .await
            .unwrap()
            .spec
            .unwrap()
            .unschedulable,
        Some(true)
    );
    http(&client, "POST", "/sim/nodes/general-0001/uncordon", None).await;
    assert_eq!(
        nodes
            .get("general-0001")
            .await
            .unwrap()
            .spec
            .unwrap()
            .unschedulable,
        None
    );
    let r = http(
        &client,
        "POST",
        "/sim/pools/general/scale",
        Some(json!({"count": 5})),
    )
    .await;
    assert_eq!(r["count"], 5);
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        5
    );
    http(&client, "DELETE", "/sim/nodes/general-0004", None).await;
    assert_eq!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    http(
        &client,
        "POST",
        "/sim/watches/expire",
        Some(json!({"count": 2})),
    )
    .await;
    assert_eq!(sim.stats()["forcedGonePending"], 2);
    http(&client, "POST", "/sim/watches/drop", Some(json!({}))).await;
    let stats = http(&client, "GET", "/sim/stats", None).await;
    assert!(
        stats["requests"]
            .as_object()
            .unwrap()
            .keys()
            .any(|k| k.starts_with("list nodes 403"))
    );
    let _ = LatencyRule {
        verb: "*".into(),
        resource: "*".into(),
        delay: Duration::from_millis(1),
    };
    let _ = FaultConfig::default();
}
