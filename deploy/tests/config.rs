//! The config the deployment ships (deploy/base/orchestrator.toml, the ConfigMap) is accepted
//! by the daemon's own parser with the environment the Deployment gives it, and agrees with
//! the manifests around it: the Lease the Role grants, the namespaces with RoleBindings and
//! Spark driver accounts, the PriorityClasses, the mount path and the shutdown grace.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

use std::collections::BTreeSet;

use deploy::manifests::{self, find, of_kind};
use deploy::render::{self, repo_root};
use orchestrator::config::Config;
use serde_json::Value;

fn config_text() -> String {
    std::fs::read_to_string(repo_root().join("deploy/base/orchestrator.toml")).unwrap()
}

fn objects(target: &str) -> Vec<Value> {
    manifests::load(target, &render::render(target).unwrap()).unwrap()
}

fn daemon(objects: &[Value]) -> &Value {
    find(objects, "Deployment", "spark-orchestrator").unwrap()
}

fn env_value(d: &Value, name: &str) -> Option<String> {
    d.pointer("/spec/template/spec/containers/0/env")?
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .map(str::to_owned)
}

/// The config as the daemon in the pod loads it: the file, then the Deployment's environment
/// (literal values as rendered; the Secret's keys with stand-in values of the right shape).
fn loaded(base: &[Value]) -> Config {
    let mut config = Config::from_toml_str(&config_text(), "deploy/base/orchestrator.toml")
        .unwrap_or_else(|e| panic!("{e}"));
    let d = daemon(base);
    let tokens = format!(
        r#"[{{"name": "ci", "token_sha256": "{}", "roles": ["submit"], "namespaces": ["team-a"]}}]"#,
        "0f".repeat(32)
    );
    config
        .apply_env(|k| match k {
            "ORCHESTRATOR_DATABASE_URL" => {
                Some("postgres://orchestrator@db:5432/orchestrator".into())
            }
            "ORCHESTRATOR_AMQP_URL" => Some("amqps://orchestrator@mq:5671/%2f".into()),
            "ORCHESTRATOR_AUTH_TOKENS" => Some(tokens.clone()),
            other => env_value(d, other),
        })
        .unwrap_or_else(|e| panic!("{e}"));
    config
}

#[test]
fn the_shipped_config_is_accepted_with_the_pod_environment() {
    let base = objects("base");
    let config = loaded(&base);
    assert_eq!(config.http.listen, "0.0.0.0:8080");
    assert_eq!(
        config.database.url,
        "postgres://orchestrator@db:5432/orchestrator"
    );
    assert_eq!(config.auth.tokens.len(), 1);
    assert!(!config.auth.disabled);
    assert!(
        config.kubernetes.kubeconfig.is_none(),
        "in-cluster credentials"
    );
    assert!(config.leader.enabled, "two replicas need the Lease");
    assert!(
        !config.database.migrate_on_start,
        "the migration Job applies the schema"
    );
    // The ConfigMap carries the file unchanged, at the path the daemon is told to read.
    let map = of_kind(&base, "ConfigMap")
        .into_iter()
        .find(|m| m["data"].get("orchestrator.toml").is_some())
        .unwrap();
    assert_eq!(
        map["data"]["orchestrator.toml"].as_str(),
        Some(config_text().as_str())
    );
    for workload in [
        daemon(&base),
        find(&base, "Job", "spark-orchestrator-migrate").unwrap(),
    ] {
        let args: Vec<&str> = workload
            .pointer("/spec/template/spec/containers/0/args")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let path = args[args.iter().position(|a| *a == "--config").unwrap() + 1];
        let mount = workload
            .pointer("/spec/template/spec/containers/0/volumeMounts")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .find(|m| m["name"] == "config")
            .unwrap();
        assert_eq!(
            format!("{}/orchestrator.toml", mount["mountPath"].as_str().unwrap()),
            path
        );
        let volume = workload
            .pointer("/spec/template/spec/volumes")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .find(|v| v["name"] == "config")
            .unwrap();
        assert_eq!(volume["configMap"]["name"], map["metadata"]["name"]);
        // The daemon's own CLI takes these arguments.
        let cli = <orchestrator::cli::Cli as clap::Parser>::try_parse_from(
            std::iter::once("orchestrator").chain(args.iter().copied()),
        )
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(cli.config.to_str(), Some(path));
    }
    // SIGTERM handling ends before Kubernetes kills the pod.
    let grace = daemon(&base)
        .pointer("/spec/template/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap();
    assert!(config.shutdown.timeout.0.as_secs() + 5 <= grace);
}

#[test]
fn a_broken_pod_environment_is_refused() {
    let mut config = Config::from_toml_str(&config_text(), "t").unwrap();
    let err = config
        .apply_env(|k| match k {
            "ORCHESTRATOR_HTTP_ADDR" => Some("0.0.0.0".into()),
            "ORCHESTRATOR_AUTH_TOKENS" => Some("[{\"name\": \"x\"}]".into()),
            _ => None,
        })
        .unwrap_err();
    let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["ORCHESTRATOR_HTTP_ADDR", "ORCHESTRATOR_AUTH_TOKENS"]);
}

fn toml_value() -> toml::Value {
    toml::from_str(&config_text()).unwrap()
}

fn names(objects: &[&Value]) -> BTreeSet<String> {
    objects
        .iter()
        .filter_map(|o| o.pointer("/metadata/name").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_lease_the_config_names_is_the_one_rbac_grants() {
    let base = objects("base");
    let config = loaded(&base);
    let role = find(&base, "Role", "spark-orchestrator-leader").unwrap();
    assert_eq!(
        role["metadata"]["namespace"],
        config.leader.lease_namespace.as_str()
    );
    let named: Vec<&Value> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("resourceNames").is_some())
        .collect();
    assert_eq!(named.len(), 1);
    assert_eq!(
        named[0]["resourceNames"],
        serde_json::json!([config.leader.lease_name])
    );
    let sa = find(&base, "ServiceAccount", "spark-orchestrator").unwrap();
    assert_eq!(
        sa["metadata"]["namespace"],
        config.leader.lease_namespace.as_str()
    );
}

#[test]
fn every_served_namespace_has_the_submit_binding_and_a_driver_account() {
    let base = objects("base");
    let prereqs = objects("spark-prereqs");
    let config = toml_value();
    let served: BTreeSet<String> = config["namespaces"]
        .as_table()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let bound: BTreeSet<String> = of_kind(&base, "RoleBinding")
        .into_iter()
        .filter(|b| b["roleRef"]["name"] == "spark-orchestrator-submit")
        .filter_map(|b| b["metadata"]["namespace"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        bound, served,
        "RoleBindings spark-orchestrator-submit in deploy/base"
    );
    let account = config["submitter"]["service_account"].as_str().unwrap();
    for kind in ["ServiceAccount", "Role", "RoleBinding"] {
        let with: BTreeSet<String> = of_kind(&prereqs, kind)
            .into_iter()
            .filter(|o| o["metadata"]["name"] == account)
            .filter_map(|o| o["metadata"]["namespace"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(with, served, "{kind} {account} in spark-prereqs");
    }
    for b in of_kind(&prereqs, "RoleBinding") {
        assert_eq!(b["subjects"][0]["name"], account);
        assert_eq!(b["subjects"][0]["namespace"], b["metadata"]["namespace"]);
    }
}

#[test]
fn every_priority_class_the_config_names_is_installed() {
    let base = objects("base");
    let config = loaded(&base);
    let prereqs = objects("spark-prereqs");
    let classes = names(&of_kind(&prereqs, "PriorityClass"));
    let file = toml_value();
    let mut wanted = BTreeSet::new();
    for level in ["high", "normal"] {
        let p = &file["priorities"][level];
        for key in ["priority_class_name", "executor_priority_class_name"] {
            if let Some(name) = p.get(key).and_then(toml::Value::as_str) {
                wanted.insert(name.to_owned());
            }
        }
    }
    wanted.insert(config.capacity.placeholders.priority_class.clone());
    assert_eq!(classes, wanted);
    let placeholder = find(
        &prereqs,
        "PriorityClass",
        &config.capacity.placeholders.priority_class,
    )
    .unwrap();
    assert_eq!(placeholder["value"], config.capacity.placeholders.priority);
    assert_eq!(placeholder["preemptionPolicy"], "Never");
    let value = |n: &str| {
        find(&prereqs, "PriorityClass", n).unwrap()["value"]
            .as_i64()
            .unwrap()
    };
    assert!(value("spark-high") > value("spark-normal"));
    assert!(value("spark-normal") > 0 && value("spark-placeholder") < 0);
}
