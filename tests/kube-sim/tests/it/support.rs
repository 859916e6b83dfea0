//! Shared helpers: start a simulator, build objects, wait for conditions with a bound.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::wait::{Condition, await_condition};
use kube::{Client, Resource};
use kube_sim::{SimConfig, SimHandle, Simulator};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(20);

pub fn start(cfg: SimConfig) -> SimHandle {
    Simulator::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// A fast clock: 100 simulated seconds per wall second, short delays.
pub fn fast(cfg: SimConfig) -> SimConfig {
    let mut cfg = cfg.with_speed(100.0);
    cfg.simulation.pod_start_delay = Duration::from_secs(1);
    cfg.simulation.submit_delay = Duration::from_secs(1);
    cfg.simulation.executor_request_delay = Duration::from_secs(1);
    cfg.simulation.bookmark_interval = Duration::from_millis(200);
    cfg
}

pub fn client(sim: &SimHandle) -> Client {
    sim.client().unwrap()
}

pub fn pod(name: &str, cpu: &str, mem: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "test"}},
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36",
            "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}
    }))
    .unwrap()
}

pub fn pod_json(v: Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

pub fn spark_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("sparkoperator.k8s.io", "v1beta2", "SparkApplication");
    ApiResource::from_gvk_with_plural(&gvk, "sparkapplications")
}

pub fn spark_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &spark_resource())
}

pub fn spark_pi() -> Value {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/spark-operator/examples/spark-pi.yaml"
    ));
    serde_yaml_ng::from_str(text).unwrap()
}

/// A SparkApplication like spark-pi, renamed, with annotations and executor count.
pub fn spark_app(name: &str, annotations: Value, instances: u32) -> DynamicObject {
    let mut v = spark_pi();
    v["metadata"] = json!({"name": name, "annotations": annotations});
    v["spec"]["executor"]["instances"] = json!(instances);
    serde_json::from_value(v).unwrap()
}

/// Wait until `cond` holds for the named object, or fail after [`WAIT`].
pub async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Condition<K>) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond)).await {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => panic!("{name} was deleted while waiting for: {what}"),
        Ok(Err(e)) => panic!("watch failed while waiting for {name} ({what}): {e}"),
        Err(_) => {
            let now = api.get_opt(name).await.ok().flatten();
            panic!("timed out waiting for {name}: {what}; last state: {now:?}")
        }
    }
}

/// Wait until `name` no longer exists.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let fut = await_condition(
        api.clone(),
        name,
        kube::runtime::wait::conditions::is_deleted(""),
    );
    // is_deleted("") matches any uid: the object is gone when the watcher reports None.
    match tokio::time::timeout(WAIT, fut).await {
        Ok(_) => {}
        Err(_) => panic!("timed out waiting for {name} to be deleted"),
    }
}

/// Poll `f` (cheap, in-process) until it returns Some, or fail after [`WAIT`].
pub async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn phase(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_default()
}

pub fn node_of(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(|s| s.node_name.clone())
}

pub fn app_state(o: &DynamicObject) -> String {
    o.data
        .pointer("/status/applicationState/state")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Pod condition on a status field.
pub fn pod_is(pred: impl Fn(&Pod) -> bool) -> impl Condition<Pod> {
    move |o: Option<&Pod>| o.is_some_and(&pred)
}

/// GET a path on the simulator (for the admin API) with the kube client.
pub async fn http(client: &Client, method: &str, path: &str, body: Option<Value>) -> Value {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default(),
        )
        .unwrap();
    let text = client.request_text(req).await.unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Wait until a SparkApplication reaches `state`.
pub async fn wait_app(apps: &Api<DynamicObject>, name: &str, state: &str) -> DynamicObject {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let cur = apps.get(name).await.ok();
        if let Some(o) = cur.as_ref().filter(|o| app_state(o) == state) {
            return o.clone();
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out waiting for {name} in state {state}; last: {:?}",
                cur.map(|o| o.data)
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Send a JSON patch (RFC 6902) with the kube client.
pub async fn json_patch(client: &Client, path: &str, ops: Value) -> Result<Value, kube::Error> {
    let req = http::Request::builder()
        .method("PATCH")
        .uri(path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&ops).unwrap())
        .unwrap();
    client.request::<Value>(req).await
}
