//! Shared helpers: a simulator per test, the checker under test running against it, pods
//! created through the API, the cluster's truth computed from a fresh list, and bounded
//! condition waits (never sleep-then-assert).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use capacity::convert::{pod_is_active, pod_requests};
use capacity::{Capacity, CapacityConfig, Metrics, Resources};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use kube_sim::{SimConfig, SimHandle, Simulator};
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Every wait in these tests gives up after this long (a failure, not a slow pass).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A simulator on a free loopback port.
pub fn sim(config: SimConfig) -> SimHandle {
    Simulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// A checker running against a simulator, stopped on drop.
pub struct Running {
    pub capacity: Capacity,
    pub registry: Registry,
    token: CancellationToken,
    task: Option<JoinHandle<capacity::Result<()>>>,
}

impl Running {
    /// Starts the checker and waits for its caches to sync.
    pub async fn start(client: Client, config: &CapacityConfig) -> Running {
        config.validate().unwrap();
        let metrics = Metrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let capacity = Capacity::new(client, config, metrics);
        let token = CancellationToken::new();
        let task = {
            let capacity = capacity.clone();
            let token = token.child_token();
            tokio::spawn(async move { capacity.run(token).await })
        };
        capacity.wait_ready(PATIENCE).await.unwrap();
        Running {
            capacity,
            registry,
            token,
            task: Some(task),
        }
    }

    /// The Prometheus text exposition.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    /// Stops the background tasks and waits for them (clean shutdown).
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// Waits until `f` returns `Some`, polling; panics after [`PATIENCE`] with `what`.
pub async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    test_support::eventually(what, PATIENCE, f).await
}

/// A pod spec as JSON: one container with these requests (memory limit = request).
pub fn pod_json(name: &str, cpu: &str, memory: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "labels": {}, "annotations": {} },
        "spec": {
            "containers": [{
                "name": "main",
                "image": "busybox",
                "resources": { "requests": { "cpu": cpu, "memory": memory }, "limits": { "memory": memory } }
            }]
        }
    })
}

/// Creates a pod from JSON in `ns`.
pub async fn create_pod(client: &Client, ns: &str, pod: serde_json::Value) -> Pod {
    let pod: Pod = serde_json::from_value(pod).unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap()
}

/// Per node, the requests of bound, non-terminal pods, from a fresh list (the truth the cache
/// must equal).
pub async fn truth(client: &Client) -> BTreeMap<String, Resources> {
    let pods = Api::<Pod>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let mut out: BTreeMap<String, Resources> = BTreeMap::new();
    for p in pods {
        let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        if !pod_is_active(&p) {
            continue;
        }
        let r = out.entry(node).or_default();
        *r = r.saturating_add(&pod_requests(p.spec.as_ref().unwrap()));
    }
    out
}

/// Per node, what the checker's cache holds (non-zero entries only).
pub fn cached(capacity: &Capacity) -> BTreeMap<String, Resources> {
    capacity.snapshot().with_cache(|c| {
        c.nodes()
            .iter()
            .filter(|n| n.requested != Resources::default())
            .map(|n| (n.name.clone(), n.requested))
            .collect()
    })
}

/// Waits until the cache equals the truth and `also` holds on the truth.
pub async fn cache_converges(
    client: &Client,
    capacity: &Capacity,
    what: &str,
    also: impl Fn(&BTreeMap<String, Resources>) -> bool,
) {
    eventually(what, || async {
        let t = truth(client).await;
        (also(&t) && cached(capacity) == t).then_some(())
    })
    .await;
}

/// Pods of a namespace as (name, node, phase).
pub async fn pods_in(
    client: &Client,
    ns: &str,
    labels: &str,
) -> Vec<(String, Option<String>, String)> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(labels))
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default();
            (p.metadata.name.unwrap_or_default(), node, phase)
        })
        .collect()
}
