//! The validation table, shared by the job model's tests and the intake's dead-letter tests:
//! the catalog they validate against, a valid base message, and every invalid case with the
//! problem code and JSON path it must produce.

use jobs::{Catalog, CatalogConfig, Job, ProblemCode as P, parse_job};
use serde_json::{Value, json};

/// The catalog the cases are written against (TOML).
pub const CATALOG: &str = r#"
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

/// [`CATALOG`], checked.
pub fn catalog() -> Catalog {
    let config: CatalogConfig = toml::from_str(CATALOG).unwrap();
    Catalog::new(config).unwrap()
}

/// A valid message every case changes one thing of.
pub fn base() -> Value {
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
pub fn with(mut v: Value, path: &[&str], new: Option<Value>) -> Value {
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

/// Parses `v` as message bytes against [`catalog`].
pub fn parse(v: &Value) -> Result<Job, jobs::Rejection> {
    parse_job(serde_json::to_string(v).unwrap().as_bytes(), &catalog())
}

/// (case, path to change, new value or removal, expected code, expected problem path)
pub type Case = (
    &'static str,
    &'static [&'static str],
    Option<Value>,
    P,
    &'static str,
);

/// Every invalid case.
#[rustfmt::skip]
pub fn invalid_cases() -> Vec<Case> {
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
