//! The scheduler: binds pending pods (of `schedulerName: default-scheduler`), highest
//! priority first, to the best feasible node. Filters in kube-scheduler's order
//! (NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit) against
//! per-node allocated sums kept by the store, scores by LeastAllocated or
//! MostAllocated with ties to the first node by name, and otherwise reports
//! `PodScheduled=False/Unschedulable` with the real `FitError` message, a
//! `FailedScheduling` event, and priority preemption (respecting
//! `preemptionPolicy: Never`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::{self, Sub, WriteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::resources::Res;
use crate::store::{Alloc, Key, Obj};

use super::events;

mod filter;
mod preempt;

use filter::{NodeView, Reject, filter, node_views, score};
use preempt::preempt;

/// Scheduler queue.
#[derive(Debug, Default)]
pub struct SchedState {
    pending: BTreeSet<Key>,
    /// Something changed that may let a pending pod fit.
    pub dirty: bool,
    last_message: HashMap<Key, String>,
    /// The pods of the sweep in progress, in scheduling order (a snapshot taken when it
    /// began), and the next one to try: a sweep can span passes.
    sweep: Vec<Arc<Obj>>,
    next: usize,
    /// Where the next pod's search for feasible nodes starts (kube-scheduler's
    /// `nextStartNodeIndex`), when it searches only part of a large cluster.
    next_node: usize,
    /// The nodes as filters see them and their indices by name, kept until a node changes
    /// (allocations are refreshed from the store each pass): thousands of nodes are not
    /// parsed again for every pass of a few pods.
    views: Option<(Vec<NodeView>, HashMap<String, usize>)>,
}

impl SchedState {
    /// A node was added, changed or removed.
    pub fn node_changed(&mut self) {
        self.views = None;
        self.dirty = true;
    }

    /// Whether a sweep is in progress or due.
    pub fn busy(&self) -> bool {
        self.dirty || self.next < self.sweep.len()
    }

    /// A new unbound pod.
    pub fn enqueue(&mut self, key: Key) {
        self.pending.insert(key);
        self.dirty = true;
    }

    /// A pod is gone.
    pub fn forget(&mut self, key: &Key) {
        self.pending.remove(key);
        self.last_message.remove(key);
    }

    /// Pods waiting to be scheduled.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Room held by nominated (preempting) pods of at least `priority` on each node.
fn nominated(
    c: &Cluster,
    pending: &[Arc<Obj>],
    except: &Key,
    priority: i32,
) -> HashMap<String, Alloc> {
    let mut out: HashMap<String, Alloc> = HashMap::new();
    for p in pending {
        if &p.key == except {
            continue;
        }
        let Some(f) = &p.pod else { continue };
        if f.priority < priority {
            continue;
        }
        if let Some(n) = p
            .value
            .pointer("/status/nominatedNodeName")
            .and_then(Value::as_str)
        {
            let a = out.entry(n.to_string()).or_default();
            a.req.cpu += f.requests.cpu;
            a.req.mem += f.requests.mem;
            a.pods += 1;
        }
    }
    let _ = c;
    out
}

/// Schedule what can be scheduled: at most `limit` pods of the sweep in progress, or of a new
/// sweep over every pending pod when something changed since the last one ended.
pub fn step(c: &mut Cluster, limit: usize) {
    if !c.ctl.scheduler.busy() {
        return;
    }
    if c.ctl.scheduler.next >= c.ctl.scheduler.sweep.len() {
        let sweep = sweep(c);
        c.ctl.scheduler.sweep = sweep;
        c.ctl.scheduler.next = 0;
    }
    let sweep = std::mem::take(&mut c.ctl.scheduler.sweep);
    let end = c.ctl.scheduler.next.saturating_add(limit).min(sweep.len());
    let (mut nodes, index) = match c.ctl.scheduler.views.take() {
        Some(views) => views,
        None => {
            let nodes = node_views(c);
            let index = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.clone(), i))
                .collect();
            (nodes, index)
        }
    };
    for n in &mut nodes {
        n.alloc = c.store.node_alloc.get(&n.name).copied().unwrap_or_default();
    }
    for pod in &sweep[c.ctl.scheduler.next..end] {
        // Passes may have run since the sweep began: only a pod still waiting is tried.
        let Some(now) = c.store.get(Res::Pod, &pod.key.0, &pod.key.1).filter(|p| {
            p.uid == pod.uid
                && p.pod
                    .as_ref()
                    .is_some_and(|f| f.node.is_none() && !f.terminal() && !f.deleting)
        }) else {
            continue;
        };
        schedule_one(c, &now, &sweep, &mut nodes, &index);
    }
    c.ctl.scheduler.next = end;
    c.ctl.scheduler.sweep = sweep;
    // Scheduling changes pods, never nodes: the views hold until a pass observes a node change.
    c.ctl.scheduler.views = Some((nodes, index));
}

/// A new sweep: the pending pods this scheduler serves, by priority then age.
fn sweep(c: &mut Cluster) -> Vec<Arc<Obj>> {
    c.ctl.scheduler.dirty = false;
    let keys: Vec<Key> = c.ctl.scheduler.pending.iter().cloned().collect();
    let mut pods: Vec<Arc<Obj>> = Vec::new();
    for k in keys {
        match c.store.get(Res::Pod, &k.0, &k.1) {
            Some(p)
                if p.pod
                    .as_ref()
                    .is_some_and(|f| f.node.is_none() && !f.terminal() && !f.deleting)
                    && p.value
                        .pointer("/spec/schedulerName")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "default-scheduler") =>
            {
                pods.push(p)
            }
            _ => {
                c.ctl.scheduler.forget(&k);
            }
        }
    }
    pods.sort_by_cached_key(|p| {
        (
            std::cmp::Reverse(p.pod.as_ref().map_or(0, |f| f.priority)),
            p.rv_created(),
            p.key.clone(),
        )
    });
    pods
}

trait Created {
    fn rv_created(&self) -> String;
}

impl Created for Arc<Obj> {
    fn rv_created(&self) -> String {
        object::meta_str(&self.value, "creationTimestamp")
            .unwrap_or("")
            .to_string()
    }
}

fn bind_to(c: &mut Cluster, pod: &Arc<Obj>, nodes: &mut [NodeView], i: usize) {
    let name = nodes[i].name.clone();
    bind(c, pod, &name);
    // Keep the cached view in step with the store for the next pod of this pass.
    nodes[i].alloc = c.store.node_alloc.get(&name).copied().unwrap_or_default();
}

/// How many feasible nodes a pod's search stops at: every node below 100, then kube-scheduler's
/// adaptive `percentageOfNodesToScore` (50 % less one point per 125 nodes, at least 5 %, at
/// least 100 nodes). A cluster of thousands is not filtered whole for every pod.
fn feasible_nodes_to_find(total: usize) -> usize {
    const MIN_NODES: usize = 100;
    if total < MIN_NODES {
        return total;
    }
    let percentage = 50usize.saturating_sub(total / 125).max(5);
    (total * percentage / 100).max(MIN_NODES)
}

/// The nodes a pod's required node affinity names (`matchFields` on `metadata.name`, `In`) when
/// every term names some: only those can pass. kube-scheduler's NodeAffinity pre-filter
/// narrows the search the same way, so a pod pinned to one node of thousands costs one filter.
fn named_nodes(spec: &Value, index: &HashMap<String, usize>) -> Option<Vec<usize>> {
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    let mut named = BTreeSet::new();
    for term in terms {
        let names = term
            .get("matchFields")
            .and_then(Value::as_array)?
            .iter()
            .find(|e| {
                e.get("key").and_then(Value::as_str) == Some("metadata.name")
                    && e.get("operator").and_then(Value::as_str) == Some("In")
            })?
            .get("values")?
            .as_array()?;
        named.extend(names.iter().filter_map(|n| index.get(n.as_str()?)).copied());
    }
    (!terms.is_empty()).then(|| named.into_iter().collect())
}

fn schedule_one(
    c: &mut Cluster,
    pod: &Arc<Obj>,
    pending: &[Arc<Obj>],
    nodes: &mut [NodeView],
    index: &HashMap<String, usize>,
) {
    let Some(facts) = pod.pod.clone() else { return };
    let spec = pod.value.get("spec").cloned().unwrap_or(Value::Null);
    let nominated = nominated(c, pending, &pod.key, facts.priority);
    let mut best: Option<(f64, usize)> = None;
    let mut rejects: Vec<(usize, Reject)> = Vec::new();
    if let Some(named) = named_nodes(&spec, index) {
        for i in named {
            let n = &nodes[i];
            let extra = nominated.get(&n.name).copied().unwrap_or_default();
            if filter(&spec, facts.requests, n, extra).is_ok() {
                let s = score(c.cfg.scheduler.scoring, facts.requests, n, extra);
                if best.is_none_or(|(b, _)| s > b + 1e-12) {
                    best = Some((s, i));
                }
            }
        }
        if let Some((_, i)) = best {
            bind_to(c, pod, nodes, i);
            return;
        }
        // None fits: the search below goes over every node, for the message and preemption.
    }
    let total = nodes.len();
    let enough = feasible_nodes_to_find(total);
    // A search over every node starts at the first (placements stay as they always were);
    // a partial one goes round the cluster, as kube-scheduler's does.
    let start = if enough < total {
        c.ctl.scheduler.next_node % total
    } else {
        0
    };
    let mut feasible = 0;
    let mut searched = 0;
    for i in (start..total).chain(0..start) {
        if feasible >= enough {
            break;
        }
        searched += 1;
        let n = &nodes[i];
        let extra = nominated.get(&n.name).copied().unwrap_or_default();
        match filter(&spec, facts.requests, n, extra) {
            Ok(()) => {
                feasible += 1;
                let s = score(c.cfg.scheduler.scoring, facts.requests, n, extra);
                if best.is_none_or(|(b, _)| s > b + 1e-12) {
                    best = Some((s, i));
                }
            }
            Err(r) => rejects.push((i, r)),
        }
    }
    if enough < total {
        c.ctl.scheduler.next_node = (start + searched) % total;
    }
    if let Some((_, i)) = best {
        bind_to(c, pod, nodes, i);
        return;
    }
    let mut hist: BTreeMap<String, usize> = BTreeMap::new();
    for (_, r) in &rejects {
        for reason in &r.reasons {
            *hist.entry(reason.clone()).or_default() += 1;
        }
    }
    let mut parts: Vec<String> = hist.iter().map(|(k, v)| format!("{v} {k}")).collect();
    parts.sort();
    let mut message = format!("0/{total} nodes are available: {}.", parts.join(", "));
    let policy = spec
        .get("preemptionPolicy")
        .and_then(Value::as_str)
        .unwrap_or("PreemptLowerPriority");
    // A pod already waiting for its victims to go does not preempt again.
    let waiting = pod
        .value
        .pointer("/status/nominatedNodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| {
            c.store.pods_on_node(n).iter().any(|p| {
                p.pod
                    .as_ref()
                    .is_some_and(|f| f.deleting && f.priority < facts.priority)
            })
        });
    if total == 0 {
        message = "no nodes available to schedule pods".to_string();
    } else if policy == "Never" {
        message.push_str(" preemption: not eligible due to preemptionPolicy=Never.");
    } else if !waiting {
        match preempt(c, pod, nodes, &rejects, &nominated) {
            Ok(()) => {}
            Err(post) => message.push_str(&format!(" {post}")),
        }
    }
    mark_unschedulable(c, pod, &message);
}

/// Set or replace a condition of a pod (by type).
pub fn upsert_condition(pod: &mut Value, cond: Value) {
    let status = object::obj_field_mut(pod, "status");
    let conds = status.entry("conditions").or_insert(json!([]));
    if let Value::Array(list) = conds {
        let t = cond.get("type").cloned();
        match list.iter_mut().find(|c| c.get("type") == t.as_ref()) {
            Some(existing) => {
                // keep lastTransitionTime when the status did not change
                if existing.get("status") == cond.get("status")
                    && let (Some(old), Some(m)) = (
                        existing.get("lastTransitionTime").cloned(),
                        cond.as_object().cloned(),
                    )
                {
                    let mut m = m;
                    m.insert("lastTransitionTime".into(), old);
                    *existing = Value::Object(m);
                } else {
                    *existing = cond;
                }
            }
            None => list.push(cond),
        }
    }
}

fn mark_unschedulable(c: &mut Cluster, pod: &Arc<Obj>, message: &str) {
    if c.ctl
        .scheduler
        .last_message
        .get(&pod.key)
        .map(String::as_str)
        == Some(message)
    {
        return;
    }
    c.ctl
        .scheduler
        .last_message
        .insert(pod.key.clone(), message.to_string());
    let Some(cur) = c.store.get(Res::Pod, &pod.key.0, &pod.key.1) else {
        return;
    };
    let mut nv = cur.value.clone();
    upsert_condition(
        &mut nv,
        json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
               "lastProbeTime": Value::Null, "lastTransitionTime": object::time(object::now())}),
    );
    let _ = api::commit(
        c,
        Res::Pod,
        &cur,
        nv,
        Sub::Status,
        &WriteOpts::internal("default-scheduler"),
    );
    events::record(
        c,
        Res::Pod,
        &cur.value,
        "Warning",
        "FailedScheduling",
        message,
        "default-scheduler",
        "Scheduling",
    );
}

/// Bind a pod to a node (what `POST pods/{name}/binding` does).
pub fn bind(c: &mut Cluster, pod: &Arc<Obj>, node: &str) {
    let Some(cur) = c.store.get(Res::Pod, &pod.key.0, &pod.key.1) else {
        return;
    };
    let mut nv = cur.value.clone();
    object::obj_field_mut(&mut nv, "spec").insert("nodeName".into(), json!(node));
    object::obj_field_mut(&mut nv, "status").remove("nominatedNodeName");
    upsert_condition(
        &mut nv,
        json!({"type": "PodScheduled", "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": object::time(object::now())}),
    );
    if let Some(Value::Array(conds)) = nv.pointer_mut("/status/conditions") {
        for cnd in conds.iter_mut() {
            if cnd.get("type").and_then(Value::as_str) == Some("PodScheduled")
                && let Some(m) = cnd.as_object_mut()
            {
                m.remove("reason");
                m.remove("message");
            }
        }
    }
    c.ctl.scheduler.forget(&pod.key);
    if api::commit(
        c,
        Res::Pod,
        &cur,
        nv,
        Sub::Main,
        &WriteOpts::internal("default-scheduler"),
    )
    .is_ok()
    {
        let msg = format!(
            "Successfully assigned {}/{} to {node}",
            pod.key.0, pod.key.1
        );
        events::record(
            c,
            Res::Pod,
            &cur.value,
            "Normal",
            "Scheduled",
            &msg,
            "default-scheduler",
            "Binding",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::feasible_nodes_to_find;

    #[test]
    fn large_clusters_are_searched_in_part_as_kube_scheduler_does() {
        // (nodes, feasible nodes that end a pod's search)
        let table = [
            (0, 0),
            (5, 5),
            (99, 99),
            (100, 100),
            (200, 100),   // 48 % = 96, but at least 100
            (1000, 420),  // 50 - 8 = 42 %
            (5000, 500),  // 50 - 40 = 10 %
            (10000, 500), // 5 % at least
        ];
        for (nodes, want) in table {
            assert_eq!(feasible_nodes_to_find(nodes), want, "{nodes} nodes");
        }
    }
}
