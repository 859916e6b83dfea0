//! The RBAC authorizer's cost per request, in a policy the size of a busy multi-tenant
//! cluster: 500 namespaces, each with 4 Roles and 4 RoleBindings (ServiceAccounts, users,
//! groups), plus 200 ClusterRoles and ClusterRoleBindings. Also one request through
//! HTTP with `[auth]` on and off (the kube client listing 100 pods).
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p kube-sim --bench rbac`
//! (figures in tests/kube-sim/README.md).

// A benchmark harness, not library code: a failed setup should abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use kube_sim::rbac::{Attributes, Identity, Policy, authorize};
use kube_sim::{AuthConfig, SimConfig, Simulator};
use serde_json::{Value, json};

const NAMESPACES: usize = 500;
const CLUSTER: usize = 200;

fn objects() -> (Vec<Value>, Vec<Value>, Vec<Value>, Vec<Value>) {
    let rule = |res: &str| json!([{"apiGroups": [""], "resources": [res], "verbs": ["get", "list", "watch"]}]);
    let (mut roles, mut croles, mut rbs, mut crbs) = (vec![], vec![], vec![], vec![]);
    for n in 0..NAMESPACES {
        let ns = format!("ns-{n}");
        for r in 0..4 {
            roles.push(json!({"metadata": {"namespace": ns, "name": format!("r{r}")}, "rules": rule(&format!("res{r}"))}));
            let subject = match r {
                0 => json!({"kind": "ServiceAccount", "name": "app", "namespace": ns}),
                1 => json!({"kind": "User", "name": format!("user-{n}")}),
                2 => json!({"kind": "Group", "name": format!("team-{}", n % 50)}),
                _ => json!({"kind": "ServiceAccount", "name": "orch", "namespace": "ops"}),
            };
            rbs.push(
                json!({"metadata": {"namespace": ns, "name": format!("b{r}")},
                "roleRef": {"kind": "Role", "name": format!("r{r}")}, "subjects": [subject]}),
            );
        }
    }
    for c in 0..CLUSTER {
        croles.push(
            json!({"metadata": {"name": format!("c{c}")}, "rules": rule(&format!("cres{c}"))}),
        );
        crbs.push(json!({"metadata": {"name": format!("c{c}")}, "roleRef": {"kind": "ClusterRole", "name": format!("c{c}")},
            "subjects": [{"kind": "Group", "name": format!("cgroup-{c}")}]}));
    }
    (roles, croles, rbs, crbs)
}

fn decide(c: &mut Criterion) {
    let (roles, croles, rbs, crbs) = objects();
    let policy = Policy::build(&roles, &croles, &rbs, &crbs);
    let mut g = c.benchmark_group("rbac");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function(
        "build policy (2,000 Roles/RoleBindings, 200 cluster)",
        |b| b.iter(|| Policy::build(&roles, &croles, &rbs, &crbs)),
    );
    // orch is bound in all 500 namespaces: the worst case for the subject index.
    let orch = Identity::service_account("ops", "orch");
    let allowed = Attributes::resource("list", "", "res3", "", "ns-250", "");
    let denied = Attributes::resource("delete", "", "res3", "", "ns-250", "x");
    g.bench_function("authorize: allowed, subject bound in 500 namespaces", |b| {
        b.iter(|| assert!(authorize(&orch, &allowed, &policy).allowed))
    });
    g.bench_function("authorize: denied, subject bound in 500 namespaces", |b| {
        b.iter(|| assert!(!authorize(&orch, &denied, &policy).allowed))
    });
    let app = Identity::service_account("ns-7", "app");
    let own = Attributes::resource("get", "", "res0", "", "ns-7", "p");
    g.bench_function("authorize: allowed, one binding", |b| {
        b.iter(|| assert!(authorize(&app, &own, &policy).allowed))
    });
    g.finish();
}

fn http(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("http");
    g.measurement_time(Duration::from_secs(5));
    for auth in [false, true] {
        let _guard = rt.enter();
        let mut cfg = SimConfig::default().with_namespace("team-a");
        if auth {
            let (roles, croles, rbs, crbs) = objects();
            let mut yaml = String::new();
            for n in 0..NAMESPACES {
                cfg = cfg.with_namespace(&format!("ns-{n}"));
            }
            for (kind, list) in [
                ("Role", &roles),
                ("ClusterRole", &croles),
                ("RoleBinding", &rbs),
                ("ClusterRoleBinding", &crbs),
            ] {
                for o in list {
                    let mut o = o.clone();
                    o["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
                    o["kind"] = json!(kind);
                    if let Some(r) = o.get_mut("roleRef") {
                        r["apiGroup"] = json!("rbac.authorization.k8s.io");
                    }
                    yaml.push_str(&serde_json::to_string(&o).unwrap());
                    yaml.push_str("\n---\n");
                }
            }
            yaml.push_str("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: orch, namespace: team-a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pods}\nsubjects: [{kind: ServiceAccount, name: orch, namespace: ops}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: pods}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [list]}]\n");
            cfg = cfg
                .with_auth(
                    AuthConfig::new()
                        .admin("root", "admin")
                        .service_account("orch", "ops", "orch"),
                )
                .with_manifest_yaml(&yaml)
                .unwrap();
        }
        let sim = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
        for i in 0..100 {
            sim.create_object(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}"), "namespace": "team-a"},
                "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}))
                .unwrap();
        }
        let client = if auth {
            sim.client_as("ops/orch").unwrap()
        } else {
            sim.client().unwrap()
        };
        let pods: Api<Pod> = Api::namespaced(client, "team-a");
        let name = if auth {
            "list 100 pods, [auth] on (HTTPS, RBAC)"
        } else {
            "list 100 pods, [auth] off (HTTP)"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    assert_eq!(
                        pods.list(&ListParams::default()).await.unwrap().items.len(),
                        100
                    )
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decide, http);
criterion_main!(benches);
