//! Job → `SparkApplication` (sparkoperator.k8s.io/v1beta2), sized by the [`Footprint`].
//!
//! Every field the operator turns into pod resources comes from the footprint, so the pods
//! Spark creates request exactly what the capacity checker admitted. The output is checked
//! against the operator's CRD schema in tests.

use std::collections::BTreeMap;

use jobs::catalog::{TaintEffectConfig, TolerationConfig, TolerationOperator};
use jobs::model::{Deps, ExecutorScaling, Job, VolumeSource};
use serde_json::{Map, Value, json};

use k8s_openapi::Resource as _;

use crate::footprint::{Footprint, RoleSize};
use crate::kube_apps::SparkApplication;
use crate::naming;

/// Per-deployment settings that are not part of a job.
#[derive(Debug, Clone, Default)]
pub struct EmitSettings {
    /// Service account the driver runs as (needs rights to create executor pods).
    pub service_account: Option<String>,
    /// Seconds after termination the operator deletes the finished application (history
    /// lives in the orchestrator's store).
    pub time_to_live_seconds: Option<u64>,
}

/// Builds the SparkApplication for a job's attempt.
pub fn spark_application(
    job: &Job,
    footprint: &Footprint,
    attempt: u32,
    settings: &EmitSettings,
) -> Value {
    let mut annotations: BTreeMap<String, String> = job.annotations.clone();
    annotations.insert(naming::JOB_ID_LABEL.into(), job.id.to_string());

    let mut spec = Map::new();
    spec.insert("type".into(), json!(job.app_type.as_str()));
    spec.insert("mode".into(), json!("cluster"));
    spec.insert("image".into(), json!(job.image));
    if let Some(p) = job.image_pull_policy {
        spec.insert(
            "imagePullPolicy".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
    }
    if !job.image_pull_secrets.is_empty() {
        spec.insert("imagePullSecrets".into(), json!(job.image_pull_secrets));
    }
    if let Some(c) = &job.main_class {
        spec.insert("mainClass".into(), json!(c));
    }
    spec.insert(
        "mainApplicationFile".into(),
        json!(job.main_application_file),
    );
    if !job.arguments.is_empty() {
        spec.insert("arguments".into(), json!(job.arguments));
    }
    spec.insert("sparkVersion".into(), json!(job.spark_version));
    if !job.spark_conf.is_empty() {
        spec.insert("sparkConf".into(), json!(job.spark_conf));
    }
    if !job.hadoop_conf.is_empty() {
        spec.insert("hadoopConf".into(), json!(job.hadoop_conf));
    }
    if !job.deps.is_empty() {
        spec.insert("deps".into(), deps(&job.deps));
    }
    // Retries are the orchestrator's: each attempt is a new application with its own name.
    spec.insert("restartPolicy".into(), json!({"type": "Never"}));
    if let Some(ttl) = settings.time_to_live_seconds {
        spec.insert("timeToLiveSeconds".into(), json!(ttl));
    }

    let mut driver = role(job, &footprint.driver);
    if let Some(sa) = &settings.service_account {
        driver.insert("serviceAccount".into(), json!(sa));
    }
    spec.insert("driver".into(), Value::Object(driver));

    let mut executor = role(job, &footprint.executor);
    match job.executor.scaling {
        ExecutorScaling::Instances(n) => {
            executor.insert("instances".into(), json!(n));
        }
        ExecutorScaling::DynamicAllocation(da) => {
            spec.insert(
                "dynamicAllocation".into(),
                json!({
                    "enabled": true,
                    "initialExecutors": da.initial(),
                    "minExecutors": da.min_executors,
                    "maxExecutors": da.max_executors,
                }),
            );
        }
    }
    spec.insert("executor".into(), Value::Object(executor));
    if !job.volumes.is_empty() {
        spec.insert("volumes".into(), volumes(job));
    }

    json!({
        "apiVersion": SparkApplication::API_VERSION,
        "kind": SparkApplication::KIND,
        "metadata": {
            "name": naming::app_name(job, attempt),
            "namespace": job.namespace,
            "labels": naming::labels(job, attempt),
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// Pins an application's pods to the nodes its admission planned for them, with a required
/// node affinity on `metadata.name` (for binding placements, see
/// `capacity::CapacityChecker::binding_placements`). The scheduler cannot see the room the
/// orchestrator has promised to other admitted jobs whose pods do not exist yet; scored alone,
/// a driver or an executor lands in that room as often as not and leaves their executors
/// Pending. The driver gets its node, the executors the set of theirs (any spread over it
/// works: they are identical and the plan proved the nodes hold them). With dynamic
/// allocation, executors Spark adds beyond the admitted ones run only where those nodes have
/// room. Pods planned on a node an autoscaling pool has yet to add stay free: its name is not
/// known. `placement.nodes` is in gang order: the driver, then each executor.
pub fn pin(app: &mut Value, placement: &capacity::Placement) {
    let Some((driver, executors)) = placement.nodes.split_first() else {
        return;
    };
    let real = |n: &String| capacity::pack::parse_virtual_node(n).is_none();
    if real(driver) {
        set_affinity(app, "driver", std::slice::from_ref(driver));
    }
    if !executors.is_empty() && executors.iter().all(real) {
        let mut nodes = executors.to_vec();
        nodes.sort();
        nodes.dedup();
        set_affinity(app, "executor", &nodes);
    }
}

fn set_affinity(app: &mut Value, role: &str, nodes: &[String]) {
    if let Some(r) = app
        .pointer_mut(&format!("/spec/{role}"))
        .and_then(Value::as_object_mut)
    {
        r.insert(
            "affinity".into(),
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": nodes}
                ]}]
            }}}),
        );
    }
}

fn role(job: &Job, size: &RoleSize) -> Map<String, Value> {
    let mut r = Map::new();
    r.insert("cores".into(), json!(size.cores));
    r.insert("coreRequest".into(), json!(size.core_request.to_string()));
    r.insert("memory".into(), json!(format!("{}m", size.heap_mib)));
    if size.explicit_overhead {
        r.insert(
            "memoryOverhead".into(),
            json!(format!("{}m", size.overhead_mib)),
        );
    }
    r.insert("priorityClassName".into(), json!(size.priority_class));
    if !size.placement.node_selector.is_empty() {
        r.insert("nodeSelector".into(), json!(size.placement.node_selector));
    }
    if !size.placement.tolerations.is_empty() {
        r.insert(
            "tolerations".into(),
            Value::Array(size.placement.tolerations.iter().map(toleration).collect()),
        );
    }
    if !job.env.is_empty() {
        let env: Vec<Value> = job
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        r.insert("env".into(), Value::Array(env));
    }
    if let Some(opts) = &job.java_options {
        r.insert("javaOptions".into(), json!(opts));
    }
    if !job.volumes.is_empty() {
        let mounts: Vec<Value> = job
            .volumes
            .iter()
            .map(|v| json!({"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only}))
            .collect();
        r.insert("volumeMounts".into(), Value::Array(mounts));
    }
    r
}

fn toleration(t: &TolerationConfig) -> Value {
    let mut v = Map::new();
    if let Some(k) = &t.key {
        v.insert("key".into(), json!(k));
    }
    v.insert(
        "operator".into(),
        json!(match t.operator {
            TolerationOperator::Equal => "Equal",
            TolerationOperator::Exists => "Exists",
        }),
    );
    if let Some(val) = &t.value {
        v.insert("value".into(), json!(val));
    }
    if let Some(e) = t.effect {
        let effect = match e {
            TaintEffectConfig::NoSchedule => "NoSchedule",
            TaintEffectConfig::PreferNoSchedule => "PreferNoSchedule",
            TaintEffectConfig::NoExecute => "NoExecute",
        };
        v.insert("effect".into(), json!(effect));
    }
    if let Some(s) = t.toleration_seconds {
        v.insert("tolerationSeconds".into(), json!(s));
    }
    Value::Object(v)
}

fn deps(d: &Deps) -> Value {
    let mut v = Map::new();
    for (key, list) in [
        ("jars", &d.jars),
        ("files", &d.files),
        ("pyFiles", &d.py_files),
        ("archives", &d.archives),
        ("packages", &d.packages),
        ("excludePackages", &d.exclude_packages),
        ("repositories", &d.repositories),
    ] {
        if !list.is_empty() {
            v.insert(key.into(), json!(list));
        }
    }
    Value::Object(v)
}

fn volumes(job: &Job) -> Value {
    let vols = job.volumes.iter().map(|v| {
        let source = match &v.source {
            VolumeSource::EmptyDir {
                size_limit,
                in_memory,
            } => {
                let mut e = Map::new();
                if let Some(s) = size_limit {
                    e.insert("sizeLimit".into(), json!(kube_quantity(s.0)));
                }
                if *in_memory {
                    e.insert("medium".into(), json!("Memory"));
                }
                ("emptyDir", Value::Object(e))
            }
            VolumeSource::PersistentVolumeClaim { claim_name } => (
                "persistentVolumeClaim",
                json!({"claimName": claim_name, "readOnly": v.read_only}),
            ),
            VolumeSource::ConfigMap { name } => ("configMap", json!({"name": name})),
            VolumeSource::Secret { secret_name } => ("secret", json!({"secretName": secret_name})),
        };
        json!({"name": v.name, source.0: source.1})
    });
    Value::Array(vols.collect())
}

/// Bytes as a Kubernetes quantity (binary suffix when exact).
fn kube_quantity(bytes: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 40, "Ti"),
        (1 << 30, "Gi"),
        (1 << 20, "Mi"),
        (1 << 10, "Ki"),
    ];
    UNITS
        .iter()
        .find(|(n, _)| bytes >= *n && bytes.is_multiple_of(*n))
        .map_or_else(
            || bytes.to_string(),
            |(n, unit)| format!("{}{unit}", bytes / n),
        )
}
