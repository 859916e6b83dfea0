//! What Spark and the Spark Operator put into driver and executor pods: resource
//! requests computed the way Spark computes them (cores/coreRequest,
//! memory + overhead with factor 0.1 JVM / 0.4 Python-R unless overridden, 384 MiB
//! floor, explicit overhead, PySpark memory, off-heap), the initial executor count,
//! and the pod objects themselves (labels, owner references, webhook fields).

use serde_json::{Map, Value, json};

/// The label naming the SparkApplication on its driver and executor pods.
pub const APP_NAME_LABEL: &str = "sparkoperator.k8s.io/app-name";

/// Driver or executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The driver.
    Driver,
    /// An executor.
    Executor,
}

impl Role {
    fn key(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Executor => "executor",
        }
    }
}

/// A pod's Spark-computed resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodResources {
    /// CPU request as Spark writes it (`"1"`, `"500m"`).
    pub cpu_request: String,
    /// CPU limit, if `coreLimit` is set.
    pub cpu_limit: Option<String>,
    /// Memory request = limit, in MiB.
    pub memory_mib: u64,
    /// Memory limit override (`memoryLimit`, set by the webhook).
    pub memory_limit: Option<String>,
}

fn conf<'a>(spec: &'a Value, key: &str) -> Option<&'a str> {
    spec.get("sparkConf")
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
}

/// Parse a JVM/Spark memory string (`512m`, `4g`, `1024k`, `1t`, plain = MiB) into MiB.
pub fn parse_spark_mib(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mul): (&str, f64) = if let Some(n) = s.strip_suffix('k') {
        (n, 1.0 / 1024.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('g') {
        (n, 1024.0)
    } else if let Some(n) = s.strip_suffix('t') {
        (n, 1024.0 * 1024.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    Some((v * mul).floor() as u64)
}

/// Parse a byte string (`2g`, `512m`, plain = bytes) into MiB (for off-heap size).
fn parse_bytes_mib(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse::<u64>().ok().map(|b| b / (1024 * 1024));
    }
    parse_spark_mib(&t)
}

fn is_jvm(spec: &Value) -> bool {
    matches!(
        spec.get("type").and_then(Value::as_str),
        Some("Java") | Some("Scala") | None
    )
}

/// Resources Spark gives the pod of `role` for this SparkApplication `spec`.
pub fn pod_resources(spec: &Value, role: Role) -> PodResources {
    let r = role.key();
    let rs = spec.get(r).cloned().unwrap_or(Value::Null);
    let cores = rs
        .get("cores")
        .and_then(Value::as_i64)
        .map(|c| c.to_string())
        .or_else(|| conf(spec, &format!("spark.{r}.cores")).map(String::from))
        .unwrap_or_else(|| "1".into());
    let cpu_request = rs
        .get("coreRequest")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| conf(spec, &format!("spark.kubernetes.{r}.request.cores")).map(String::from))
        .unwrap_or(cores);
    let cpu_limit = rs
        .get("coreLimit")
        .and_then(Value::as_str)
        .map(String::from)
        .or_else(|| conf(spec, &format!("spark.kubernetes.{r}.limit.cores")).map(String::from));
    let mem = rs
        .get("memory")
        .and_then(Value::as_str)
        .or_else(|| conf(spec, &format!("spark.{r}.memory")))
        .and_then(parse_spark_mib)
        .unwrap_or(1024);
    let explicit = rs
        .get("memoryOverhead")
        .and_then(Value::as_str)
        .or_else(|| conf(spec, &format!("spark.{r}.memoryOverhead")))
        .and_then(parse_spark_mib);
    let factor_set = spec
        .get("memoryOverheadFactor")
        .and_then(Value::as_str)
        .or_else(|| conf(spec, &format!("spark.{r}.memoryOverheadFactor")))
        .or_else(|| conf(spec, "spark.kubernetes.memoryOverheadFactor"))
        .and_then(|f| f.trim().parse::<f64>().ok());
    let factor = factor_set.unwrap_or(if is_jvm(spec) { 0.1 } else { 0.4 });
    let min_overhead = conf(spec, &format!("spark.{r}.minMemoryOverhead"))
        .and_then(parse_spark_mib)
        .unwrap_or(384);
    let overhead =
        explicit.unwrap_or_else(|| ((factor * mem as f64).floor() as u64).max(min_overhead));
    let mut total = mem + overhead;
    if role == Role::Executor {
        if conf(spec, "spark.memory.offHeap.enabled") == Some("true") {
            total += conf(spec, "spark.memory.offHeap.size")
                .and_then(parse_bytes_mib)
                .unwrap_or(0);
        }
        if spec.get("type").and_then(Value::as_str) == Some("Python") {
            total += conf(spec, "spark.executor.pyspark.memory")
                .and_then(parse_spark_mib)
                .unwrap_or(0);
        }
    }
    PodResources {
        cpu_request,
        cpu_limit,
        memory_mib: total,
        memory_limit: rs
            .get("memoryLimit")
            .and_then(Value::as_str)
            .map(String::from),
    }
}

/// The number of executors requested at start: with dynamic allocation
/// `max(instances, initialExecutors, minExecutors)`, else `instances` (default 1, the
/// operator webhook's default).
pub fn initial_executors(spec: &Value) -> u32 {
    let instances = spec
        .pointer("/executor/instances")
        .and_then(Value::as_u64)
        .or_else(|| conf(spec, "spark.executor.instances").and_then(|s| s.parse().ok()));
    let da = spec.get("dynamicAllocation");
    let enabled = da.and_then(|d| d.get("enabled")).and_then(Value::as_bool) == Some(true)
        || conf(spec, "spark.dynamicAllocation.enabled") == Some("true");
    if enabled {
        let get = |k: &str| {
            da.and_then(|d| d.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        instances
            .unwrap_or(0)
            .max(get("initialExecutors"))
            .max(get("minExecutors")) as u32
    } else {
        instances.unwrap_or(1) as u32
    }
}

/// The driver pod name (`spec.driver.podName`, the sparkConf override, or `<app>-driver`).
pub fn driver_pod_name(app: &Value) -> String {
    let spec = app.get("spec").unwrap_or(&Value::Null);
    spec.pointer("/driver/podName")
        .and_then(Value::as_str)
        .or_else(|| conf(spec, "spark.kubernetes.driver.pod.name"))
        .map(String::from)
        .unwrap_or_else(|| format!("{}-driver", crate::object::name(app)))
}

/// Identifiers of one submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// `status.submissionID`.
    pub submission_id: String,
    /// `spark-<32 hex>`, the `spark-app-selector` label.
    pub app_id: String,
    /// `<app>-<16 hex>`, the executor name prefix.
    pub exec_prefix: String,
}

fn labels(app: &Value, role: Role, sub: &Submission) -> Map<String, Value> {
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    let name = crate::object::name(app);
    let mut l = Map::new();
    for (k, v) in crate::object::meta_map(app, "labels") {
        if !k.starts_with("kueue.x-k8s.io/") {
            l.insert(k, json!(v));
        }
    }
    if let Some(m) = spec
        .pointer(&format!("/{}/labels", role.key()))
        .and_then(Value::as_object)
    {
        for (k, v) in m {
            l.insert(k.clone(), v.clone());
        }
    }
    l.insert(APP_NAME_LABEL.into(), json!(name));
    l.insert(
        "sparkoperator.k8s.io/launched-by-spark-operator".into(),
        json!("true"),
    );
    l.insert(
        "sparkoperator.k8s.io/submission-id".into(),
        json!(sub.submission_id),
    );
    l.insert(
        "sparkoperator.k8s.io/mutated-by-spark-operator".into(),
        json!("true"),
    );
    l.insert("spark-app-selector".into(), json!(sub.app_id));
    l.insert("spark-app-name".into(), json!(name));
    l.insert("spark-role".into(), json!(role.key()));
    l.insert(
        "spark-version".into(),
        json!(
            spec.get("sparkVersion")
                .and_then(Value::as_str)
                .unwrap_or("3.5.0")
        ),
    );
    l
}

fn container_resources(r: &PodResources) -> Value {
    let mut limits =
        json!({"memory": r.memory_limit.clone().unwrap_or_else(|| format!("{}Mi", r.memory_mib))});
    if let Some(cl) = &r.cpu_limit {
        limits["cpu"] = json!(cl);
    }
    json!({"requests": {"cpu": r.cpu_request, "memory": format!("{}Mi", r.memory_mib)}, "limits": limits})
}

/// The driver pod Spark's submission client creates, as the operator's webhook mutates it.
pub fn driver_pod(app: &Value, sub: &Submission) -> Value {
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    let name = crate::object::name(app).to_string();
    let res = pod_resources(&spec, Role::Driver);
    let image = spec
        .pointer("/driver/image")
        .or_else(|| spec.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("spark:3.5.0");
    let mut args = vec![
        json!("driver"),
        json!("--properties-file"),
        json!("/opt/spark/conf/spark.properties"),
    ];
    if let Some(mc) = spec.get("mainClass").and_then(Value::as_str) {
        args.push(json!("--class"));
        args.push(json!(mc));
    }
    args.push(json!(
        spec.get("mainApplicationFile")
            .and_then(Value::as_str)
            .unwrap_or("")
    ));
    if let Some(a) = spec.get("arguments").and_then(Value::as_array) {
        args.extend(a.iter().cloned());
    }
    let container = json!({
        "name": "spark-kubernetes-driver",
        "image": image,
        "imagePullPolicy": spec.get("imagePullPolicy").and_then(Value::as_str).unwrap_or("IfNotPresent"),
        "args": args,
        "ports": [
            {"name": "driver-rpc-port", "containerPort": 7078, "protocol": "TCP"},
            {"name": "blockmanager", "containerPort": 7079, "protocol": "TCP"},
            {"name": "spark-ui", "containerPort": 4040, "protocol": "TCP"}
        ],
        "env": [
            {"name": "SPARK_USER", "value": "root"},
            {"name": "SPARK_APPLICATION_ID", "value": sub.app_id},
            {"name": "SPARK_DRIVER_BIND_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}},
            {"name": "SPARK_CONF_DIR", "value": "/opt/spark/conf"}
        ],
        "resources": container_resources(&res),
    });
    let uid = crate::object::meta_str(app, "uid").unwrap_or("");
    pod(
        &spec,
        Role::Driver,
        &driver_pod_name(app),
        labels(app, Role::Driver, sub),
        container,
        json!([{"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication", "name": name, "uid": uid, "controller": true}]),
    )
}

/// Executor `id` (1-based), owned by the driver pod.
pub fn executor_pod(app: &Value, sub: &Submission, id: u32, driver: &Value) -> Value {
    let spec = app.get("spec").cloned().unwrap_or(Value::Null);
    let res = pod_resources(&spec, Role::Executor);
    let image = spec
        .pointer("/executor/image")
        .or_else(|| spec.get("image"))
        .and_then(Value::as_str)
        .unwrap_or("spark:3.5.0");
    let mut l = labels(app, Role::Executor, sub);
    l.insert("spark-exec-id".into(), json!(id.to_string()));
    l.insert("spark-exec-resourceprofile-id".into(), json!("0"));
    let driver_name = crate::object::name(driver);
    let container = json!({
        "name": "spark-kubernetes-executor",
        "image": image,
        "imagePullPolicy": spec.get("imagePullPolicy").and_then(Value::as_str).unwrap_or("IfNotPresent"),
        "args": ["executor"],
        "ports": [{"name": "blockmanager", "containerPort": 7079, "protocol": "TCP"}],
        "env": [
            {"name": "SPARK_USER", "value": "root"},
            {"name": "SPARK_DRIVER_URL", "value": format!("spark://CoarseGrainedScheduler@{driver_name}-svc.{}.svc:7078", crate::object::namespace(app))},
            {"name": "SPARK_EXECUTOR_CORES", "value": spec.pointer("/executor/cores").map(|c| c.to_string()).unwrap_or_else(|| "1".into())},
            {"name": "SPARK_EXECUTOR_MEMORY", "value": spec.pointer("/executor/memory").and_then(Value::as_str).unwrap_or("1g")},
            {"name": "SPARK_APPLICATION_ID", "value": sub.app_id},
            {"name": "SPARK_EXECUTOR_ID", "value": id.to_string()},
            {"name": "SPARK_EXECUTOR_POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}
        ],
        "resources": container_resources(&res),
    });
    let owner = json!([{"apiVersion": "v1", "kind": "Pod", "name": driver_name,
        "uid": crate::object::meta_str(driver, "uid").unwrap_or(""), "controller": true}]);
    pod(
        &spec,
        Role::Executor,
        &format!("{}-exec-{id}", sub.exec_prefix),
        l,
        container,
        owner,
    )
}

fn pod(
    spec: &Value,
    role: Role,
    name: &str,
    labels: Map<String, Value>,
    container: Value,
    owners: Value,
) -> Value {
    let rs = spec.get(role.key()).cloned().unwrap_or(Value::Null);
    let mut node_selector = spec
        .get("nodeSelector")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(m) = rs.get("nodeSelector").and_then(Value::as_object) {
        node_selector.extend(m.clone());
    }
    let mut pspec = json!({
        "restartPolicy": "Never",
        "containers": [container],
        "serviceAccountName": rs.get("serviceAccount").and_then(Value::as_str).unwrap_or("default"),
    });
    if role == Role::Driver {
        pspec["hostname"] = json!(name);
    }
    if !node_selector.is_empty() {
        pspec["nodeSelector"] = Value::Object(node_selector);
    }
    for (from, to) in [
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("priorityClassName", "priorityClassName"),
        ("schedulerName", "schedulerName"),
        (
            "terminationGracePeriodSeconds",
            "terminationGracePeriodSeconds",
        ),
    ] {
        if let Some(v) = rs.get(from) {
            pspec[to] = v.clone();
        }
    }
    if let Some(b) = spec.get("batchScheduler").and_then(Value::as_str) {
        pspec["schedulerName"] = json!(b);
    }
    let mut meta = json!({"name": name, "labels": labels, "ownerReferences": owners});
    if let Some(a) = rs.get("annotations") {
        meta["annotations"] = a.clone();
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pspec})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spark_pi_spec() -> Value {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/spark-operator/examples/spark-pi.yaml"
        ));
        let v: Value = serde_yaml_ng::from_str(text).unwrap();
        v["spec"].clone()
    }

    #[test]
    fn spark_pi_driver_is_896mi() {
        let r = pod_resources(&spark_pi_spec(), Role::Driver);
        assert_eq!(r.memory_mib, 896);
    }

    #[test]
    fn python_uses_0_4_and_pyspark_memory() {
        let spec = json!({"type": "Python", "driver": {"cores": 1, "memory": "4g"},
            "executor": {"cores": 2, "memory": "4g"}, "sparkConf": {"spark.executor.pyspark.memory": "1g"}});
        assert_eq!(pod_resources(&spec, Role::Driver).memory_mib, 4096 + 1638);
        assert_eq!(
            pod_resources(&spec, Role::Executor).memory_mib,
            4096 + 1638 + 1024
        );
        assert_eq!(pod_resources(&spec, Role::Executor).cpu_request, "2");
    }

    #[test]
    fn overrides() {
        let spec = json!({"type": "Scala", "memoryOverheadFactor": "0.2",
            "driver": {"cores": 2, "coreRequest": "500m", "coreLimit": "2", "memory": "8g"},
            "executor": {"memory": "2g", "memoryOverhead": "1g"},
            "sparkConf": {"spark.memory.offHeap.enabled": "true", "spark.memory.offHeap.size": "1073741824"}});
        let d = pod_resources(&spec, Role::Driver);
        assert_eq!(d.cpu_request, "500m");
        assert_eq!(d.cpu_limit.as_deref(), Some("2"));
        assert_eq!(d.memory_mib, 8192 + 1638);
        assert_eq!(
            pod_resources(&spec, Role::Executor).memory_mib,
            2048 + 1024 + 1024
        );
        // floor: 512m * 0.1 = 51 < 384
        let small = json!({"driver": {"memory": "512m"}});
        assert_eq!(pod_resources(&small, Role::Driver).memory_mib, 896);
    }

    #[test]
    fn initial_executor_count() {
        assert_eq!(initial_executors(&json!({"executor": {"instances": 3}})), 3);
        assert_eq!(initial_executors(&json!({})), 1);
        assert_eq!(
            initial_executors(
                &json!({"executor": {"instances": 1}, "dynamicAllocation": {"enabled": true, "initialExecutors": 2, "minExecutors": 4}})
            ),
            4
        );
    }
}
