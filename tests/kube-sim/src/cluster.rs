//! The simulated cluster's whole state behind one lock: the store, the clock, the
//! controllers' private state and the fault injector. Also seeds the initial objects
//! (namespaces, nodes, quotas, priority classes) from [`SimConfig`].

use std::sync::{Arc, Mutex, MutexGuard};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use crate::api::{self, WriteOpts};
use crate::clock::Clock;
use crate::config::{PoolConfig, SimConfig};
use crate::faults::Faults;
use crate::resources::Res;
use crate::store::Store;
use crate::{controllers, object, quantity};

/// Everything mutable, guarded by one mutex.
#[derive(Debug)]
pub struct Cluster {
    /// Configuration in force.
    pub cfg: SimConfig,
    /// Objects.
    pub store: Store,
    /// Simulated time.
    pub clock: Clock,
    /// Fault injection and counters.
    pub faults: Faults,
    /// Random names and ids.
    pub rng: StdRng,
    /// Controllers' private state.
    pub ctl: controllers::State,
    /// Tokens, RBAC policy cache and access log, when `[auth]` is configured.
    pub auth: Option<crate::auth::AuthState>,
}

/// What handlers and controllers share.
#[derive(Debug)]
pub struct Shared {
    cluster: Mutex<Cluster>,
    /// Bumped to close every open watch.
    pub drop_watches: watch::Sender<u64>,
    /// Wakes the controller loop early.
    pub wake: Notify,
    /// Counters for `/sim/stats` that watch streams update without the lock.
    pub watch_stats: crate::server::watch::WatchStats,
    /// `[auth]` is configured (fixed at start; read without the lock on every request).
    pub auth_enabled: bool,
}

impl Shared {
    /// Lock the cluster (a poisoned lock is taken over: a panic elsewhere must not wedge the API).
    pub fn lock(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Build the shared state and seed it from the configuration (manifest files are read
/// here; an object the API refuses is an error naming it).
pub fn build(cfg: SimConfig) -> Result<Arc<Shared>, crate::Error> {
    let mut objects = crate::manifests::read(&cfg.manifests).map_err(crate::Error::Config)?;
    objects.extend(cfg.objects.iter().cloned());
    let mut c = Cluster {
        auth: cfg.auth.clone().map(crate::auth::AuthState::new),
        store: Store::new(cfg.simulation.watch_history),
        clock: Clock::new(cfg.simulation.speed),
        faults: Faults::new(cfg.faults.clone(), cfg.simulation.seed),
        rng: StdRng::seed_from_u64(cfg.simulation.seed),
        ctl: controllers::State::default(),
        cfg,
    };
    seed(&mut c);
    if c.auth.is_some() {
        objects.splice(0..0, crate::auth::bootstrap_objects());
    }
    let skipped = crate::manifests::create_all(&mut c, &objects).map_err(crate::Error::Config)?;
    if skipped > 0 {
        tracing::info!(
            skipped,
            "manifests: objects of kinds kube-sim does not serve were skipped"
        );
    }
    // Seeding is not part of any watch history: clients start from a list.
    c.store.changes.clear();
    Ok(Arc::new(Shared {
        auth_enabled: c.auth.is_some(),
        cluster: Mutex::new(c),
        drop_watches: watch::channel(0).0,
        wake: Notify::new(),
        watch_stats: Default::default(),
    }))
}

fn system() -> WriteOpts {
    WriteOpts::internal("kube-sim")
}

fn seed(c: &mut Cluster) {
    let mut namespaces: Vec<(String, Value)> =
        ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .map(|n| (n.to_string(), json!({})))
            .collect();
    for n in &c.cfg.namespaces {
        if !namespaces.iter().any(|(x, _)| x == &n.name) {
            namespaces.push((n.name.clone(), json!(n.labels)));
        }
    }
    for (name, labels) in namespaces {
        let mut labels = labels;
        object::as_map(&mut labels).insert("kubernetes.io/metadata.name".into(), json!(name));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}});
        let _ = api::create(c, Res::Namespace, "", ns, &system());
    }
    for pc in [
        ("system-cluster-critical", 2_000_000_000),
        ("system-node-critical", 2_000_001_000),
    ] {
        let v = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": pc.0}, "value": pc.1, "preemptionPolicy": "PreemptLowerPriority",
            "description": "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."});
        let _ = api::create(c, Res::PriorityClass, "", v, &system());
    }
    for pc in c.cfg.priority_classes.clone() {
        let mut v = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": pc.name}, "value": pc.value, "globalDefault": pc.global_default,
            "preemptionPolicy": pc.preemption_policy.unwrap_or_else(|| "PreemptLowerPriority".into())});
        if let Some(d) = pc.description {
            v["description"] = json!(d);
        }
        let _ = api::create(c, Res::PriorityClass, "", v, &system());
    }
    for pool in c.cfg.pools.clone() {
        for i in 0..pool.count {
            let node = node_object(&pool, i, c.store.count(Res::Node));
            let _ = api::create(c, Res::Node, "", node, &system());
        }
    }
    for q in c.cfg.quotas.clone() {
        let v = json!({"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": q.name, "namespace": q.namespace}, "spec": {"hard": q.hard}});
        let _ = api::create(c, Res::ResourceQuota, &q.namespace, v, &system());
    }
    crate::quota::sync_all(c);
    // Seeding is not part of any watch history: clients start from a list.
    c.store.changes.clear();
}

/// The name of node `i` of a pool.
pub fn node_name(pool: &str, i: usize) -> String {
    format!("{pool}-{i:04}")
}

/// A Node object for node `i` of `pool`, Ready, with capacity = allocatable.
pub fn node_object(pool: &PoolConfig, i: usize, seq: usize) -> Value {
    let name = node_name(&pool.name, i);
    let mut labels = json!({
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": pool.instance_type.clone().unwrap_or_else(|| pool.name.clone()),
        "topology.kubernetes.io/zone": format!("sim-zone-{}", (i % 3) + 1),
        "kube-sim.dev/pool": pool.name,
    });
    for (k, v) in &pool.labels {
        object::as_map(&mut labels).insert(k.clone(), json!(v));
    }
    let taints: Vec<Value> = pool
        .taints
        .iter()
        .map(|t| {
            let mut v = json!({"key": t.key, "effect": t.effect});
            if let Some(val) = &t.value {
                v["value"] = json!(val);
            }
            v
        })
        .collect();
    let cpu = quantity::format_cpu(quantity::cpu_millis(&pool.cpu).unwrap_or(0));
    let mem = quantity::format_mem(quantity::units(&pool.memory).unwrap_or(0));
    let resources = json!({"cpu": cpu, "memory": mem, "pods": pool.pods.to_string(), "ephemeral-storage": "100Gi"});
    let now = object::time(object::now());
    let ip = format!(
        "10.{}.{}.{}",
        1 + (seq / 65536) % 200,
        (seq / 256) % 256,
        seq % 256
    );
    let mut spec = json!({"podCIDR": format!("10.244.{}.0/24", i % 256), "providerID": format!("kube-sim://{name}")});
    if !taints.is_empty() {
        spec["taints"] = json!(taints);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kube-sim.dev/pool": pool.name}},
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "phase": "Running",
            "conditions": [
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory", "message": "kubelet has sufficient memory available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "DiskPressure", "status": "False", "reason": "KubeletHasNoDiskPressure", "message": "kubelet has no disk pressure", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "PIDPressure", "status": "False", "reason": "KubeletHasSufficientPID", "message": "kubelet has sufficient PID available", "lastHeartbeatTime": now, "lastTransitionTime": now},
                {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}
            ],
            "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", i),
                "systemUUID": format!("00000000-0000-0000-0000-{:012x}", i),
                "bootID": format!("00000000-0000-0000-0001-{:012x}", i),
                "kernelVersion": "6.1.0-kube-sim",
                "osImage": "kube-sim virtual node",
                "containerRuntimeVersion": "containerd://1.7.27",
                "kubeletVersion": "v1.33.0",
                "kubeProxyVersion": "v1.33.0",
                "operatingSystem": "linux",
                "architecture": "amd64"
            }
        }
    })
}
