//! Filter plugins in kube-scheduler's order (NodeUnschedulable, TaintToleration,
//! NodeAffinity, NodeResourcesFit) and the LeastAllocated/MostAllocated score.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::cluster::Cluster;
use crate::config::Scoring;
use crate::podres::Res2;
use crate::quantity;
use crate::resources::Res;
use crate::store::{Alloc, Obj};

/// One node's view for filtering.
#[derive(Debug)]
pub(super) struct NodeView {
    pub(super) name: String,
    pub(super) obj: Arc<Obj>,
    pub(super) allocatable: Res2,
    pub(super) max_pods: i64,
    pub(super) alloc: Alloc,
}

/// Why a node was rejected.
pub(super) struct Reject {
    pub(super) reasons: Vec<String>,
    /// Preemption could help (resources only).
    pub(super) resolvable: bool,
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
    // Borrowed, not cloned: this runs for every (pod, node) pair of a scheduling pass.
    let exprs = term
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let fields = term
        .get("matchFields")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
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
    // Key by key rather than `Value::pointer`, which allocates to unescape its path: this runs
    // for every (pod, node) pair of a scheduling pass.
    let terms = spec
        .get("affinity")
        .and_then(|a| a.get("nodeAffinity"))
        .and_then(|a| a.get("requiredDuringSchedulingIgnoredDuringExecution"))
        .and_then(|r| r.get("nodeSelectorTerms"))
        .and_then(Value::as_array);
    match terms {
        Some(ts) if !ts.is_empty() => ts
            .iter()
            .any(|t| node_selector_term_matches(t, labels, node_name)),
        _ => true,
    }
}

pub(super) fn filter(spec: &Value, req: Res2, node: &NodeView, extra: Alloc) -> Result<(), Reject> {
    // Borrowed, not cloned: this runs for every (pod, node) pair of a scheduling pass.
    let tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let nspec = node.obj.value.get("spec").unwrap_or(&Value::Null);
    if nspec.get("unschedulable").and_then(Value::as_bool) == Some(true)
        && !tolerates(
            tolerations,
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
            if !tolerates(tolerations, key, value, effect) {
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

pub(super) fn score(scoring: Scoring, req: Res2, node: &NodeView, extra: Alloc) -> f64 {
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

pub(super) fn node_views(c: &Cluster) -> Vec<NodeView> {
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
