//! The emulated control plane. One loop ([`run`]) wakes on changes or every few
//! milliseconds, takes the cluster lock and lets each controller react to the changes
//! the store recorded since the last pass: garbage collector, namespace controller,
//! quota controller, scheduler, kubelet and the Spark Operator (with Spark's driver). A pass
//! handles a bounded number of pods and applications and lets the lock go, so the API keeps
//! answering while a backlog (a wave of drivers due at once) drains.

pub mod events;
pub mod gc;
pub mod kubelet;
pub mod scheduler;
pub mod spark;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::{Cluster, Shared};
use crate::resources::Res;
use crate::store::{EventType, Key};

/// Private state of all controllers.
#[derive(Debug, Default)]
pub struct State {
    /// Scheduler queue and bookkeeping.
    pub scheduler: scheduler::SchedState,
    /// Kubelet timers.
    pub kubelet: kubelet::KubeletState,
    /// Spark applications in flight.
    pub spark: spark::SparkState,
    /// Event de-duplication.
    pub events: events::EventState,
    /// Owner uids whose dependents must be checked.
    pub gc_queue: BTreeSet<String>,
    /// Namespaces whose quotas need a recount.
    pub quota_dirty: BTreeSet<String>,
    /// Namespaces being deleted.
    pub terminating: BTreeSet<String>,
}

/// Objects each controller handles in one pass of [`run`], at most, before the lock is let
/// go: a real API server serves requests while its controllers and kubelets work through a
/// backlog (a thousand drivers due at once must not hold every create for seconds).
const PASS_LIMIT: usize = 32;
/// Passes in a row before [`run`] waits for the next tick (a controller that keeps itself
/// busy cannot spin).
const PASSES_PER_TICK: usize = 64;

/// The controller loop; returns when `token` is cancelled. Works in passes of at most
/// [`PASS_LIMIT`] objects per controller and yields between passes, so API requests get the
/// lock while a backlog drains.
pub async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {},
            _ = shared.wake.notified() => {},
        }
        for _ in 0..PASSES_PER_TICK {
            let more = {
                let mut c = shared.lock();
                if busy(&c) {
                    pass(&mut c, PASS_LIMIT);
                }
                busy(&c)
            };
            if !more || token.is_cancelled() {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// One round of every controller, to quiescence or four passes (used by tests through the
/// handle, which assert on its consequences at once).
pub fn round(c: &mut Cluster) {
    // Changes made during this round are seen in the next one.
    for _ in 0..4 {
        if !busy(c) {
            break;
        }
        pass(c, usize::MAX);
        if c.store.changes.is_empty() {
            break;
        }
    }
}

/// Whether any controller has work now.
fn busy(c: &Cluster) -> bool {
    !c.store.changes.is_empty()
        || c.ctl.scheduler.busy()
        || c.ctl.kubelet.due(c.clock.now())
        || c.ctl.spark.pending(c.clock.now())
}

/// One pass: every controller reacts to the changes recorded so far, each handling at most
/// `limit` pods or applications (the rest stay queued for the next pass).
fn pass(c: &mut Cluster, limit: usize) {
    let changes = std::mem::take(&mut c.store.changes);
    for ch in &changes {
        observe(
            c,
            ch.res,
            ch.event.etype,
            &ch.event.obj.key,
            &ch.event.obj.value,
            ch.event.prev.as_ref().map(|p| &p.value),
        );
    }
    gc::step(c);
    namespaces_step(c);
    let dirty: Vec<String> = std::mem::take(&mut c.ctl.quota_dirty).into_iter().collect();
    for ns in dirty {
        crate::quota::sync_namespace(c, &ns);
    }
    scheduler::step(c, limit);
    kubelet::step(c, limit);
    spark::step(c, limit);
}

fn observe(
    c: &mut Cluster,
    res: Res,
    etype: EventType,
    key: &Key,
    obj: &Value,
    prev: Option<&Value>,
) {
    match res {
        Res::Pod => {
            let phase = |v: &Value| {
                v.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let node = |v: &Value| {
                v.pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            match etype {
                EventType::Added => {
                    if node(obj).is_empty() {
                        c.ctl.scheduler.enqueue(key.clone());
                    } else {
                        kubelet::on_bound(c, key);
                    }
                }
                EventType::Modified => {
                    let was_terminal =
                        prev.is_some_and(|p| ["Succeeded", "Failed"].contains(&phase(p).as_str()));
                    let is_terminal = ["Succeeded", "Failed"].contains(&phase(obj).as_str());
                    if is_terminal && !was_terminal {
                        c.ctl.scheduler.dirty = true;
                        c.ctl.quota_dirty.insert(key.0.clone());
                    }
                    if prev.is_some_and(|p| node(p).is_empty()) && !node(obj).is_empty() {
                        kubelet::on_bound(c, key);
                    }
                }
                EventType::Deleted => {
                    c.ctl.scheduler.forget(key);
                    c.ctl.scheduler.dirty = true;
                    c.ctl.quota_dirty.insert(key.0.clone());
                    if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
                        c.ctl.gc_queue.insert(uid.to_string());
                    }
                }
            }
            spark::observe_pod(c, key, obj);
        }
        Res::Node => {
            c.ctl.scheduler.node_changed();
            if etype == EventType::Deleted
                && let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str)
            {
                c.ctl.gc_queue.insert(uid.to_string());
                kubelet::node_gone(c, &key.1);
            }
        }
        Res::ResourceQuota => {
            if obj.pointer("/spec/hard") != obj.pointer("/status/hard") {
                c.ctl.quota_dirty.insert(key.0.clone());
            }
        }
        Res::Namespace => {
            if obj.pointer("/metadata/deletionTimestamp").is_some() && etype != EventType::Deleted {
                c.ctl.terminating.insert(key.1.clone());
            }
        }
        Res::SparkApplication => {
            if etype == EventType::Deleted {
                if let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str) {
                    c.ctl.gc_queue.insert(uid.to_string());
                    c.ctl.spark.forget(uid);
                }
            } else {
                spark::observe_app(c, key, obj);
            }
            c.ctl.quota_dirty.insert(key.0.clone());
        }
        _ => {
            if etype == EventType::Deleted
                && let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str)
            {
                c.ctl.gc_queue.insert(uid.to_string());
            }
        }
    }
    // Foreground deletion: the collector deletes the dependents of an owner marked so.
    let foreground = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
    if etype != EventType::Deleted
        && foreground
        && obj.pointer("/metadata/deletionTimestamp").is_some()
        && let Some(uid) = obj.pointer("/metadata/uid").and_then(Value::as_str)
    {
        c.ctl.gc_queue.insert(uid.to_string());
    }
    // An owner waiting for this dependent may now be done.
    if etype == EventType::Deleted {
        for owner in crate::object::owner_uids(obj) {
            c.ctl.gc_queue.insert(owner);
        }
    }
}

fn namespaces_step(c: &mut Cluster) {
    let names: Vec<String> = c.ctl.terminating.iter().cloned().collect();
    for ns in names {
        let mut remaining = 0;
        for res in crate::resources::ALL {
            if !res.def().namespaced {
                continue;
            }
            let keys: Vec<Key> = c
                .store
                .iter(res, Some(&ns), None)
                .map(|o| o.key.clone())
                .collect();
            for k in keys {
                remaining += 1;
                let opts = crate::api::DeleteOpts {
                    grace: Some(0),
                    ..Default::default()
                };
                let _ = crate::api::delete(c, res, &k.0, &k.1, &opts);
            }
        }
        if remaining == 0 {
            c.store.remove(Res::Namespace, "", &ns);
            c.ctl.terminating.remove(&ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::api::{self, WriteOpts};
    use crate::config::SimConfig;

    /// A cluster of `nodes` roomy nodes with `pods` unbound pods of 1 cpu.
    fn cluster_with_pods(nodes: usize, pods: usize) -> Arc<Shared> {
        let shared = crate::cluster::build(SimConfig::uniform(nodes, "64", "256Gi")).unwrap();
        add_pods(&shared, "p", pods, "1");
        shared
    }

    fn add_pods(shared: &Shared, prefix: &str, count: usize, cpu: &str) {
        for i in 0..count {
            create_pod(
                shared,
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{prefix}{i}"), "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}
                }),
            );
        }
    }

    fn create_pod(shared: &Shared, pod: Value) {
        api::create(
            &mut shared.lock(),
            Res::Pod,
            "default",
            pod,
            &WriteOpts::internal("test"),
        )
        .unwrap();
    }

    #[test]
    fn in_a_large_cluster_the_next_search_starts_where_the_last_one_stopped() {
        // 300 empty nodes: a search ends after 144 feasible ones. Bin packing would put both
        // pods on one node if every node were searched; the second search starts past it.
        let mut config = SimConfig::uniform(300, "64", "256Gi");
        config.scheduler.scoring = crate::config::Scoring::MostAllocated;
        let shared = crate::cluster::build(config).unwrap();
        let node_of = |name: &str| {
            let c = shared.lock();
            c.store
                .get(Res::Pod, "default", name)
                .and_then(|p| p.pod.as_ref()?.node.clone())
        };
        add_pods(&shared, "first", 1, "1");
        round(&mut shared.lock());
        add_pods(&shared, "second", 1, "1");
        round(&mut shared.lock());
        let (first, second) = (node_of("first0"), node_of("second0"));
        assert!(first.is_some() && second.is_some(), "both bound");
        assert_ne!(first, second);

        // Below 100 nodes every node is searched from the first: the pods share one node.
        let mut config = SimConfig::uniform(99, "64", "256Gi");
        config.scheduler.scoring = crate::config::Scoring::MostAllocated;
        let small = crate::cluster::build(config).unwrap();
        add_pods(&small, "p", 2, "1");
        round(&mut small.lock());
        let c = small.lock();
        let nodes: BTreeSet<_> = c
            .store
            .iter(Res::Pod, Some("default"), None)
            .filter_map(|p| p.pod.as_ref()?.node.clone())
            .collect();
        assert_eq!(nodes.len(), 1, "{nodes:?}");
    }

    #[test]
    fn a_pod_pinned_by_name_lands_on_its_node_or_says_why_not() {
        let shared = crate::cluster::build(SimConfig::uniform(300, "64", "256Gi")).unwrap();
        for (name, node) in [("pinned", "general-0299"), ("nowhere", "no-such-node")] {
            let pod = json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchFields": [
                            {"key": "metadata.name", "operator": "In", "values": [node]}
                        ]}]
                    }}},
                    "containers": [{"name": "c", "image": "busybox",
                        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]
                }
            });
            create_pod(&shared, pod);
        }
        round(&mut shared.lock());
        let c = shared.lock();
        let pod = |name: &str| c.store.get(Res::Pod, "default", name).unwrap();
        assert_eq!(
            pod("pinned")
                .pod
                .as_ref()
                .and_then(|f| f.node.clone())
                .as_deref(),
            Some("general-0299")
        );
        let nowhere = pod("nowhere");
        assert!(nowhere.pod.as_ref().is_some_and(|f| f.node.is_none()));
        let message = nowhere
            .value
            .pointer("/status/conditions/0/message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        assert!(
            message.starts_with(
                "0/300 nodes are available: 300 node(s) didn't match Pod's node affinity/selector."
            ),
            "{message}"
        );
    }

    #[test]
    fn pods_that_fit_nowhere_do_not_hold_back_those_behind_them() {
        let shared = crate::cluster::build(SimConfig::uniform(2, "4", "16Gi")).unwrap();
        // First in the scheduling order, and never placeable.
        add_pods(&shared, "a", 5, "100");
        add_pods(&shared, "p", 6, "1");
        for _ in 0..50 {
            if !busy(&shared.lock()) {
                break;
            }
            pass(&mut shared.lock(), 2);
        }
        assert_eq!(bound(&shared.lock()), 6);
    }

    fn bound(c: &Cluster) -> usize {
        c.store
            .iter(Res::Pod, Some("default"), None)
            .filter(|p| p.pod.as_ref().is_some_and(|f| f.node.is_some()))
            .count()
    }

    #[test]
    fn a_pass_handles_at_most_its_limit_and_leaves_the_rest_queued() {
        // (pods, limit, bound after one pass, busy after it)
        let table: [(usize, usize, usize, bool); 4] = [
            (10, 32, 10, true), // all bound; their kubelet starts are left
            (100, 32, 32, true),
            (100, 1, 1, true),
            (64, 64, 64, true),
        ];
        for (pods, limit, after, still) in table {
            let shared = cluster_with_pods(4, pods);
            let mut c = shared.lock();
            pass(&mut c, limit);
            assert_eq!(bound(&c), after, "{pods} pods, limit {limit}");
            assert_eq!(busy(&c), still, "{pods} pods, limit {limit}");
        }
    }

    #[test]
    fn bounded_passes_end_where_an_unbounded_round_ends() {
        let bounded = cluster_with_pods(4, 150);
        let mut passes = 0;
        while busy(&bounded.lock()) {
            pass(&mut bounded.lock(), 16);
            passes += 1;
            assert!(passes < 1000, "bounded passes never settle");
        }
        let unbounded = cluster_with_pods(4, 150);
        while busy(&unbounded.lock()) {
            round(&mut unbounded.lock());
        }
        assert!(
            passes >= 150 / 16,
            "{passes} passes for 150 pods at 16 a pass"
        );
        // Pods per node: the order within a second of creation times may differ between the
        // two clusters, the spread may not.
        let per_node = |s: &Arc<Shared>| {
            let c = s.lock();
            let mut on: BTreeMap<String, usize> = BTreeMap::new();
            for p in c.store.iter(Res::Pod, Some("default"), None) {
                let node = p
                    .pod
                    .as_ref()
                    .and_then(|f| f.node.clone())
                    .unwrap_or_default();
                *on.entry(node).or_default() += 1;
            }
            on
        };
        let (b, u) = (per_node(&bounded), per_node(&unbounded));
        assert_eq!(b.values().sum::<usize>(), 150);
        assert!(!b.contains_key(""), "every pod bound: {b:?}");
        assert_eq!(b, u, "the same spread");
    }
}
