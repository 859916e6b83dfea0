//! The footprint is Spark's own arithmetic; these cases are worked by hand from Spark's rules
//! (overhead = max(factor × heap, 384 MiB), factor 0.1 JVM / 0.4 Python-R, off-heap and
//! PySpark memory on executors) and from the Spark Operator's documented examples.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeMap;

use capacity::PodRole;
use jobs::{Catalog, CatalogConfig, Job, parse_job};
use serde_json::{Value, json};
use submitter::footprint::Footprint;
use submitter::naming;
use submitter::spark_app::{EmitSettings, spark_application};

const CATALOG: &str = r#"
    [namespaces.team-a]
    [node_types.small]
    cpu = "1"
    memory = "4Gi"
    node_selector = { pool = "general" }
    spot = { node_selector = { pool = "spot" }, tolerations = [{ key = "spot", value = "true", effect = "NoSchedule" }] }
    [node_types.large]
    cpu = "3.5"
    memory = "28Gi"
    node_selector = { pool = "highmem" }
    [priorities.high]
    priority_class_name = "spark-high"
    executor_priority_class_name = "spark-high-executor"
    [defaults]
    image = "apache/spark:3.5.3"
    spark_version = "3.5.3"
"#;

fn catalog() -> Catalog {
    Catalog::new(toml::from_str::<CatalogConfig>(CATALOG).unwrap()).unwrap()
}

fn job(extra: Value) -> Job {
    let mut base = json!({
        "apiVersion": "v1",
        "name": "etl",
        "namespace": "team-a",
        "mainApplicationFile": "local:///opt/app.jar",
        "driver": {"cores": 1, "memory": "512m"},
        "executor": {"cores": 1, "memory": "512m", "instances": 2}
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    parse_job(base.to_string().as_bytes(), &catalog())
        .unwrap_or_else(|r| panic!("{:#?}", r.problems))
}

fn pods(j: &Job) -> (u64, u64) {
    let f = Footprint::of(j, &catalog()).unwrap();
    (f.driver.pod_memory_mib(), f.executor.pod_memory_mib())
}

#[test]
fn spark_memory_arithmetic() {
    let cases: Vec<(&str, Value, (u64, u64))> = vec![
        ("spark-pi (operator docs: 896Mi)", json!({}), (896, 896)),
        (
            "python 4g (operator docs: 5734Mi)",
            json!({"type": "Python", "mainApplicationFile": "local:///a.py", "driver": {"cores": 1, "memory": "4g"}, "executor": {"cores": 1, "memory": "4g", "instances": 1}}),
            (5734, 5734),
        ),
        (
            "python executor adds pyspark memory",
            json!({"type": "Python", "mainApplicationFile": "local:///a.py", "sparkConf": {"spark.executor.pyspark.memory": "512m"}, "executor": {"cores": 1, "memory": "2g", "instances": 1}}),
            (896, 2048 + 819 + 512),
        ),
        (
            "pyspark memory ignored for JVM apps",
            json!({"sparkConf": {"spark.executor.pyspark.memory": "512m"}}),
            (896, 896),
        ),
        (
            "off-heap counted when enabled",
            json!({"sparkConf": {"spark.memory.offHeap.enabled": "true", "spark.memory.offHeap.size": "1g"}, "executor": {"cores": 1, "memory": "2g", "instances": 1}}),
            (896, 2048 + 384 + 1024),
        ),
        (
            "off-heap size ignored when disabled",
            json!({"sparkConf": {"spark.memory.offHeap.size": "1g"}}),
            (896, 896),
        ),
        (
            "explicit overhead replaces the formula",
            json!({"driver": {"cores": 1, "memory": "2g", "memoryOverhead": "1g"}}),
            (3072, 896),
        ),
        (
            "role factor",
            json!({"sparkConf": {"spark.executor.memoryOverheadFactor": "0.2"}, "executor": {"cores": 1, "memory": "4g", "instances": 1}}),
            (896, 4096 + 819),
        ),
        (
            "kubernetes-wide factor overrides the python default",
            json!({"type": "Python", "mainApplicationFile": "local:///a.py", "sparkConf": {"spark.kubernetes.memoryOverheadFactor": "0.3"}, "driver": {"cores": 1, "memory": "4g"}, "executor": {"cores": 1, "memory": "4g", "instances": 1}}),
            (4096 + 1228, 4096 + 1228),
        ),
        (
            "spark 4 minimum overhead",
            json!({"sparkVersion": "4.0.1", "sparkConf": {"spark.driver.minMemoryOverhead": "1g"}}),
            (512 + 1024, 896),
        ),
        (
            "spark 3 ignores the spark 4 setting",
            json!({"sparkConf": {"spark.driver.minMemoryOverhead": "1g"}}),
            (896, 896),
        ),
        (
            "node type: pod is exactly the type's memory",
            json!({"driver": {"nodeType": "small"}, "executor": {"nodeType": "large", "instances": 1}}),
            (4096, 28672),
        ),
        (
            "node type with pyspark memory still totals the type",
            json!({"type": "Python", "mainApplicationFile": "local:///a.py", "sparkConf": {"spark.executor.pyspark.memory": "1g"}, "driver": {"nodeType": "small"}, "executor": {"nodeType": "small", "instances": 1}}),
            (4096, 4096),
        ),
    ];
    for (name, extra, expected) in cases {
        assert_eq!(pods(&job(extra)), expected, "{name}");
    }
}

#[test]
fn memory_grows_after_out_of_memory_failures() {
    let grown = |extra: Value| {
        let mut j = job(extra);
        j.annotations.insert(
            submitter::footprint::EXECUTOR_MEMORY_FACTOR.into(),
            "1.5".into(),
        );
        pods(&j)
    };
    assert_eq!(
        grown(json!({})),
        (896, 768 + 384),
        "explicit heap 512m grows to 768m; the driver is untouched"
    );
    assert_eq!(
        grown(json!({"executor": {"nodeType": "small", "instances": 1}})),
        (896, 6144),
        "a node-type pod grows past its type"
    );
    let mut j = job(json!({}));
    j.annotations.insert(
        submitter::footprint::EXECUTOR_MEMORY_FACTOR.into(),
        "1e9".into(),
    );
    assert_eq!(pods(&j).1, 1536 + 384, "growth is capped at 3x");
}

#[test]
fn node_type_heap_and_overhead_are_pinned() {
    let j = job(
        json!({"driver": {"nodeType": "small"}, "executor": {"nodeType": "large", "instances": 1}}),
    );
    let f = Footprint::of(&j, &catalog()).unwrap();
    assert_eq!((f.driver.heap_mib, f.driver.overhead_mib), (3712, 384));
    assert!(f.driver.explicit_overhead);
    // 28 GiB: Spark alone would give 26065 + floor(2606.5) = 28671; pinning makes it exact.
    assert_eq!(
        (f.executor.heap_mib, f.executor.overhead_mib),
        (26065, 2607)
    );
    assert_eq!(f.executor.core_request.0, 3500);
    assert_eq!(f.executor.cores, 4, "spark cores round up");
}

#[test]
fn a_node_type_too_small_for_the_extras_is_an_error() {
    let j = job(
        json!({"type": "Python", "mainApplicationFile": "local:///a.py", "sparkConf": {"spark.executor.pyspark.memory": "3500m"}, "executor": {"nodeType": "small", "instances": 1}}),
    );
    let err = Footprint::of(&j, &catalog()).unwrap_err().to_string();
    assert!(err.contains("small") && err.contains("heap"), "{err}");
}

#[test]
fn cpu_request_is_exact_and_spark_cores_round_up() {
    let j = job(json!({"driver": {"cores": "500m", "memory": "1g"}}));
    let f = Footprint::of(&j, &catalog()).unwrap();
    assert_eq!((f.driver.cores, f.driver.core_request.0), (1, 500));
    assert_eq!(f.driver.requests().cpu_millis, 500);
}

#[test]
fn gang_is_driver_then_required_executors() {
    let j = job(
        json!({"priority": "high", "executor": {"nodeType": "small", "dynamicAllocation": {"minExecutors": 2, "initialExecutors": 3, "maxExecutors": 10}}}),
    );
    let f = Footprint::of(&j, &catalog()).unwrap();
    let priorities = BTreeMap::from([
        ("spark-high".to_owned(), 1000),
        ("spark-high-executor".to_owned(), 900),
    ]);
    let gang = f.gang(
        naming::demand_key(&j, 1),
        &j.namespace,
        naming::pod_selector(&j, 1),
        &priorities,
    );
    assert_eq!(gang.pods.len(), 1 + 3, "driver + initial executors");
    assert_eq!(gang.pods[0].role, PodRole::Driver);
    assert_eq!(gang.pods[0].priority, 1000);
    assert!(
        gang.pods[1..]
            .iter()
            .all(|p| p.role == PodRole::Executor && p.priority == 900)
    );
    assert_eq!(gang.pods[1].node_selector["pool"], "general");
    assert_eq!(gang.total(), f.total());
    assert_eq!(gang.total().memory_bytes, (896 + 3 * 4096) * 1024 * 1024);
    assert_eq!(gang.key, format!("{}/1", j.id));
}

#[test]
fn spot_moves_executors_only() {
    let j = job(
        json!({"spot": true, "driver": {"nodeType": "small"}, "executor": {"nodeType": "small", "instances": 1}}),
    );
    let f = Footprint::of(&j, &catalog()).unwrap();
    assert_eq!(f.driver.placement.node_selector["pool"], "general");
    assert_eq!(f.executor.placement.node_selector["pool"], "spot");
    assert_eq!(
        f.executor.placement.tolerations[0].key.as_deref(),
        Some("spot")
    );
}

#[test]
fn app_names_are_deterministic_dns_labels() {
    let j = job(json!({}));
    let a1 = naming::app_name(&j, 1);
    assert_eq!(a1, naming::app_name(&j, 1));
    assert_ne!(a1, naming::app_name(&j, 2));
    assert!(
        a1.starts_with("etl-") && a1.ends_with(&j.id.short()),
        "{a1}"
    );

    let long = job(json!({"name": format!("9{}", "x".repeat(52))}));
    for attempt in [1, 2, 10, 100] {
        let name = naming::app_name(&long, attempt);
        assert!(name.len() <= 63, "{name}");
        assert!(
            name.starts_with(|c: char| c.is_ascii_lowercase()),
            "DNS-1035 starts with a letter: {name}"
        );
        assert!(!name.contains("--"), "{name}");
    }
}

#[test]
fn spark_application_is_sized_by_the_footprint() {
    let j = job(json!({
        "priority": "high",
        "spot": true,
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": 3},
        "env": {"A": "1"},
        "javaOptions": "-XX:+UseG1GC",
        "tags": {"team": "data"},
        "annotations": {"kube-sim.dev/runtime": "30s"},
        "volumes": [{"name": "scratch", "mountPath": "/scratch", "emptyDir": {"sizeLimit": "10Gi"}}],
        "deps": {"jars": ["s3a://b/lib.jar"]}
    }));
    let f = Footprint::of(&j, &catalog()).unwrap();
    let app = spark_application(
        &j,
        &f,
        2,
        &EmitSettings {
            service_account: Some("spark".into()),
            time_to_live_seconds: Some(600),
        },
    );
    assert_eq!(app["apiVersion"], "sparkoperator.k8s.io/v1beta2");
    assert_eq!(app["metadata"]["name"], naming::app_name(&j, 2));
    assert_eq!(app["metadata"]["namespace"], "team-a");
    let labels = &app["metadata"]["labels"];
    assert_eq!(labels[naming::JOB_ID_LABEL], j.id.to_string());
    assert_eq!(labels[naming::ATTEMPT_LABEL], "2");
    assert_eq!(labels[naming::PRIORITY_LABEL], "high");
    assert_eq!(labels["team"], "data");
    assert_eq!(
        app["metadata"]["annotations"]["kube-sim.dev/runtime"],
        "30s"
    );
    let spec = &app["spec"];
    assert_eq!(spec["restartPolicy"]["type"], "Never");
    assert_eq!(spec["timeToLiveSeconds"], 600);
    assert_eq!(spec["driver"]["memory"], "3712m");
    assert_eq!(spec["driver"]["memoryOverhead"], "384m");
    assert_eq!(spec["driver"]["coreRequest"], "1");
    assert_eq!(spec["driver"]["serviceAccount"], "spark");
    assert_eq!(spec["driver"]["priorityClassName"], "spark-high");
    assert_eq!(spec["executor"]["priorityClassName"], "spark-high-executor");
    assert_eq!(spec["executor"]["instances"], 3);
    assert_eq!(spec["executor"]["nodeSelector"]["pool"], "spot");
    assert_eq!(spec["executor"]["tolerations"][0]["effect"], "NoSchedule");
    assert_eq!(spec["driver"]["nodeSelector"]["pool"], "general");
    assert_eq!(spec["driver"]["env"][0], json!({"name": "A", "value": "1"}));
    assert_eq!(spec["executor"]["javaOptions"], "-XX:+UseG1GC");
    assert_eq!(spec["volumes"][0]["emptyDir"]["sizeLimit"], "10Gi");
    assert_eq!(spec["executor"]["volumeMounts"][0]["mountPath"], "/scratch");
    assert_eq!(spec["deps"]["jars"][0], "s3a://b/lib.jar");
}

/// Spark users' habit, `sparkConf` `spark.executor.memoryOverhead`, sizes the pods and the
/// SparkApplication exactly as the structured `executor.memoryOverhead` does.
#[test]
fn spark_conf_overheads_size_pods_like_the_structured_field() {
    let structured = job(json!({
        "driver": {"cores": 1, "memory": "2g", "memoryOverhead": "768m"},
        "executor": {"cores": 1, "memory": "2g", "memoryOverhead": "512m", "instances": 2}
    }));
    let habit = job(json!({
        "driver": {"cores": 1, "memory": "2g"},
        "executor": {"cores": 1, "memory": "2g", "instances": 2},
        "sparkConf": {"spark.driver.memoryOverhead": "768m", "spark.executor.memoryOverhead": "512m"}
    }));
    assert_eq!(pods(&habit), (2048 + 768, 2048 + 512));
    assert_eq!(pods(&habit), pods(&structured));
    let emit = |j: &Job| {
        let f = Footprint::of(j, &catalog()).unwrap();
        let mut app = spark_application(j, &f, 1, &EmitSettings::default());
        // The ids differ; everything that sizes or configures the pods must not.
        app["metadata"] = Value::Null;
        app
    };
    assert_eq!(emit(&habit), emit(&structured));
    assert_eq!(emit(&habit)["spec"]["executor"]["memoryOverhead"], "512m");
    assert!(habit.spark_conf.is_empty(), "{:?}", habit.spark_conf);
}

#[test]
fn dynamic_allocation_is_emitted_without_instances() {
    let j = job(
        json!({"executor": {"nodeType": "small", "dynamicAllocation": {"minExecutors": 0, "maxExecutors": 4}}}),
    );
    let f = Footprint::of(&j, &catalog()).unwrap();
    let app = spark_application(&j, &f, 1, &EmitSettings::default());
    assert!(
        app["spec"]["executor"].get("instances").is_none(),
        "CRD minimum for instances is 1"
    );
    assert_eq!(
        app["spec"]["dynamicAllocation"],
        json!({"enabled": true, "initialExecutors": 0, "minExecutors": 0, "maxExecutors": 4})
    );
    assert_eq!(f.executors, 0);
}

#[test]
fn pods_are_pinned_to_their_planned_nodes() {
    let placement = |nodes: &[&str]| capacity::Placement {
        nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
        scale_up: vec![],
    };
    let names = |v: &Value| -> Vec<String> {
        let terms = &v["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms.as_array().map(Vec::len), Some(1), "{v}");
        let field = &terms[0]["matchFields"][0];
        assert_eq!(
            (&field["key"], &field["operator"]),
            (&json!("metadata.name"), &json!("In"))
        );
        serde_json::from_value(field["values"].clone()).unwrap()
    };
    let render = |j: &Job, nodes: &[&str]| {
        let f = Footprint::of(j, &catalog()).unwrap();
        let mut app = spark_application(j, &f, 1, &EmitSettings::default());
        submitter::spark_app::pin(&mut app, &placement(nodes));
        app
    };

    let fixed = job(json!({"executor": {"cores": 1, "memory": "512m", "instances": 3}}));
    let app = render(&fixed, &["n-2", "n-7", "n-1", "n-7"]);
    assert_eq!(names(&app["spec"]["driver"]), ["n-2"]);
    assert_eq!(
        names(&app["spec"]["executor"]),
        ["n-1", "n-7"],
        "each node once"
    );

    // A node a pool has yet to add has no name to pin to: that role stays free.
    let app = render(&fixed, &["general/+1", "n-1", "n-1", "general/+2"]);
    assert!(app["spec"]["driver"].get("affinity").is_none());
    assert!(app["spec"]["executor"].get("affinity").is_none());

    // Only the executors' nodes a pool must add are unknown: the driver is still pinned.
    let app = render(&fixed, &["n-3", "n-4", "general/+1", "n-4"]);
    assert_eq!(names(&app["spec"]["driver"]), ["n-3"]);
    assert!(app["spec"]["executor"].get("affinity").is_none());
}
