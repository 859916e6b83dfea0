//! The Spark Operator's own examples (vendored in `tests/fixtures/spark-operator/examples`)
//! expressed as job messages: every resource field they use must have a home in our model,
//! and the job must validate with the same cores, memory and executor counts.
//!
//! Fields the orchestrator owns on purpose (and therefore refuses from jobs) are listed in
//! `OWNED_BY_ORCHESTRATOR` with the reason; any other field appearing in a future example fails
//! the test until it is mapped or consciously listed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use jobs::model::{ExecutorScaling, Resources};
use jobs::quantity::{parse_cpu, parse_memory};
use jobs::{Catalog, CatalogConfig, parse_job};
use serde::Deserialize;
use serde_json::{Map, Value, json};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/fixtures/spark-operator/examples"
);

/// Spec fields a job cannot set, and why.
const OWNED_BY_ORCHESTRATOR: &[(&str, &str)] = &[
    ("mode", "always cluster mode"),
    (
        "restartPolicy",
        "retries follow the job's retry policy, decided by the orchestrator",
    ),
    (
        "timeToLiveSeconds",
        "retention is the orchestrator's policy",
    ),
    (
        "batchScheduler",
        "the orchestrator is the queue; pods use the default scheduler",
    ),
    ("batchSchedulerOptions", "the orchestrator is the queue"),
    ("pythonVersion", "Spark 3+ runs Python 3 only"),
    (
        "driver.serviceAccount",
        "service accounts are per-namespace admin settings",
    ),
    ("driver.securityContext", "pod security is an admin setting"),
    (
        "executor.securityContext",
        "pod security is an admin setting",
    ),
    (
        "driver.template",
        "pod templates would bypass the capacity footprint",
    ),
    (
        "executor.template",
        "pod templates would bypass the capacity footprint",
    ),
    ("driver.coreLimit", "CPU limits are an admin setting"),
    ("executor.coreLimit", "CPU limits are an admin setting"),
];

fn catalog() -> Catalog {
    let config: CatalogConfig = toml::from_str(
        r#"
        [namespaces.team-a]
        [defaults]
        image = "apache/spark:3.5.3"
        spark_version = "3.5.3"
        "#,
    )
    .unwrap();
    Catalog::new(config).unwrap()
}

fn applications() -> Vec<(String, Value)> {
    let mut apps = Vec::new();
    for entry in std::fs::read_dir(FIXTURES).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap();
            let spec = match v["kind"].as_str() {
                Some("SparkApplication") => v["spec"].clone(),
                Some("ScheduledSparkApplication") => v["spec"]["template"].clone(),
                _ => continue,
            };
            let name = v["metadata"]["name"].as_str().unwrap().to_owned();
            apps.push((name, spec));
        }
    }
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        apps.len() >= 10,
        "expected the vendored examples, found {}",
        apps.len()
    );
    apps
}

fn owned(key: &str) -> bool {
    OWNED_BY_ORCHESTRATOR.iter().any(|(k, _)| *k == key)
}

/// Maps a role (`driver`/`executor`) to our explicit resources; returns the volume mounts seen.
fn role(
    spec: &Map<String, Value>,
    role: &str,
    out: &mut Map<String, Value>,
    unmapped: &mut Vec<String>,
) -> Vec<Value> {
    let mut mounts = Vec::new();
    let mut r = Map::new();
    for (k, v) in spec[role].as_object().unwrap() {
        let key = format!("{role}.{k}");
        match k.as_str() {
            "cores" if !spec[role].as_object().unwrap().contains_key("coreRequest") => {
                r.insert("cores".into(), v.clone());
            }
            "cores" => {}
            "coreRequest" => {
                r.insert("cores".into(), v.clone());
            }
            "memory" | "memoryOverhead" | "instances" => {
                r.insert(k.clone(), v.clone());
            }
            "labels" => {
                let tags = out.entry("tags").or_insert_with(|| json!({}));
                for (lk, lv) in v.as_object().unwrap() {
                    tags[lk] = lv.clone();
                }
            }
            "volumeMounts" => mounts.extend(v.as_array().unwrap().iter().cloned()),
            _ if owned(&key) => {}
            _ => unmapped.push(key),
        }
    }
    out.insert(role.into(), Value::Object(r));
    mounts
}

fn to_job(name: &str, spec: &Value) -> (Value, Vec<String>) {
    let spec = spec.as_object().unwrap();
    let mut out = Map::new();
    let mut unmapped = Vec::new();
    out.insert("apiVersion".into(), json!("v1"));
    out.insert("name".into(), json!(name));
    out.insert("namespace".into(), json!("team-a"));
    let mut mounts = Vec::new();
    for (k, v) in spec {
        match k.as_str() {
            "type"
            | "image"
            | "imagePullPolicy"
            | "mainClass"
            | "mainApplicationFile"
            | "arguments"
            | "sparkVersion"
            | "sparkConf"
            | "hadoopConf"
            | "deps" => {
                out.insert(k.clone(), v.clone());
            }
            "driver" | "executor" => mounts.extend(role(spec, k, &mut out, &mut unmapped)),
            "dynamicAllocation" | "volumes" => {}
            _ if owned(k) => {}
            _ => unmapped.push(k.clone()),
        }
    }
    if let Some(da) = spec
        .get("dynamicAllocation")
        .filter(|da| da["enabled"] == json!(true))
    {
        // Spark starts max(instances, initialExecutors, minExecutors) executors.
        let executor = out["executor"].as_object_mut().unwrap();
        let instances = executor
            .remove("instances")
            .and_then(|v| v.as_u64())
            .unwrap_or(0);
        let initial = da["initialExecutors"].as_u64().unwrap_or(0).max(instances);
        let mut d = json!({"maxExecutors": da["maxExecutors"]});
        if let Some(min) = da.get("minExecutors") {
            d["minExecutors"] = min.clone();
        }
        if initial > 0 {
            d["initialExecutors"] = json!(initial);
        }
        executor.insert("dynamicAllocation".into(), d);
    }
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        let mut ours = Vec::new();
        for v in volumes {
            let name = v["name"].as_str().unwrap();
            let Some(mount) = mounts.iter().find(|m| m["name"] == json!(name)) else {
                continue;
            };
            let mut vol = json!({"name": name, "mountPath": mount["mountPath"]});
            for source in ["emptyDir", "configMap", "persistentVolumeClaim", "secret"] {
                if let Some(s) = v.get(source) {
                    vol[source] = s.clone();
                }
            }
            ours.push(vol);
        }
        out.insert("volumes".into(), Value::Array(ours));
    }
    (Value::Object(out), unmapped)
}

#[test]
fn every_spark_operator_example_is_expressible_as_a_job() {
    let catalog = catalog();
    for (name, spec) in applications() {
        let (message, unmapped) = to_job(&name, &spec);
        assert!(
            unmapped.is_empty(),
            "{name}: spec fields with no home in the job model: {unmapped:?}"
        );
        let job = parse_job(message.to_string().as_bytes(), &catalog)
            .unwrap_or_else(|r| panic!("{name}: {message}\n{:#?}", r.problems));

        let check = |role: &str, resources: &Resources| {
            let Resources::Explicit { cores, memory, .. } = resources else {
                panic!("{name}: explicit resources expected")
            };
            let s = &spec[role];
            let want_cpu = match (&s["coreRequest"], &s["cores"]) {
                (Value::String(req), _) => parse_cpu(req).unwrap(),
                (_, n) => parse_cpu(&n.to_string()).unwrap(),
            };
            assert_eq!(*cores, want_cpu, "{name} {role} cores");
            assert_eq!(
                *memory,
                parse_memory(s["memory"].as_str().unwrap()).unwrap(),
                "{name} {role} memory"
            );
        };
        check("driver", &job.driver.resources);
        check("executor", &job.executor.resources);

        let da_enabled = spec["dynamicAllocation"]["enabled"] == json!(true);
        match job.executor.scaling {
            ExecutorScaling::Instances(n) => {
                assert!(!da_enabled, "{name}");
                assert_eq!(
                    u64::from(n),
                    spec["executor"]["instances"].as_u64().unwrap_or(1),
                    "{name}"
                );
            }
            ExecutorScaling::DynamicAllocation(da) => {
                assert!(da_enabled, "{name}");
                assert_eq!(
                    u64::from(da.max_executors),
                    spec["dynamicAllocation"]["maxExecutors"].as_u64().unwrap(),
                    "{name}"
                );
            }
        }
        let volumes = spec["volumes"].as_array().map_or(0, Vec::len);
        assert_eq!(
            job.volumes.len(),
            volumes,
            "{name}: every mounted volume is expressible"
        );
    }
}
