//! Every validation rule, table-driven: a valid base message, one change per case, and the
//! exact problem code and JSON path it must produce (or, for valid cases, the normalised
//! value it must yield). Plus property tests: no input makes the parser panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use proptest::prelude::*;
use queues::job::{ExecutorScaling, JobDuration, Resources, VolumeSource};
use queues::quantity::{CpuMillis, MemoryBytes};
use queues::{Catalog, CatalogConfig, Job, Priority, ProblemCode as P, parse_job};
use serde_json::{Value, json};

const CATALOG: &str = r#"
    [namespaces.team-a]
    [namespaces.team-b]
    [node_types.small]
    cpu = "1"
    memory = "4Gi"
    node_selector = { pool = "general" }
    spot = { node_selector = { pool = "spot" } }
    [node_types.large]
    cpu = "4"
    memory = "28Gi"
    [defaults]
    image = "apache/spark:3.5.3"
    spark_version = "3.5.3"
    driver_node_type = "small"
    ttl = "1h"
    [limits]
    max_executors = 100
    max_attempts = 5
    max_ttl = "2d"
    max_message_bytes = 65536
"#;

fn catalog() -> Catalog {
    let config: CatalogConfig = toml::from_str(CATALOG).unwrap();
    Catalog::new(config).unwrap()
}

fn base() -> Value {
    json!({
        "apiVersion": "v1",
        "name": "etl-daily",
        "namespace": "team-a",
        "mainApplicationFile": "local:///opt/app.jar",
        "mainClass": "com.example.Main",
        "executor": { "nodeType": "small", "instances": 2 }
    })
}

/// Sets (or with `None` removes) the value at a path of object keys, creating objects on the way.
fn with(mut v: Value, path: &[&str], new: Option<Value>) -> Value {
    let (last, parents) = path.split_last().unwrap();
    let mut cur = &mut v;
    for key in parents {
        let obj = cur.as_object_mut().unwrap();
        cur = obj.entry(*key).or_insert_with(|| json!({}));
    }
    let obj = cur.as_object_mut().unwrap();
    match new {
        Some(n) => {
            obj.insert((*last).to_owned(), n);
        }
        None => {
            obj.remove(*last);
        }
    }
    v
}

fn parse(v: &Value) -> Result<Job, queues::Rejection> {
    parse_job(serde_json::to_string(v).unwrap().as_bytes(), &catalog())
}

#[test]
fn base_message_is_valid_and_normalised() {
    let job = parse(&base()).unwrap();
    assert_eq!(job.priority, Priority::Normal);
    assert_eq!(job.image, "apache/spark:3.5.3", "image comes from defaults");
    assert_eq!(job.spark_version, "3.5.3");
    assert_eq!(
        job.driver.resources,
        Resources::NodeType("small".into()),
        "driver size from defaults"
    );
    assert_eq!(job.executor.scaling, ExecutorScaling::Instances(2));
    assert_eq!(
        job.ttl,
        Some(JobDuration(Duration::from_secs(3600))),
        "ttl from defaults"
    );
    assert_eq!(job.retry.max_attempts, 3);
    assert_eq!(job.id.0.get_version_num(), 7, "generated ids are UUID v7");
}

#[test]
fn normalised_output_is_itself_a_valid_message() {
    let job = parse(&base()).unwrap();
    let again = parse(&serde_json::to_value(&job).unwrap()).unwrap();
    assert_eq!(job, again, "validate(normalise(x)) == normalise(x)");
    let strict: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    assert_eq!(strict, job, "the serde model reads what it writes");
}

/// (case, path to change, new value or removal, expected code, expected problem path)
type Case = (
    &'static str,
    &'static [&'static str],
    Option<Value>,
    P,
    &'static str,
);

#[rustfmt::skip]
fn invalid_cases() -> Vec<Case> {
    vec![
        ("apiVersion missing", &["apiVersion"], None, P::MissingField, "$.apiVersion"),
        ("apiVersion v2", &["apiVersion"], Some(json!("v2")), P::UnsupportedApiVersion, "$.apiVersion"),
        ("apiVersion number", &["apiVersion"], Some(json!(1)), P::WrongType, "$.apiVersion"),
        ("id not uuid", &["id"], Some(json!("job-1")), P::InvalidId, "$.id"),
        ("id nil", &["id"], Some(json!("00000000-0000-0000-0000-000000000000")), P::InvalidId, "$.id"),
        ("name missing", &["name"], None, P::MissingField, "$.name"),
        ("name upper", &["name"], Some(json!("ETL")), P::InvalidName, "$.name"),
        ("name underscore", &["name"], Some(json!("etl_daily")), P::InvalidName, "$.name"),
        ("name leading dash", &["name"], Some(json!("-etl")), P::InvalidName, "$.name"),
        ("name trailing dash", &["name"], Some(json!("etl-")), P::InvalidName, "$.name"),
        ("name 54 chars", &["name"], Some(json!("a".repeat(54))), P::InvalidName, "$.name"),
        ("name empty", &["name"], Some(json!("")), P::InvalidName, "$.name"),
        ("name with NUL", &["name"], Some(json!("etl\u{0}")), P::InvalidCharacter, "$.name"),
        ("namespace unknown", &["namespace"], Some(json!("team-z")), P::UnknownNamespace, "$.namespace"),
        ("namespace missing", &["namespace"], None, P::MissingField, "$.namespace"),
        ("priority unknown", &["priority"], Some(json!("urgent")), P::InvalidValue, "$.priority"),
        ("priority wrong case", &["priority"], Some(json!("HIGH")), P::InvalidValue, "$.priority"),
        ("type unknown", &["type"], Some(json!("Go")), P::InvalidValue, "$.type"),
        ("image with space", &["image"], Some(json!("apache/spark 3")), P::InvalidImage, "$.image"),
        ("pull policy unknown", &["imagePullPolicy"], Some(json!("Sometimes")), P::InvalidValue, "$.imagePullPolicy"),
        ("pull secret bad", &["imagePullSecrets"], Some(json!(["Bad_Secret"])), P::InvalidValue, "$.imagePullSecrets[0]"),
        ("main file missing", &["mainApplicationFile"], None, P::MissingField, "$.mainApplicationFile"),
        ("main file no scheme", &["mainApplicationFile"], Some(json!("/opt/app.jar")), P::InvalidUri, "$.mainApplicationFile"),
        ("main file ftp", &["mainApplicationFile"], Some(json!("ftp://x/app.jar")), P::InvalidUri, "$.mainApplicationFile"),
        ("main file comma", &["mainApplicationFile"], Some(json!("local:///a.jar,local:///b.jar")), P::InvalidUri, "$.mainApplicationFile"),
        ("main class bad", &["mainClass"], Some(json!("com.example.")), P::InvalidValue, "$.mainClass"),
        ("arguments not list", &["arguments"], Some(json!("a b c")), P::WrongType, "$.arguments"),
        ("argument not string", &["arguments"], Some(json!(["a", 3])), P::WrongType, "$.arguments[1]"),
        ("too many arguments", &["arguments"], Some(json!(vec!["x"; 1001])), P::TooManyItems, "$.arguments"),
        ("spark version bad", &["sparkVersion"], Some(json!("latest")), P::InvalidValue, "$.sparkVersion"),
        ("conf not spark key", &["sparkConf"], Some(json!({"foo.bar": "1"})), P::InvalidValue, "$.sparkConf[\"foo.bar\"]"),
        ("conf reserved memory", &["sparkConf"], Some(json!({"spark.executor.memory": "8g"})), P::ReservedKey, "$.sparkConf[\"spark.executor.memory\"]"),
        ("conf reserved prefix", &["sparkConf"], Some(json!({"spark.dynamicAllocation.enabled": "true"})), P::ReservedKey, "$.sparkConf[\"spark.dynamicAllocation.enabled\"]"),
        ("conf reserved auth", &["sparkConf"], Some(json!({"spark.kubernetes.authenticate.driver.serviceAccountName": "admin"})), P::ReservedKey, "$.sparkConf[\"spark.kubernetes.authenticate.driver.serviceAccountName\"]"),
        ("conf number value", &["sparkConf"], Some(json!({"spark.sql.shuffle.partitions": 200})), P::WrongType, "$.sparkConf[\"spark.sql.shuffle.partitions\"]"),
        ("conf bad pyspark memory", &["sparkConf"], Some(json!({"spark.executor.pyspark.memory": "lots"})), P::InvalidQuantity, "$.sparkConf[\"spark.executor.pyspark.memory\"]"),
        ("conf bad factor", &["sparkConf"], Some(json!({"spark.executor.memoryOverheadFactor": "-1"})), P::InvalidValue, "$.sparkConf[\"spark.executor.memoryOverheadFactor\"]"),
        ("conf bad offheap flag", &["sparkConf"], Some(json!({"spark.memory.offHeap.enabled": "yes"})), P::InvalidValue, "$.sparkConf[\"spark.memory.offHeap.enabled\"]"),
        ("conf key with space", &["sparkConf"], Some(json!({"spark.a b": "1"})), P::InvalidValue, "$.sparkConf[\"spark.a b\"]"),
        ("hadoop key with =", &["hadoopConf"], Some(json!({"fs.a=b": "1"})), P::InvalidValue, "$.hadoopConf[\"fs.a=b\"]"),
        ("env name digit", &["env"], Some(json!({"1A": "x"})), P::InvalidEnvName, "$.env[\"1A\"]"),
        ("env name dash", &["env"], Some(json!({"A-B": "x"})), P::InvalidEnvName, "$.env[\"A-B\"]"),
        ("env value object", &["env"], Some(json!({"A": {"b": 1}})), P::WrongType, "$.env.A"),
        ("java options Xmx", &["javaOptions"], Some(json!("-Xmx8g -XX:+UseG1GC")), P::Forbidden, "$.javaOptions"),
        ("java options newline", &["javaOptions"], Some(json!("-Da=1\n-Db=2")), P::InvalidCharacter, "$.javaOptions"),
        ("deps unknown key", &["deps", "eggs"], Some(json!([])), P::UnknownField, "$.deps.eggs"),
        ("deps jar bad uri", &["deps", "jars"], Some(json!(["lib.jar"])), P::InvalidUri, "$.deps.jars[0]"),
        ("deps package bad", &["deps", "packages"], Some(json!(["org.example:lib"])), P::InvalidValue, "$.deps.packages[0]"),
        ("deps exclude bad", &["deps", "excludePackages"], Some(json!(["a:b:c"])), P::InvalidValue, "$.deps.excludePackages[0]"),
        ("deps repository s3", &["deps", "repositories"], Some(json!(["s3a://repo"])), P::InvalidUri, "$.deps.repositories[0]"),
        ("driver unknown type", &["driver"], Some(json!({"nodeType": "huge"})), P::UnknownNodeType, "$.driver.nodeType"),
        ("driver type plus cores", &["driver"], Some(json!({"nodeType": "small", "cores": 2})), P::ConflictingFields, "$.driver.cores"),
        ("driver instances", &["driver"], Some(json!({"nodeType": "small", "instances": 2})), P::UnknownField, "$.driver.instances"),
        ("driver cores only", &["driver"], Some(json!({"cores": 2})), P::MissingField, "$.driver.memory"),
        ("driver memory only", &["driver"], Some(json!({"memory": "2g"})), P::MissingField, "$.driver.cores"),
        ("driver cores bad", &["driver"], Some(json!({"cores": "two", "memory": "2g"})), P::InvalidQuantity, "$.driver.cores"),
        ("driver cores too precise", &["driver"], Some(json!({"cores": 0.0005, "memory": "2g"})), P::InvalidQuantity, "$.driver.cores"),
        ("driver cores zero", &["driver"], Some(json!({"cores": 0, "memory": "2g"})), P::OutOfRange, "$.driver.cores"),
        ("driver cores huge", &["driver"], Some(json!({"cores": 1000, "memory": "2g"})), P::OutOfRange, "$.driver.cores"),
        ("driver cores bool", &["driver"], Some(json!({"cores": true, "memory": "2g"})), P::WrongType, "$.driver.cores"),
        ("driver memory no unit", &["driver"], Some(json!({"cores": 1, "memory": "2048"})), P::InvalidQuantity, "$.driver.memory"),
        ("driver memory number", &["driver"], Some(json!({"cores": 1, "memory": 2048})), P::WrongType, "$.driver.memory"),
        ("driver memory tiny", &["driver"], Some(json!({"cores": 1, "memory": "1m"})), P::OutOfRange, "$.driver.memory"),
        ("driver overhead bad", &["driver"], Some(json!({"cores": 1, "memory": "2g", "memoryOverhead": "x"})), P::InvalidQuantity, "$.driver.memoryOverhead"),
        ("driver not object", &["driver"], Some(json!("small")), P::WrongType, "$.driver"),
        ("executor missing size", &["executor"], Some(json!({"instances": 2})), P::MissingField, "$.executor.nodeType"),
        ("executor instances zero", &["executor", "instances"], Some(json!(0)), P::OutOfRange, "$.executor.instances"),
        ("executor instances above limit", &["executor", "instances"], Some(json!(101)), P::OutOfRange, "$.executor.instances"),
        ("executor instances negative", &["executor", "instances"], Some(json!(-1)), P::OutOfRange, "$.executor.instances"),
        ("executor instances fraction", &["executor", "instances"], Some(json!(1.5)), P::WrongType, "$.executor.instances"),
        ("executor instances string", &["executor", "instances"], Some(json!("2")), P::WrongType, "$.executor.instances"),
        ("executor instances and DA", &["executor", "dynamicAllocation"], Some(json!({"maxExecutors": 4})), P::ConflictingFields, "$.executor.dynamicAllocation"),
        ("executor unknown field", &["executor", "gpus"], Some(json!(1)), P::UnknownField, "$.executor.gpus"),
        ("spot not bool", &["spot"], Some(json!("yes")), P::WrongType, "$.spot"),
        ("tag key bad", &["tags"], Some(json!({"bad key": "x"})), P::InvalidLabelKey, "$.tags[\"bad key\"]"),
        ("tag value bad", &["tags"], Some(json!({"team": "data eng"})), P::InvalidLabelValue, "$.tags.team"),
        ("tag value too long", &["tags"], Some(json!({"team": "x".repeat(64)})), P::ValueTooLong, "$.tags.team"),
        ("tag reserved domain", &["tags"], Some(json!({"spark-orchestrator.dev/job-id": "x"})), P::ReservedKey, "$.tags[\"spark-orchestrator.dev/job-id\"]"),
        ("tag reserved k8s", &["tags"], Some(json!({"app.kubernetes.io/name": "x"})), P::ReservedKey, "$.tags[\"app.kubernetes.io/name\"]"),
        ("tag spark role", &["tags"], Some(json!({"spark-role": "driver"})), P::ReservedKey, "$.tags[\"spark-role\"]"),
        ("annotation reserved", &["annotations"], Some(json!({"sparkoperator.k8s.io/x": "y"})), P::ReservedKey, "$.annotations[\"sparkoperator.k8s.io/x\"]"),
        ("volume hostPath", &["volumes"], Some(json!([{"name": "h", "mountPath": "/h", "hostPath": {"path": "/"}}])), P::Forbidden, "$.volumes[0].hostPath"),
        ("volume two sources", &["volumes"], Some(json!([{"name": "v", "mountPath": "/v", "emptyDir": {}, "secret": {"secretName": "s"}}])),
            P::InvalidValue,
            "$.volumes[0]",
        ),
        ("volume no source", &["volumes"], Some(json!([{"name": "v", "mountPath": "/v"}])), P::InvalidValue, "$.volumes[0]"),
        ("volume relative path", &["volumes"], Some(json!([{"name": "v", "mountPath": "v", "emptyDir": {}}])), P::InvalidValue, "$.volumes[0].mountPath"),
        ("volume dotdot path", &["volumes"], Some(json!([{"name": "v", "mountPath": "/a/../etc", "emptyDir": {}}])), P::InvalidValue, "$.volumes[0].mountPath"),
        ("volume duplicate name", &["volumes"], Some(json!([{"name": "v", "mountPath": "/a", "emptyDir": {}}, {"name": "v", "mountPath": "/b", "emptyDir": {}}])),
            P::Duplicate,
            "$.volumes[1].name",
        ),
        ("volume duplicate path", &["volumes"], Some(json!([{"name": "a", "mountPath": "/a", "emptyDir": {}}, {"name": "b", "mountPath": "/a/", "emptyDir": {}}])),
            P::Duplicate,
            "$.volumes[1].mountPath",
        ),
        ("volume claim bad", &["volumes"], Some(json!([{"name": "v", "mountPath": "/v", "persistentVolumeClaim": {"claimName": "Bad"}}])),
            P::InvalidValue,
            "$.volumes[0].persistentVolumeClaim.claimName",
        ),
        ("volume size bad", &["volumes"], Some(json!([{"name": "v", "mountPath": "/v", "emptyDir": {"sizeLimit": "big"}}])), P::InvalidQuantity, "$.volumes[0].emptyDir.sizeLimit"),
        ("retry attempts zero", &["retry", "maxAttempts"], Some(json!(0)), P::OutOfRange, "$.retry.maxAttempts"),
        ("retry attempts above limit", &["retry", "maxAttempts"], Some(json!(6)), P::OutOfRange, "$.retry.maxAttempts"),
        ("retry backoff bad duration", &["retry", "backoff"], Some(json!({"initial": "soon"})), P::InvalidDuration, "$.retry.backoff.initial"),
        ("retry backoff max below initial", &["retry", "backoff"], Some(json!({"initial": "5m", "max": "1m"})), P::OutOfRange, "$.retry.backoff.max"),
        ("retry backoff multiplier", &["retry", "backoff"], Some(json!({"multiplier": 100})), P::OutOfRange, "$.retry.backoff.multiplier"),
        ("retry backoff initial zero", &["retry", "backoff"], Some(json!({"initial": "0s"})), P::OutOfRange, "$.retry.backoff.initial"),
        ("ttl bad", &["ttl"], Some(json!("forever")), P::InvalidDuration, "$.ttl"),
        ("ttl above limit", &["ttl"], Some(json!("3d")), P::OutOfRange, "$.ttl"),
        ("ttl number", &["ttl"], Some(json!(3600)), P::WrongType, "$.ttl"),
        ("timeout zero", &["timeout"], Some(json!("0s")), P::OutOfRange, "$.timeout"),
        ("deadline bad", &["deadline"], Some(json!("tomorrow")), P::InvalidTimestamp, "$.deadline"),
        ("unknown top field", &["colour"], Some(json!("blue")), P::UnknownField, "$.colour"),
    ]
}

#[test]
fn every_invalid_case_reports_its_code_at_its_path() {
    let mut failures = Vec::new();
    for (case, path, value, code, at) in invalid_cases() {
        let msg = with(base(), path, value);
        match parse(&msg) {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(r) => {
                if !r.problems.iter().any(|p| p.code == code && p.path == at) {
                    failures.push(format!(
                        "{case}: expected {code} at {at}, got {:?}",
                        r.problems
                    ));
                }
                if r.problems.iter().any(|p| p.message.trim().is_empty()) {
                    failures.push(format!("{case}: a problem without a message"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = include_str!("../../examples/invalid/many-mistakes.json");
    let config: CatalogConfig = toml::from_str(CATALOG).unwrap();
    let r = parse_job(text.as_bytes(), &Catalog::new(config).unwrap()).unwrap_err();
    let found: Vec<(P, &str)> = r
        .problems
        .iter()
        .map(|p| (p.code, p.path.as_str()))
        .collect();
    for expected in [
        (P::UnknownField, "$.colour"),
        (P::InvalidName, "$.name"),
        (P::UnknownNamespace, "$.namespace"),
        (P::InvalidValue, "$.priority"),
        (P::InvalidUri, "$.mainApplicationFile"),
        (P::ReservedKey, "$.sparkConf[\"spark.executor.memory\"]"),
        (
            P::WrongType,
            "$.sparkConf[\"spark.sql.shuffle.partitions\"]",
        ),
        (P::InvalidEnvName, "$.env[\"1BAD\"]"),
        (P::UnknownNodeType, "$.driver.nodeType"),
        (P::InvalidQuantity, "$.executor.cores"),
        (P::InvalidQuantity, "$.executor.memory"),
        (P::OutOfRange, "$.executor.dynamicAllocation.minExecutors"),
        (P::Forbidden, "$.volumes[0].hostPath"),
        (P::OutOfRange, "$.retry.maxAttempts"),
        (P::InvalidDuration, "$.ttl"),
    ] {
        assert!(
            found.contains(&expected),
            "missing {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn valid_variants_normalise_as_documented() {
    let parse_ok = |path: &[&str], v: Value| parse(&with(base(), path, Some(v))).unwrap();

    let job = parse_ok(
        &["executor"],
        json!({"cores": "500m", "memory": "1.5g", "memoryOverhead": "512m", "instances": 3}),
    );
    assert_eq!(
        job.executor.resources,
        Resources::Explicit {
            cores: CpuMillis(500),
            memory: MemoryBytes::from_mib(1536),
            memory_overhead: Some(MemoryBytes::from_mib(512))
        }
    );

    let job = parse_ok(
        &["executor"],
        json!({"nodeType": "small", "dynamicAllocation": {"minExecutors": 1, "maxExecutors": 8}}),
    );
    let ExecutorScaling::DynamicAllocation(da) = job.executor.scaling else {
        panic!("dynamic allocation expected")
    };
    assert_eq!(
        (da.min_executors, da.initial(), da.max_executors),
        (1, 1, 8)
    );

    let job = parse_ok(&["executor"], json!({"nodeType": "small"}));
    assert_eq!(
        job.executor.scaling,
        ExecutorScaling::Instances(1),
        "defaults.executor_instances"
    );

    let job = parse_ok(&["executor"], json!({"nodeType": "small", "instances": 4}));
    let job2 = parse(&with(
        with(
            base(),
            &["executor"],
            Some(json!({"nodeType": "small", "instances": 4})),
        ),
        &["spot"],
        Some(json!(true)),
    ))
    .unwrap();
    assert!(
        !job.spot && job2.spot,
        "spot works with a node type that has a spot placement"
    );

    for executor in [
        json!({"nodeType": "large", "instances": 1}),
        json!({"cores": 1, "memory": "2g", "instances": 1}),
    ] {
        let no_spot = with(
            with(base(), &["executor"], Some(executor)),
            &["spot"],
            Some(json!(true)),
        );
        let r = parse(&no_spot).unwrap_err();
        assert_eq!(
            (r.problems[0].code, r.problems[0].path.as_str()),
            (P::SpotUnavailable, "$.spot"),
            "{r:?}"
        );
    }

    let job = parse_ok(&["priority"], json!("high"));
    assert_eq!(job.priority, Priority::High);

    let job = parse_ok(&["id"], json!("0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01"));
    assert_eq!(
        job.id.to_string(),
        "0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01",
        "a given id is kept"
    );

    let job = parse_ok(&["ttl"], json!("90m"));
    assert_eq!(job.ttl, Some(JobDuration(Duration::from_secs(5400))));

    let job = parse_ok(&["retry"], json!({"maxAttempts": 5}));
    assert_eq!(
        (job.retry.max_attempts, job.retry.backoff.initial.0),
        (5, Duration::from_secs(30)),
        "partial retry keeps default backoff"
    );

    let job = parse_ok(
        &["volumes"],
        json!([{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true, "configMap": {"name": "cfg"}}]),
    );
    assert_eq!(
        job.volumes[0].source,
        VolumeSource::ConfigMap { name: "cfg".into() }
    );
    assert!(job.volumes[0].read_only);

    let job = parse_ok(
        &["sparkConf"],
        json!({"spark.executor.pyspark.memory": "1g", "spark.executor.memoryOverheadFactor": "0.2"}),
    );
    assert_eq!(job.spark_conf.len(), 2);

    let job = parse_ok(&["tags"], json!({"team": "", "example.com/owner": "ops"}));
    assert_eq!(job.tags.len(), 2);

    let job = parse_ok(&["deadline"], json!("2026-12-01T00:00:00+01:00"));
    assert_eq!(
        job.deadline.unwrap().to_rfc3339(),
        "2026-11-30T23:00:00+00:00"
    );

    let job = parse(&with(base(), &["priority"], Some(Value::Null))).unwrap();
    assert_eq!(job.priority, Priority::Normal, "null means absent");
}

#[test]
fn body_level_problems() {
    let c = catalog();
    for (bytes, code) in [
        (b"".to_vec(), P::MalformedJson),
        (b"   \n".to_vec(), P::MalformedJson),
        (b"{\"apiVersion\":".to_vec(), P::MalformedJson),
        (b"[1,2]".to_vec(), P::WrongType),
        (b"null".to_vec(), P::WrongType),
        (b"\"job\"".to_vec(), P::WrongType),
        (vec![0xff, 0xfe, b'{', b'}'], P::NotUtf8),
        (br#"{"name":"a","name":"b"}"#.to_vec(), P::DuplicateKey),
        (vec![b' '; 65537], P::TooLarge),
        (
            format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            P::MalformedJson,
        ),
    ] {
        let r = parse_job(&bytes, &c).unwrap_err();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].code, code, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, "$");
    }
}

#[test]
fn problems_serialise_as_documented() {
    let r = parse(&with(base(), &["name"], Some(json!("Bad")))).unwrap_err();
    let v = serde_json::to_value(&r.problems[0]).unwrap();
    assert_eq!(v["code"], "invalid-name");
    assert_eq!(v["path"], "$.name");
    assert!(v["message"].as_str().unwrap().contains("Bad"));
    for p in &r.problems {
        assert_eq!(
            serde_json::to_value(p.code).unwrap(),
            json!(p.code.as_str())
        );
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("team-a"),
            Just("small"),
            Just("v1"),
            Just("2g"),
            Just("500m"),
            Just("local:///a.jar")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("apiVersion".to_owned()),
            Just("name".to_owned()),
            Just("namespace".to_owned()),
            Just("driver".to_owned()),
            Just("executor".to_owned()),
            Just("nodeType".to_owned()),
            Just("cores".to_owned()),
            Just("memory".to_owned()),
            Just("instances".to_owned()),
            Just("dynamicAllocation".to_owned()),
            Just("volumes".to_owned()),
            Just("retry".to_owned()),
            Just("backoff".to_owned()),
            Just("sparkConf".to_owned()),
            Just("tags".to_owned()),
            Just("mainApplicationFile".to_owned()),
            "[a-zA-Z.]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_job(&bytes, &catalog()) {
            Ok(job) => prop_assert!(!job.name.is_empty()),
            Err(r) => prop_assert!(!r.problems.is_empty()),
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        match parse_job(&text, &catalog()) {
            Ok(job) => {
                // Whatever is accepted is normalised and re-validates to itself.
                let again = parse(&serde_json::to_value(&job).unwrap());
                prop_assert_eq!(again.ok(), Some(job));
            }
            Err(r) => {
                prop_assert!(!r.problems.is_empty());
                for p in &r.problems {
                    prop_assert!(p.path.starts_with('$'));
                    prop_assert!(!p.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(key in prop_oneof![Just("name"), Just("executor"), Just("driver"), Just("retry"), Just("volumes"), Just("tags")], value in arbitrary_json()) {
        let msg = with(base(), &[key], Some(value));
        let text = serde_json::to_vec(&msg).unwrap();
        let _ = parse_job(&text, &catalog());
    }
}
