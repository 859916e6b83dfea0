//! Fidelity against artefacts nobody here wrote: every kind the simulator serves, as
//! `kubectl get -o json` prints it, passes `kubernetes-validate --strict` for
//! Kubernetes 1.33 (SparkApplications, which it cannot check, are validated against
//! the vendored CRD instead); typed k8s-openapi lists deserialise; error bodies have
//! the real `Status` shape.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, ResourceQuota};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, ListParams, PostParams};
use kube_sim::{PoolConfig, SimConfig};
use serde_json::{Value, json};

use crate::kubectl::Kubectl;
use crate::support::*;

fn populated() -> SimConfig {
    fast(
        SimConfig::default()
            .with_pool(PoolConfig::new("general", 2, "4", "16Gi"))
            .with_pool(PoolConfig::new("spot", 1, "4", "16Gi").taint("spot", "true", "NoSchedule"))
            .with_namespace("team-a")
            .with_quota(
                "team-a",
                "compute",
                &[
                    ("requests.cpu", "16"),
                    ("requests.memory", "32Gi"),
                    ("pods", "20"),
                ],
            )
            .with_priority_class("spark-high", 1000, false)
            .with_priority_class("spark-placeholder", -10, true),
    )
}

async fn populate(sim: &kube_sim::SimHandle) {
    let client = client(sim);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    pods.create(&PostParams::default(), &pod("runs", "500m", "512Mi"))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("too-big", "6", "1Gi"))
        .await
        .unwrap();
    let mut done = serde_json::to_value(pod("done", "100m", "64Mi")).unwrap();
    done["metadata"]["annotations"] = json!({"kube-sim.dev/runtime": "2s"});
    pods.create(&PostParams::default(), &pod_json(done))
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "team-a");
    leases
        .patch("leader", &kube::api::PatchParams::apply("fidelity"), &kube::api::Patch::Apply(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "spec": {"holderIdentity": "x", "leaseDurationSeconds": 15, "renewTime": "2025-01-01T00:00:00.000000Z"}})))
        .await
        .unwrap();
    let apps = spark_api(&client, "team-a");
    let mut app: kube::api::DynamicObject = serde_json::from_value(spark_pi()).unwrap();
    app.metadata.namespace = None;
    apps.create(&PostParams::default(), &app).await.unwrap();
    wait_app(&apps, "spark-pi", "COMPLETED").await;
    wait_for(
        &pods,
        "done",
        "Succeeded",
        pod_is(|p| phase(p) == "Succeeded"),
    )
    .await;
    wait_for(&pods, "runs", "Running", pod_is(|p| phase(p) == "Running")).await;
}

fn kubernetes_validate() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("kubernetes-validate");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "kubernetes-validate is not installed (not found on PATH): `pip install kubernetes-validate==1.37.0`"
    )
}

#[tokio::test]
async fn every_served_kind_passes_kubernetes_validate_strict_1_33() {
    let validator = kubernetes_validate();
    let k = Kubectl::new(populated());
    populate(&k.sim).await;
    let mut files = Vec::new();
    let mut apps = Vec::new();
    for kind in [
        "nodes",
        "namespaces",
        "pods",
        "resourcequotas",
        "events",
        "events.v1.events.k8s.io",
        "priorityclasses",
        "leases",
        "sparkapplications",
    ] {
        let out = k
            .run(&["get", kind, "-A", "-o", "json", "--show-managed-fields"])
            .await;
        let list: Value = serde_json::from_str(&out).unwrap();
        let items = list["items"].as_array().unwrap();
        assert!(!items.is_empty(), "no {kind} to validate");
        for (i, item) in items.iter().enumerate() {
            if kind == "sparkapplications" {
                apps.push(item.clone());
                continue;
            }
            let path = k
                .dir
                .path()
                .join(format!("{}-{i}.json", kind.replace('.', "_")));
            std::fs::write(&path, serde_json::to_vec_pretty(item).unwrap()).unwrap();
            files.push(path);
        }
    }
    let out = tokio::process::Command::new(&validator)
        .args(["--strict", "-k", "1.33.0"])
        .args(&files)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubernetes-validate rejected objects:\n{stdout}\n{stderr}"
    );
    // SparkApplications: kubernetes-validate has no schema for custom resources.
    for app in apps {
        assert_eq!(
            kube_sim::crd::validate_spark_application(&app),
            Ok(()),
            "{app}"
        );
    }
}

#[tokio::test]
async fn typed_lists_deserialise_into_k8s_openapi() {
    let sim = start(populated());
    populate(&sim).await;
    let client = client(&sim);
    assert!(
        !Api::<Node>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<Namespace>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<ResourceQuota>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<Event>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<PriorityClass>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        !Api::<Lease>::all(client.clone())
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // metadata-only lists (what Controller::owns uses)
    let meta = Api::<Pod>::all(client.clone())
        .list_metadata(&ListParams::default())
        .await
        .unwrap();
    assert!(meta.items.iter().all(|m| m.metadata.name.is_some()));
}

#[tokio::test]
async fn error_bodies_are_real_status_objects() {
    let sim = start(populated());
    let client = client(&sim);
    let raw = |path: &str| {
        http::Request::builder()
            .method("GET")
            .uri(path)
            .body(Vec::new())
            .unwrap()
    };
    // kube parses the body itself; parse it again strictly as metav1.Status
    let text = match client
        .request_text(raw("/api/v1/namespaces/default/pods/missing"))
        .await
    {
        Err(kube::Error::Api(s)) => serde_json::to_string(&s).unwrap(),
        other => panic!("expected 404, got {other:?}"),
    };
    let status: Status = serde_json::from_str(&text).unwrap();
    assert_eq!(status.code, Some(404));
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(status.status.as_deref(), Some("Failure"));
    let d = status.details.unwrap();
    assert_eq!(
        (d.name.as_deref(), d.kind.as_deref()),
        (Some("missing"), Some("pods"))
    );
    // unknown paths are 404 Status too, discovery documents are real shapes
    match client.request_text(raw("/apis/nope.example.com/v1")).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404, got {other:?}"),
    }
    let groups: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList =
        serde_json::from_str(&client.request_text(raw("/apis")).await.unwrap()).unwrap();
    assert!(
        groups
            .groups
            .iter()
            .any(|g| g.name == "sparkoperator.k8s.io")
    );
    let core: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList =
        serde_json::from_str(&client.request_text(raw("/api/v1")).await.unwrap()).unwrap();
    assert!(core.resources.iter().any(|r| r.name == "pods/status"));
}
