//! The emulated control plane. One loop ([`run`]) wakes on changes or every few
//! milliseconds, takes the cluster lock and lets each controller react to the changes
//! the store recorded since the last round: garbage collector, namespace controller,
//! quota controller, scheduler, kubelet and the Spark Operator (with Spark's driver).

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

/// The controller loop; returns when `token` is cancelled.
pub async fn run(shared: Arc<Shared>, token: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            _ = tick.tick() => {},
            _ = shared.wake.notified() => {},
        }
        let mut c = shared.lock();
        round(&mut c);
    }
}

/// One round of every controller (also used by tests through the handle).
pub fn round(c: &mut Cluster) {
    // Changes made during this round are seen in the next one.
    for _ in 0..4 {
        let changes = std::mem::take(&mut c.store.changes);
        if changes.is_empty()
            && !c.ctl.scheduler.dirty
            && !c.ctl.kubelet.due(c.clock.now())
            && !c.ctl.spark.pending(c.clock.now())
        {
            break;
        }
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
        scheduler::step(c);
        kubelet::step(c);
        spark::step(c);
        if c.store.changes.is_empty() {
            break;
        }
    }
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
            c.ctl.scheduler.dirty = true;
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
