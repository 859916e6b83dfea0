//! Renders every kustomization of deploy/ with the real kubectl and checks the result: built-in
//! kinds with `kubernetes-validate --strict`, the Prometheus Operator kinds against their
//! vendored CRD schemas, and the rules every shipped object follows (least-privilege RBAC,
//! hardened pods, pinned images, no secret values), plus the links between objects that no
//! schema sees (probe paths the daemon serves, ports, selectors, bindings).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use deploy::crd::CrdSchema;
use deploy::manifests::{self, describe, find, of_kind};
use deploy::render::{self, repo_root};
use serde_json::Value;

const BUILT_IN_GROUPS: [&str; 7] = [
    "v1",
    "apps/v1",
    "batch/v1",
    "policy/v1",
    "rbac.authorization.k8s.io/v1",
    "scheduling.k8s.io/v1",
    "coordination.k8s.io/v1",
];

fn rendered(target: &'static str) -> &'static [Value] {
    static BASE: OnceLock<Vec<Value>> = OnceLock::new();
    static PROM: OnceLock<Vec<Value>> = OnceLock::new();
    static PREREQS: OnceLock<Vec<Value>> = OnceLock::new();
    let cell = match target {
        "base" => &BASE,
        "prometheus-operator" => &PROM,
        _ => &PREREQS,
    };
    cell.get_or_init(|| {
        let text = render::render(target).unwrap();
        manifests::load(target, &text).unwrap()
    })
}

const TARGETS: [&str; 3] = ["base", "prometheus-operator", "spark-prereqs"];

fn api_version(o: &Value) -> &str {
    o.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

fn str_at<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

#[test]
fn every_kustomization_renders_with_plain_kubectl() {
    // What `kubectl apply -k` sees: the render script adds only the PrometheusRule.
    for (dir, target) in [
        ("deploy/base", "base"),
        ("deploy/overlays/prometheus-operator", "prometheus-operator"),
        ("deploy/overlays/spark-prereqs", "spark-prereqs"),
        ("dashboards/grafana", ""),
    ] {
        let text = render::kustomize(&repo_root().join(dir)).unwrap();
        let objects = manifests::load(dir, &text).unwrap();
        assert!(!objects.is_empty(), "{dir}");
        if !target.is_empty() {
            let script = rendered(target);
            let extra: Vec<_> = script
                .iter()
                .filter(|o| !objects.contains(o))
                .map(describe)
                .collect();
            let expected: &[&str] = if target == "prometheus-operator" {
                &["PrometheusRule spark-orchestrator/spark-orchestrator"]
            } else {
                &[]
            };
            assert_eq!(extra, expected, "{dir}");
            assert_eq!(script.len(), objects.len() + expected.len(), "{dir}");
        }
    }
}

#[test]
fn built_in_kinds_validate_strictly() {
    for target in TARGETS {
        let built_in: Vec<Value> = rendered(target)
            .iter()
            .filter(|o| BUILT_IN_GROUPS.contains(&api_version(o)))
            .cloned()
            .collect();
        let others: Vec<_> = rendered(target)
            .iter()
            .filter(|o| !BUILT_IN_GROUPS.contains(&api_version(o)))
            .map(describe)
            .collect();
        let expected_others: &[&str] = if target == "prometheus-operator" {
            &[
                "ServiceMonitor spark-orchestrator/spark-orchestrator",
                "PrometheusRule spark-orchestrator/spark-orchestrator",
            ]
        } else {
            &[]
        };
        assert_eq!(
            others, expected_others,
            "{target}: kinds outside the schema checks"
        );
        render::kubernetes_validate(&built_in).unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}

#[test]
fn kubernetes_validate_is_strict_and_knows_no_custom_kinds() {
    let mut sa = find(rendered("base"), "ServiceAccount", "spark-orchestrator")
        .unwrap()
        .clone();
    sa["automountServiceAcountToken"] = Value::Bool(true);
    let err = render::kubernetes_validate(&[sa]).unwrap_err().to_string();
    assert!(err.contains("automountServiceAcountToken"), "{err}");
    let monitor = find(
        rendered("prometheus-operator"),
        "ServiceMonitor",
        "spark-orchestrator",
    )
    .unwrap()
    .clone();
    let err = render::kubernetes_validate(&[monitor])
        .unwrap_err()
        .to_string();
    assert!(err.contains("0 of 1 objects passed"), "{err}");
}

fn crd(file: &str) -> CrdSchema {
    let path = repo_root()
        .join("tests/fixtures/prometheus-operator")
        .join(file);
    CrdSchema::from_crd(file, &std::fs::read_to_string(path).unwrap(), "v1").unwrap()
}

#[test]
fn monitoring_objects_validate_against_the_vendored_crds() {
    let objects = rendered("prometheus-operator");
    for (kind, file) in [
        (
            "ServiceMonitor",
            "monitoring.coreos.com_servicemonitors.yaml",
        ),
        (
            "PrometheusRule",
            "monitoring.coreos.com_prometheusrules.yaml",
        ),
    ] {
        let schema = crd(file);
        let found = of_kind(objects, kind);
        assert_eq!(found.len(), 1, "{kind}");
        assert_eq!(schema.validate(found[0]), Vec::<String>::new(), "{kind}");
        // The same object with a typo must not pass.
        let mut typo = found[0].clone();
        typo["spec"]["endpoint"] = Value::Array(vec![]);
        assert!(!schema.validate(&typo).is_empty(), "{kind} with a typo");
    }
}

#[test]
fn the_prometheus_rule_is_alerts_yml_itself() {
    let rule = find(
        rendered("prometheus-operator"),
        "PrometheusRule",
        "spark-orchestrator",
    )
    .unwrap();
    let text =
        std::fs::read_to_string(repo_root().join("dashboards/prometheus/alerts.yml")).unwrap();
    let alerts: Value = serde_yaml_ng::from_str(&text).unwrap();
    assert_eq!(rule["spec"], alerts);
    let shipped = dashboards::rules::RuleFile::shipped().unwrap();
    assert_eq!(
        rule.pointer("/spec/groups/0/rules")
            .and_then(Value::as_array)
            .map(Vec::len),
        Some(shipped.rules().count())
    );
    // The ServiceMonitor's job label (the Service's name) is the one the alerts select.
    let service = of_kind(rendered("prometheus-operator"), "Service");
    let job = str_at(service[0], "/metadata/name");
    assert!(
        text.contains(&format!("job=\"{job}\"")),
        "alerts.yml selects job {job:?}"
    );
    let monitor = of_kind(rendered("prometheus-operator"), "ServiceMonitor")[0];
    assert!(
        monitor.pointer("/spec/jobLabel").is_none(),
        "the job label stays the Service name"
    );
}

#[test]
fn every_grafana_dashboard_ships_as_a_labelled_config_map() {
    let dir = repo_root().join("dashboards/grafana");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let maps: Vec<&Value> = of_kind(rendered("prometheus-operator"), "ConfigMap")
        .into_iter()
        .filter(|m| m.pointer("/metadata/labels/grafana_dashboard").is_some())
        .collect();
    let mut shipped = Vec::new();
    for m in &maps {
        assert_eq!(
            str_at(m, "/metadata/labels/grafana_dashboard"),
            "1",
            "{}",
            describe(m)
        );
        let data = m["data"].as_object().unwrap();
        assert_eq!(data.len(), 1, "{}", describe(m));
        for (name, body) in data {
            let file = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_eq!(body.as_str(), Some(file.as_str()), "{name}");
            shipped.push(name.clone());
        }
    }
    shipped.sort();
    assert_eq!(shipped, files);
}

#[test]
fn shipped_objects_follow_the_rules() {
    for target in TARGETS {
        let objects = rendered(target);
        assert_eq!(
            manifests::rbac_problems(objects),
            Vec::<String>::new(),
            "{target}"
        );
        assert_eq!(
            manifests::image_problems(objects),
            Vec::<String>::new(),
            "{target}"
        );
        assert_eq!(
            manifests::secret_problems(objects),
            Vec::<String>::new(),
            "{target}"
        );
        assert!(
            of_kind(objects, "Secret").is_empty(),
            "{target}: no Secret objects at all"
        );
        if target != "spark-prereqs" {
            assert_eq!(
                manifests::pod_security_problems(objects),
                Vec::<String>::new(),
                "{target}"
            );
        }
    }
}

fn daemon() -> &'static Value {
    find(rendered("base"), "Deployment", "spark-orchestrator").unwrap()
}

fn container(workload: &Value) -> &Value {
    &workload.pointer("/spec/template/spec/containers").unwrap()[0]
}

fn env<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
}

#[test]
fn the_daemon_runs_two_replicas_with_probes_the_router_serves() {
    let d = daemon();
    assert_eq!(d.pointer("/spec/replicas"), Some(&Value::from(2)));
    let c = container(d);
    let routes: BTreeSet<&str> = orchestrator::http::routes()
        .iter()
        .filter(|r| r.method.as_str() == "GET")
        .map(|r| r.path)
        .collect();
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let p = &c[probe]["httpGet"];
        assert_eq!(p["path"], path, "{probe}");
        assert!(
            routes.contains(path),
            "{path} is not a GET route of the daemon"
        );
        assert_eq!(p["port"], "http", "{probe}");
    }
    let monitor = of_kind(rendered("prometheus-operator"), "ServiceMonitor")[0];
    let scraped = str_at(monitor, "/spec/endpoints/0/path");
    assert!(
        routes.contains(scraped),
        "{scraped} is not a GET route of the daemon"
    );
    // The listen address from the environment is the port the probes and Service use.
    let addr = env(c, "ORCHESTRATOR_HTTP_ADDR").unwrap()["value"]
        .as_str()
        .unwrap();
    let port: u16 = addr.parse::<std::net::SocketAddr>().unwrap().port();
    assert!(addr.starts_with("0.0.0.0:"), "{addr}");
    let ports = c["ports"].as_array().unwrap();
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "http" && p["containerPort"] == port)
    );
}

fn pod_labels(workload: &Value) -> &serde_json::Map<String, Value> {
    workload
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .unwrap()
}

fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let wanted = selector.as_object().unwrap();
    !wanted.is_empty() && wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn service_budget_and_monitor_find_the_daemon_pods_and_ports() {
    let objects = rendered("prometheus-operator");
    let d = daemon();
    let labels = pod_labels(d);
    let migrate = find(objects, "Job", "spark-orchestrator-migrate").unwrap();
    let service = find(objects, "Service", "spark-orchestrator").unwrap();
    assert!(selects(&service["spec"]["selector"], labels));
    assert!(
        !selects(&service["spec"]["selector"], pod_labels(migrate)),
        "the Job is not served"
    );
    let port_names: BTreeSet<&str> = container(d)["ports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut service_ports = BTreeSet::new();
    for p in service["spec"]["ports"].as_array().unwrap() {
        assert!(
            port_names.contains(p["targetPort"].as_str().unwrap()),
            "{p}"
        );
        service_ports.insert(p["name"].as_str().unwrap());
    }
    assert_eq!(service_ports, BTreeSet::from(["http", "metrics"]));
    let pdb = find(objects, "PodDisruptionBudget", "spark-orchestrator").unwrap();
    assert!(selects(&pdb["spec"]["selector"]["matchLabels"], labels));
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(pdb["metadata"]["namespace"], d["metadata"]["namespace"]);
    assert!(selects(&d["spec"]["selector"]["matchLabels"], labels));
    let monitor = of_kind(objects, "ServiceMonitor")[0];
    let service_labels = service["metadata"]["labels"].as_object().unwrap();
    assert!(selects(
        &monitor["spec"]["selector"]["matchLabels"],
        service_labels
    ));
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0],
        service["metadata"]["namespace"]
    );
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
}

#[test]
fn secrets_are_referenced_never_shipped() {
    let objects = rendered("base");
    let refs = manifests::secret_refs(objects);
    let keys: BTreeSet<&str> = refs.iter().map(|(_, _, k)| k.as_str()).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["amqp-url", "auth-tokens", "database-url"])
    );
    assert!(
        refs.iter().all(|(_, name, _)| name == "spark-orchestrator"),
        "{refs:?}"
    );
    let c = container(daemon());
    for (var, key) in [
        ("ORCHESTRATOR_DATABASE_URL", "database-url"),
        ("ORCHESTRATOR_AMQP_URL", "amqp-url"),
        ("ORCHESTRATOR_AUTH_TOKENS", "auth-tokens"),
    ] {
        let e = env(c, var).unwrap_or_else(|| panic!("{var}"));
        assert_eq!(e["valueFrom"]["secretKeyRef"]["key"], key, "{var}");
        assert!(e.get("value").is_none(), "{var} has a literal value");
    }
    // The operations guide tells how to create exactly these keys.
    let guide = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    for key in keys {
        assert!(
            guide.contains(&format!("--from-literal={key}="))
                || guide.contains(&format!("--from-file={key}=")),
            "docs/operations.md creates no {key}"
        );
    }
    let migrate = find(objects, "Job", "spark-orchestrator-migrate").unwrap();
    let m = container(migrate);
    assert_eq!(m["args"][0], "migrate");
    assert!(env(m, "ORCHESTRATOR_DATABASE_URL").is_some());
    assert_eq!(
        migrate.pointer("/spec/template/spec/automountServiceAccountToken"),
        Some(&Value::Bool(false))
    );
}

/// `kubectl apply -k … -l spark-orchestrator.dev/step=migrate` applies exactly what the
/// migration Job needs to run before the daemon: its namespace, its config and itself.
#[test]
fn the_migrate_step_holds_everything_the_job_needs() {
    let objects = rendered("base");
    let step: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            o.pointer("/metadata/labels/spark-orchestrator.dev~1step")
                == Some(&Value::from("migrate"))
        })
        .collect();
    let kinds: BTreeSet<&str> = step.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, BTreeSet::from(["ConfigMap", "Job", "Namespace"]));
    assert_eq!(step.len(), 3);
    let job = find(objects, "Job", "spark-orchestrator-migrate").unwrap();
    let config = step.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    assert_eq!(
        job.pointer("/spec/template/spec/volumes/0/configMap/name"),
        config.pointer("/metadata/name")
    );
    let ns = step.iter().find(|o| o["kind"] == "Namespace").unwrap();
    assert_eq!(job["metadata"]["namespace"], ns["metadata"]["name"]);
}

/// The RBAC in deploy/base is what kube-sim loads and enforces: plain objects whose bindings
/// all name the daemon's ServiceAccount and refer to roles present in the same render.
#[test]
fn base_rbac_binds_the_daemon_account_to_roles_it_ships() {
    let objects = rendered("base");
    let sa = find(objects, "ServiceAccount", "spark-orchestrator").unwrap();
    assert_eq!(sa["metadata"]["namespace"], "spark-orchestrator");
    let d = daemon();
    assert_eq!(
        d.pointer("/spec/template/spec/serviceAccountName"),
        Some(&Value::from("spark-orchestrator"))
    );
    let bindings: Vec<&Value> = objects
        .iter()
        .filter(|o| {
            matches!(
                o["kind"].as_str(),
                Some("RoleBinding" | "ClusterRoleBinding")
            )
        })
        .collect();
    assert!(bindings.len() >= 3);
    for b in bindings {
        let subjects = b["subjects"].as_array().unwrap();
        assert_eq!(subjects.len(), 1, "{}", describe(b));
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], "spark-orchestrator");
        assert_eq!(subjects[0]["namespace"], "spark-orchestrator");
        let kind = str_at(b, "/roleRef/kind");
        let name = str_at(b, "/roleRef/name");
        let role = find(objects, kind, name)
            .unwrap_or_else(|| panic!("{}: no {kind} {name}", describe(b)));
        if kind == "Role" {
            assert_eq!(role["metadata"]["namespace"], b["metadata"]["namespace"]);
        }
    }
    // Every grant, flattened: the list the report and kube-sim's least-privilege test use.
    let mut grants = BTreeSet::new();
    for role in objects
        .iter()
        .filter(|o| matches!(o["kind"].as_str(), Some("Role" | "ClusterRole")))
    {
        for rule in role["rules"].as_array().unwrap() {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        grants.insert(format!(
                            "{}/{} {}",
                            group.as_str().unwrap(),
                            resource.as_str().unwrap(),
                            verb.as_str().unwrap()
                        ));
                    }
                }
            }
        }
    }
    let expected = [
        "/nodes list",
        "/nodes watch",
        "/pods list",
        "/pods watch",
        "/resourcequotas list",
        "/resourcequotas watch",
        "coordination.k8s.io/leases create",
        "coordination.k8s.io/leases get",
        "coordination.k8s.io/leases patch",
        "events.k8s.io/events create",
        "scheduling.k8s.io/priorityclasses list",
        "sparkoperator.k8s.io/sparkapplications create",
        "sparkoperator.k8s.io/sparkapplications delete",
        "sparkoperator.k8s.io/sparkapplications get",
        "sparkoperator.k8s.io/sparkapplications list",
        "sparkoperator.k8s.io/sparkapplications watch",
    ];
    assert_eq!(
        grants.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
}

#[test]
fn a_broken_kustomization_fails_to_render_with_kubectl_s_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "resources:\n  - missing.yaml\n",
    )
    .unwrap();
    let err = render::kustomize(dir.path()).unwrap_err().to_string();
    assert!(err.contains("missing.yaml"), "{err}");
    // Files outside a kustomization's folder are refused: why the dashboards carry their own.
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "configMapGenerator:\n  - name: x\n    files:\n      - {}\n",
            repo_root()
                .join("dashboards/prometheus/alerts.yml")
                .display()
        ),
    )
    .unwrap();
    assert!(render::kustomize(dir.path()).is_err());
    let err = render::render("nope").unwrap_err().to_string();
    assert!(err.contains("usage"), "{err}");
}
