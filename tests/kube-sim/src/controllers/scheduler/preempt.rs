//! Priority preemption (PostFilter): pick the node where evicting the fewest, lowest
//! priority pods makes room, mark and delete the victims, nominate the preemptor.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::api::{self, DeleteOpts, Sub, WriteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::podres::Res2;
use crate::resources::Res;
use crate::store::{Alloc, Obj};

use super::super::events;
use super::filter::{NodeView, Reject, filter};
use super::upsert_condition;

/// A preemption candidate: (highest victim priority, sum of victim priorities, victim
/// count, node index, victims); the smallest tuple wins, as in `pickOneNodeForPreemption`.
type Candidate = (i32, i64, usize, usize, Vec<Arc<Obj>>);

/// Try preemption; on failure return the `preemption: …` message.
pub(super) fn preempt(
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
