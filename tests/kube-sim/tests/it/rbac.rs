//! Authentication and RBAC through the real kube client and kubectl: 401s, 403s with
//! the API server's words, RBAC objects served and enforced as they change, the access
//! log, SelfSubjectAccessReview, manifests loaded at start, the binary's kubeconfigs.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube_sim::{AccessRecord, AuthConfig, SimConfig, SimHandle};
use serde_json::{Value, json};

use crate::kubectl::kubectl_bin;
use crate::support::*;

pub const SA: &str = "system:serviceaccount:ops:orch";

/// What the daemon-like ServiceAccount `ops/orch` may do.
pub const POLICY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: orch-nodes}
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: orch-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: orch-nodes}
subjects:
- {kind: ServiceAccount, name: orch, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: orch-pods}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: orch-pods, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: orch-pods}
subjects:
- {kind: ServiceAccount, name: orch, namespace: ops}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: leader, namespace: ops}
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, update, patch]
  resourceNames: [orch-leader]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: leader, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: leader}
subjects:
- {kind: ServiceAccount, name: orch, namespace: ops}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: skipped-because-not-served, namespace: ops}
spec: {}
"#;

pub fn auth() -> AuthConfig {
    AuthConfig::new()
        .admin("admin-token", "kube-admin")
        .service_account("orch-token", "ops", "orch")
        .user("nobody-token", "nobody", &[])
}

pub fn sim() -> SimHandle {
    start(
        SimConfig::uniform(1, "4", "16Gi")
            .with_namespace("team-a")
            .with_namespace("team-b")
            .with_auth(auth())
            .with_manifest_yaml(POLICY)
            .unwrap(),
    )
}

/// The DER bytes of a PEM certificate.
fn ca_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn status(r: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    api_error(r.expect_err("expected the request to be refused"))
}

#[tokio::test]
async fn missing_or_unknown_tokens_get_401() {
    let sim = sim();
    for token in ["wrong", "admin-token2", "Bearer admin-token"] {
        let c = sim.client_with_token(token).unwrap();
        let s = status(Api::<Pod>::all(c).list(&ListParams::default()).await);
        assert_eq!(
            (s.code, s.reason.as_str(), s.message.as_str()),
            (401, "Unauthorized", "Unauthorized")
        );
    }
    // No Authorization header at all, on the API, discovery and an unknown path.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Over TLS (trusting the simulator's CA) and over plain HTTP on the same port.
    let mut tls = kube::Config::new(sim.url().parse().unwrap());
    let pem = sim.ca_pem().unwrap();
    tls.root_cert = Some(vec![ca_der(&pem)]);
    let plain = kube::Config::new(sim.http_url().parse().unwrap());
    for config in [tls, plain] {
        let anonymous = kube::Client::try_from(config).unwrap();
        for path in ["/api/v1/pods", "/apis", "/version", "/no/such/path"] {
            let req = http::Request::get(path).body(Vec::new()).unwrap();
            let s = api_error(anonymous.request_text(req).await.unwrap_err());
            assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized"), "{path}");
        }
    }
    // The admin client (SimHandle::client) passes.
    let pods = Api::<Pod>::all(sim.client().unwrap());
    pods.list(&ListParams::default()).await.unwrap();
}

#[tokio::test]
async fn service_account_is_held_to_its_roles() {
    let sim = sim();
    let c = sim.client_as("ops/orch").unwrap();
    // Granted: cluster-wide node reads, pods in team-a only.
    Api::<Node>::all(c.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let pods_a = Api::<Pod>::namespaced(c.clone(), "team-a");
    pods_a.list(&ListParams::default()).await.unwrap();
    pods_a
        .create(&PostParams::default(), &pod("p1", "100m", "64Mi"))
        .await
        .unwrap();
    pods_a.get("p1").await.unwrap();
    // Refused, in the API server's words.
    let s = status(
        Api::<Pod>::all(c.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(s.code, 403);
    assert_eq!(s.reason, "Forbidden");
    assert_eq!(
        s.message,
        format!(
            r#"pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" at the cluster scope"#
        )
    );
    let s = status(Api::<Pod>::namespaced(c.clone(), "team-b").get("x").await);
    assert_eq!(
        s.message,
        format!(
            r#"pods "x" is forbidden: User "{SA}" cannot get resource "pods" in API group "" in the namespace "team-b""#
        )
    );
    let d = s.details.unwrap();
    assert_eq!(
        (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
        ("x", "", "pods")
    );
    let s = status(pods_a.delete("p1", &DeleteParams::default()).await);
    assert!(
        s.message.contains(r#"cannot delete resource "pods""#),
        "{}",
        s.message
    );
    let s = status(
        pods_a
            .patch_status(
                "p1",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {}})),
            )
            .await,
    );
    assert_eq!(
        s.message,
        format!(
            r#"pods "p1" is forbidden: User "{SA}" cannot patch resource "pods/status" in API group "" in the namespace "team-a""#
        )
    );
    let s = status(Api::<Namespace>::all(c.clone()).get("team-a").await);
    assert_eq!(
        s.message,
        format!(
            r#"namespaces "team-a" is forbidden: User "{SA}" cannot get resource "namespaces" in API group "" in the namespace "team-a""#
        )
    );
    // resourceNames: the named lease only; create has no name and needs its own rule.
    let leases = Api::<Lease>::namespaced(c.clone(), "ops");
    let lease: Lease =
        serde_json::from_value(json!({"metadata": {"name": "orch-leader"}, "spec": {}})).unwrap();
    leases.create(&PostParams::default(), &lease).await.unwrap();
    leases.get("orch-leader").await.unwrap();
    let s = status(leases.get("other").await);
    assert!(
        s.message
            .starts_with(r#"leases.coordination.k8s.io "other" is forbidden"#),
        "{}",
        s.message
    );
    let s = status(leases.list(&ListParams::default()).await);
    assert!(s.message.contains("cannot list resource"), "{}", s.message);
    // A user with no bindings: discovery yes, resources no.
    let nobody = sim.client_with_token("nobody-token").unwrap();
    nobody.apiserver_version().await.unwrap();
    let s = status(Api::<Node>::all(nobody).list(&ListParams::default()).await);
    assert_eq!(
        s.message,
        r#"nodes is forbidden: User "nobody" cannot list resource "nodes" in API group "" at the cluster scope"#
    );
}

#[tokio::test]
async fn rbac_objects_are_served_and_enforced_as_they_change() {
    let sim = sim();
    let admin = sim.client().unwrap();
    let orch = sim.client_as("system:serviceaccount:ops:orch").unwrap();
    let pods_b = Api::<Pod>::namespaced(orch.clone(), "team-b");
    status(pods_b.list(&ListParams::default()).await);
    let roles = Api::<Role>::namespaced(admin.clone(), "team-b");
    let role: Role = serde_json::from_value(json!({"metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}))
    .unwrap();
    roles.create(&PostParams::default(), &role).await.unwrap();
    let rbs = Api::<RoleBinding>::namespaced(admin.clone(), "team-b");
    let rb: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "r"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "orch", "namespace": "ops"}]}))
    .unwrap();
    rbs.create(&PostParams::default(), &rb).await.unwrap();
    pods_b.list(&ListParams::default()).await.unwrap();
    // Narrow the role: list goes away at once.
    roles
        .patch(
            "r",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
            ),
        )
        .await
        .unwrap();
    status(pods_b.list(&ListParams::default()).await);
    // A binding to a role that is gone: the denial says why.
    roles.delete("r", &DeleteParams::default()).await.unwrap();
    let s = status(pods_b.get("x").await);
    assert!(
        s.message
            .ends_with(r#": RBAC: role.rbac.authorization.k8s.io "r" not found"#),
        "{}",
        s.message
    );
    // The bootstrap policy is there; cluster-wide kinds list.
    let crs = Api::<ClusterRole>::all(admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let names: Vec<_> = crs
        .items
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect();
    for n in [
        "cluster-admin",
        "system:discovery",
        "system:basic-user",
        "orch-pods",
    ] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    let crb = Api::<ClusterRoleBinding>::all(admin.clone())
        .get("orch-nodes")
        .await
        .unwrap();
    assert_eq!(crb.role_ref.name, "orch-nodes");
    // Watching RBAC objects works like any kind.
    let all_rbs = Api::<RoleBinding>::all(admin.clone());
    let listed = all_rbs.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 3, "team-a, ops and team-b bindings");
    // Invalid RBAC objects are refused by the decoder.
    let bad = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "bad"}, "rules": "everything"});
    let req = http::Request::post("/apis/rbac.authorization.k8s.io/v1/clusterroles")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&bad).unwrap())
        .unwrap();
    let e = api_error(admin.request::<Value>(req).await.unwrap_err());
    assert_eq!(e.code, 400, "{}", e.message);
}

#[tokio::test]
async fn access_log_records_what_each_identity_used() {
    let sim = sim();
    let orch = sim.client_as("ops/orch").unwrap();
    let pods = Api::<Pod>::namespaced(orch.clone(), "team-a");
    pods.list(&ListParams::default()).await.unwrap();
    pods.list(&ListParams::default()).await.unwrap();
    pods.create(&PostParams::default(), &pod("p", "100m", "64Mi"))
        .await
        .unwrap();
    Api::<Node>::all(orch.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let _ = Api::<Pod>::all(orch.clone())
        .list(&ListParams::default())
        .await; // refused: not recorded
    let mine: Vec<_> = sim
        .access_log()
        .into_iter()
        .filter(|e| e.record.user == SA)
        .collect();
    let rec = |verb: &str, resource: &str, ns: Option<&str>| AccessRecord {
        user: SA.into(),
        verb: verb.into(),
        group: "".into(),
        resource: resource.into(),
        subresource: "".into(),
        namespace: ns.map(String::from),
    };
    let got: Vec<(AccessRecord, u64)> = mine.iter().map(|e| (e.record.clone(), e.count)).collect();
    assert_eq!(
        got,
        vec![
            (rec("create", "pods", Some("team-a")), 1),
            (rec("list", "nodes", None), 1),
            (rec("list", "pods", Some("team-a")), 2),
        ]
    );
    // The same over the admin endpoint, then cleared.
    let admin = sim.client().unwrap();
    let v = http(&admin, "GET", "/sim/access", None).await;
    assert_eq!(v["enabled"], true);
    let entries = v["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["user"] == SA
            && e["verb"] == "list"
            && e["resource"] == "pods"
            && e["apiGroup"] == ""
            && e["namespace"] == "team-a"
            && e["count"] == 2),
        "{v}"
    );
    http(&admin, "DELETE", "/sim/access", None).await;
    assert!(sim.access_log().iter().all(|e| e.record.user != SA));
}

#[tokio::test]
async fn self_subject_access_review_answers_for_the_caller() {
    let sim = sim();
    let orch = sim.client_as("ops/orch").unwrap();
    let review = |ns: &str, verb: &str, resource: &str| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource}}})
    };
    for (ns, verb, resource, allowed) in [
        ("team-a", "list", "pods", true),
        ("team-b", "list", "pods", false),
        ("", "watch", "nodes", true),
        ("", "delete", "nodes", false),
    ] {
        let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&review(ns, verb, resource)).unwrap())
            .unwrap();
        let v: Value = orch.request(req).await.unwrap();
        assert_eq!(
            v["status"]["allowed"], allowed,
            "{ns} {verb} {resource}: {v}"
        );
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
    }
    // Too large → 413; GET → 405.
    let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .header("content-type", "application/json")
        .body(vec![b' '; 2 << 20])
        .unwrap();
    let e = api_error(orch.request::<Value>(req).await.unwrap_err());
    assert_eq!(e.code, 413, "{}", e.message);
    let req = http::Request::get("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
        .body(vec![])
        .unwrap();
    let e = api_error(orch.request::<Value>(req).await.unwrap_err());
    assert_eq!(e.code, 405, "{}", e.message);
    // Neither attribute set → 422; not an object → 400.
    for (body, code) in [(json!({"spec": {}}), 422), (json!([1]), 400)] {
        let req = http::Request::post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        let e = api_error(orch.request::<Value>(req).await.unwrap_err());
        assert_eq!(e.code, code, "{body}: {}", e.message);
    }
}

#[tokio::test]
async fn kubectl_as_admin_and_as_the_service_account() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let admin_kc = dir.path().join("admin");
    let sa_kc = dir.path().join("sa");
    sim.write_kubeconfig(&admin_kc).unwrap();
    sim.write_kubeconfig_as("ops/orch", &sa_kc).unwrap();
    let kubectl = |kc: &std::path::Path, args: &[&str]| {
        let mut c = tokio::process::Command::new(kubectl_bin());
        c.arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .env("HOME", dir.path());
        c
    };
    let out = kubectl(&admin_kc, &["get", "clusterrolebindings"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("orch-nodes") && text.contains("ClusterRole/orch-nodes"),
        "{text}"
    );
    let out = kubectl(&sa_kc, &["get", "nodes"]).output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = kubectl(&sa_kc, &["get", "pods", "-n", "team-b"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            r#"Error from server (Forbidden): pods is forbidden: User "{SA}" cannot list resource "pods" in API group "" in the namespace "team-b""#
        )
    );
}

#[tokio::test]
async fn manifests_that_the_api_refuses_stop_the_start() {
    let cases = [
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: nowhere}\n",
            r#"manifests: Role nowhere/r: namespaces "nowhere" not found"#,
        ),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules: 5\n",
            "manifests: ClusterRole r: ClusterRole in version",
        ),
    ];
    for (yaml, want) in cases {
        let cfg = SimConfig::default().with_manifest_yaml(yaml).unwrap();
        let e = kube_sim::Simulator::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
    assert!(SimConfig::default().with_manifest_yaml("- a\n").is_err());
    let e = SimConfig::from_toml_str("[auth]\nusers = [{token = \"t\"}]\n").unwrap_err();
    assert!(
        e.to_string()
            .contains("exactly one of name or service_account"),
        "{e}"
    );
}

#[tokio::test]
async fn binary_writes_one_kubeconfig_per_identity() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let cfg = dir.path().join("cluster.toml");
    std::fs::write(
        &cfg,
        "manifests = [\"policy.yaml\"]\n[[namespaces]]\nname = \"team-a\"\n[auth]\nusers = [\n  { token = \"a\", name = \"admin\", groups = [\"system:masters\"] },\n  { token = \"o\", service_account = \"ops/orch\" },\n]\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_kube-sim");
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("--kubeconfig-out")
        .arg(dir.path().join("admin"))
        .arg("--kubeconfig-as")
        .arg(format!("ops/orch={}", dir.path().join("orch").display()))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with("kube-sim listening on"), "{first}");
    let admin = std::fs::read_to_string(dir.path().join("admin")).unwrap();
    let orch = std::fs::read_to_string(dir.path().join("orch")).unwrap();
    assert!(admin.contains("token: \"a\""), "{admin}");
    assert!(orch.contains("token: \"o\""), "{orch}");
    let run = |kc: &str, args: &[&str]| {
        let mut c = tokio::process::Command::new(kubectl_bin());
        c.arg("--kubeconfig")
            .arg(dir.path().join(kc))
            .args(args)
            .env("HOME", dir.path());
        c
    };
    let out = run("orch", &["get", "pods", "-n", "team-a"])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run("orch", &["get", "pods", "-A"]).output().await.unwrap();
    assert!(!out.status.success());
    // The kube client (as the daemon loads it) accepts the same kubeconfig: HTTPS with
    // the simulator's CA, the ServiceAccount's token.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&orch).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.scheme_str(), Some("https"));
    let client = kube::Client::try_from(config).unwrap();
    Api::<Pod>::namespaced(client.clone(), "team-a")
        .list(&ListParams::default())
        .await
        .unwrap();
    let s = status(Api::<Pod>::all(client).list(&ListParams::default()).await);
    assert_eq!(s.code, 403);
    let _ = child.kill().await;
    // An identity the configuration does not know: usage error.
    let out = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(&cfg)
        .arg("--kubeconfig-as")
        .arg("ops/ghost=/dev/null")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ops/ghost"));
}
