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

use crate::api::{self, DeleteOpts, Sub, WriteOpts};
use crate::cluster::Cluster;
use crate::config::Scoring;
use crate::podres::Res2;
use crate::resources::Res;
use crate::store::{Alloc, Key, Obj};
use crate::{object, quantity};

use super::events;

/// Scheduler queue.
#[derive(Debug, Default)]
pub struct SchedState {
    pending: BTreeSet<Key>,
    /// Something changed that may let a pending pod fit.
    pub dirty: bool,
    last_message: HashMap<Key, String>,
}

impl SchedState {
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

/// One node's view for filtering.
struct NodeView {
    name: String,
    obj: Arc<Obj>,
    allocatable: Res2,
    max_pods: i64,
    alloc: Alloc,
}

/// Why a node was rejected.
struct Reject {
    reasons: Vec<String>,
    /// Preemption could help (resources only).
    resolvable: bool,
}

fn tolerates(tolerations: &[Value], key: &str, value: &str, effect: &str) -> bool {
    tolerations.iter().any(|t| {
        let tk = t.get("key").and_then(Value::as_str).unwrap_or("");
        let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
        let tv = t.get("value").and_then(Value::as_str).unwrap_or("");
        let te = t.get("effect").and_then(Value::as_str).unwrap_or("");
        let key_ok = tk == key || (tk.is_empty() && op == "Exists");
        let effect_ok = te.is_empty() || te == effect;
        let value_ok = op == "Exists" || tv == value;
        key_ok && effect_ok && value_ok
    })
}

fn node_selector_term_matches(
    term: &Value,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> bool {
    let exprs = term
        .get("matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let fields = term
        .get("matchFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let check = |e: &Value, actual: Option<&str>| {
        let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
        let vals: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        match op {
            "In" => actual.is_some_and(|a| vals.contains(&a)),
            "NotIn" => actual.is_none_or(|a| !vals.contains(&a)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            "Gt" => actual
                .and_then(|a| a.parse::<i64>().ok())
                .zip(vals.first().and_then(|v| v.parse::<i64>().ok()))
                .is_some_and(|(a, v)| a > v),
            "Lt" => actual
                .and_then(|a| a.parse::<i64>().ok())
                .zip(vals.first().and_then(|v| v.parse::<i64>().ok()))
                .is_some_and(|(a, v)| a < v),
            _ => false,
        }
    };
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|e| {
        check(
            e,
            e.get("key")
                .and_then(Value::as_str)
                .and_then(|k| labels.get(k))
                .map(String::as_str),
        )
    }) && fields.iter().all(|e| {
        check(
            e,
            (e.get("key").and_then(Value::as_str) == Some("metadata.name")).then_some(node_name),
        )
    })
}

fn affinity_matches(spec: &Value, labels: &BTreeMap<String, String>, node_name: &str) -> bool {
    if let Some(sel) = spec.get("nodeSelector").and_then(Value::as_object) {
        for (k, v) in sel {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    let terms = spec
        .pointer("/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")
        .and_then(Value::as_array);
    match terms {
        Some(ts) if !ts.is_empty() => ts
            .iter()
            .any(|t| node_selector_term_matches(t, labels, node_name)),
        _ => true,
    }
}

fn filter(spec: &Value, req: Res2, node: &NodeView, extra: Alloc) -> Result<(), Reject> {
    let tolerations: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let nspec = node.obj.value.get("spec").cloned().unwrap_or(Value::Null);
    if nspec.get("unschedulable").and_then(Value::as_bool) == Some(true)
        && !tolerates(
            &tolerations,
            "node.kubernetes.io/unschedulable",
            "",
            "NoSchedule",
        )
    {
        return Err(Reject {
            reasons: vec!["node(s) were unschedulable".into()],
            resolvable: false,
        });
    }
    if let Some(taints) = nspec.get("taints").and_then(Value::as_array) {
        for t in taints {
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            if effect != "NoSchedule" && effect != "NoExecute" {
                continue;
            }
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let value = t.get("value").and_then(Value::as_str).unwrap_or("");
            if !tolerates(&tolerations, key, value, effect) {
                return Err(Reject {
                    reasons: vec![format!("node(s) had untolerated taint {{{key}: {value}}}")],
                    resolvable: false,
                });
            }
        }
    }
    if !affinity_matches(spec, &node.obj.labels, &node.name) {
        return Err(Reject {
            reasons: vec!["node(s) didn't match Pod's node affinity/selector".into()],
            resolvable: false,
        });
    }
    let mut reasons = Vec::new();
    let used = Alloc {
        req: Res2 {
            cpu: node.alloc.req.cpu + extra.req.cpu,
            mem: node.alloc.req.mem + extra.req.mem,
        },
        pods: node.alloc.pods + extra.pods,
    };
    if used.pods + 1 > node.max_pods {
        reasons.push("Too many pods".to_string());
    }
    if req.cpu > 0 && used.req.cpu + req.cpu > node.allocatable.cpu {
        reasons.push("Insufficient cpu".to_string());
    }
    if req.mem > 0 && used.req.mem + req.mem > node.allocatable.mem {
        reasons.push("Insufficient memory".to_string());
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Reject {
            reasons,
            resolvable: true,
        })
    }
}

fn score(scoring: Scoring, req: Res2, node: &NodeView, extra: Alloc) -> f64 {
    let frac = |used: i64, cap: i64| {
        if cap <= 0 {
            1.0
        } else {
            used as f64 / cap as f64
        }
    };
    let cpu = frac(
        node.alloc.req.cpu + extra.req.cpu + req.cpu,
        node.allocatable.cpu,
    );
    let mem = frac(
        node.alloc.req.mem + extra.req.mem + req.mem,
        node.allocatable.mem,
    );
    let used = (cpu + mem) / 2.0;
    match scoring {
        Scoring::LeastAllocated => 1.0 - used,
        Scoring::MostAllocated => used,
    }
}

fn node_views(c: &Cluster) -> Vec<NodeView> {
    c.store
        .iter(Res::Node, None, None)
        .map(|n| {
            let alloc = |k: &str| {
                n.value
                    .pointer(&format!("/status/allocatable/{k}"))
                    .and_then(Value::as_str)
                    .unwrap_or("0")
                    .to_string()
            };
            NodeView {
                name: n.key.1.clone(),
                allocatable: Res2 {
                    cpu: quantity::cpu_millis(&alloc("cpu")).unwrap_or(0),
                    mem: quantity::units(&alloc("memory")).unwrap_or(0),
                },
                max_pods: quantity::units(&alloc("pods")).unwrap_or(0),
                alloc: c
                    .store
                    .node_alloc
                    .get(&n.key.1)
                    .copied()
                    .unwrap_or_default(),
                obj: n.clone(),
            }
        })
        .collect()
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

/// Schedule what can be scheduled.
pub fn step(c: &mut Cluster) {
    if !c.ctl.scheduler.dirty {
        return;
    }
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
    pods.sort_by_key(|p| {
        (
            std::cmp::Reverse(p.pod.as_ref().map_or(0, |f| f.priority)),
            p.rv_created(),
            p.key.clone(),
        )
    });
    let mut nodes = node_views(c);
    for pod in pods.clone() {
        schedule_one(c, &pod, &pods, &mut nodes);
    }
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

fn schedule_one(c: &mut Cluster, pod: &Arc<Obj>, pending: &[Arc<Obj>], nodes: &mut [NodeView]) {
    let Some(facts) = pod.pod.clone() else { return };
    let spec = pod.value.get("spec").cloned().unwrap_or(Value::Null);
    let nominated = nominated(c, pending, &pod.key, facts.priority);
    let mut best: Option<(f64, usize)> = None;
    let mut rejects: Vec<(usize, Reject)> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let extra = nominated.get(&n.name).copied().unwrap_or_default();
        match filter(&spec, facts.requests, n, extra) {
            Ok(()) => {
                let s = score(c.cfg.scheduler.scoring, facts.requests, n, extra);
                if best.is_none_or(|(b, _)| s > b + 1e-12) {
                    best = Some((s, i));
                }
            }
            Err(r) => rejects.push((i, r)),
        }
    }
    if let Some((_, i)) = best {
        let name = nodes[i].name.clone();
        bind(c, pod, &name);
        // Keep the cached view in step with the store for the next pod of this pass.
        nodes[i].alloc = c.store.node_alloc.get(&name).copied().unwrap_or_default();
        return;
    }
    let total = nodes.len();
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

/// A preemption candidate: (highest victim priority, sum of victim priorities, victim
/// count, node index, victims); the smallest tuple wins, as in `pickOneNodeForPreemption`.
type Candidate = (i32, i64, usize, usize, Vec<Arc<Obj>>);

/// Try preemption; on failure return the `preemption: …` message.
fn preempt(
    c: &mut Cluster,
    pod: &Arc<Obj>,
    nodes: &[NodeView],
    rejects: &[(usize, Reject)],
    nominated: &HashMap<String, Alloc>,
) -> Result<(), String> {
    let Some(facts) = pod.pod.clone() else {
        return Err(String::new());
    };
    let total = nodes.len();
    let mut not_helpful = 0;
    let mut no_victims = 0;
    let mut best: Option<Candidate> = None;
    for (i, r) in rejects {
        if !r.resolvable {
            not_helpful += 1;
            continue;
        }
        let n = &nodes[*i];
        let extra = nominated.get(&n.name).copied().unwrap_or_default();
        let mut victims: Vec<Arc<Obj>> = c
            .store
            .pods_on_node(&n.name)
            .into_iter()
            .filter(|p| {
                p.pod
                    .as_ref()
                    .is_some_and(|f| !f.terminal() && f.priority < facts.priority)
            })
            .collect();
        let freed = |vs: &[Arc<Obj>]| {
            let mut a = Alloc::default();
            for v in vs {
                if let Some(f) = &v.pod {
                    a.req.cpu += f.requests.cpu;
                    a.req.mem += f.requests.mem;
                    a.pods += 1;
                }
            }
            a
        };
        let fits = |vs: &[Arc<Obj>]| {
            let f = freed(vs);
            let view = NodeView {
                name: n.name.clone(),
                obj: n.obj.clone(),
                allocatable: n.allocatable,
                max_pods: n.max_pods,
                alloc: Alloc {
                    req: Res2 {
                        cpu: n.alloc.req.cpu - f.req.cpu,
                        mem: n.alloc.req.mem - f.req.mem,
                    },
                    pods: n.alloc.pods - f.pods,
                },
            };
            filter(
                pod.value.get("spec").unwrap_or(&Value::Null),
                facts.requests,
                &view,
                extra,
            )
            .is_ok()
        };
        if victims.is_empty() || !fits(&victims) {
            no_victims += 1;
            continue;
        }
        // Reprieve as many as possible, highest priority first.
        victims.sort_by_key(|v| std::cmp::Reverse(v.pod.as_ref().map_or(0, |f| f.priority)));
        let mut chosen = victims.clone();
        for v in &victims {
            let without: Vec<Arc<Obj>> =
                chosen.iter().filter(|x| x.key != v.key).cloned().collect();
            if fits(&without) {
                chosen = without;
            }
        }
        let hi = chosen
            .iter()
            .map(|v| v.pod.as_ref().map_or(0, |f| f.priority))
            .max()
            .unwrap_or(i32::MIN);
        let sum: i64 = chosen
            .iter()
            .map(|v| v.pod.as_ref().map_or(0, |f| f.priority as i64))
            .sum();
        let cand = (hi, sum, chosen.len(), *i, chosen);
        if best
            .as_ref()
            .is_none_or(|b| (cand.0, cand.1, cand.2, cand.3) < (b.0, b.1, b.2, b.3))
        {
            best = Some(cand);
        }
    }
    let Some((_, _, _, idx, victims)) = best else {
        let mut parts = Vec::new();
        if no_victims > 0 {
            parts.push(format!(
                "{no_victims} No preemption victims found for incoming pod"
            ));
        }
        if not_helpful > 0 {
            parts.push(format!(
                "{not_helpful} Preemption is not helpful for scheduling"
            ));
        }
        parts.sort();
        return Err(format!(
            "preemption: 0/{total} nodes are available: {}.",
            parts.join(", ")
        ));
    };
    let node = nodes[idx].name.clone();
    let ns = pod.key.0.clone();
    let pod_ref = format!("{}/{}", ns, pod.key.1);
    for v in victims {
        let mut nv = v.value.clone();
        let now = object::time(object::now());
        upsert_condition(
            &mut nv,
            json!({"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                   "message": "default-scheduler: preempting to accommodate a higher priority pod", "lastTransitionTime": now}),
        );
        let _ = api::commit(
            c,
            Res::Pod,
            &v,
            nv,
            Sub::Status,
            &WriteOpts::internal("default-scheduler"),
        );
        events::record(
            c,
            Res::Pod,
            &v.value,
            "Normal",
            "Preempted",
            &format!("Preempted by pod {} on node {node}", pod.uid),
            "default-scheduler",
            "Preempting",
        );
        let _ = api::delete(c, Res::Pod, &v.key.0, &v.key.1, &DeleteOpts::default());
    }
    if let Some(cur) = c.store.get(Res::Pod, &pod.key.0, &pod.key.1) {
        let mut nv = cur.value.clone();
        object::obj_field_mut(&mut nv, "status").insert("nominatedNodeName".into(), json!(node));
        let _ = api::commit(
            c,
            Res::Pod,
            &cur,
            nv,
            Sub::Status,
            &WriteOpts::internal("default-scheduler"),
        );
    }
    let _ = pod_ref;
    c.ctl.scheduler.dirty = true;
    Ok(())
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
