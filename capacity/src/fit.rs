//! The scheduler's filters that do not depend on usage — node selector, taints and
//! tolerations, cordoned nodes — and [`fits_ever`], the test that separates "wait" from
//! "never": could any node that exists or can be added hold this pod on an empty day?
//!
//! All pure, over the plain [`NodeView`] / [`AutoscalePool`] data, so the submitter's ordering
//! code and the strategies share one definition of "this pod may go there".

use std::collections::BTreeMap;

use crate::Resources;
use crate::model::{PodDemand, PodRole, Taint, TaintEffect, Toleration};
use crate::quantity::{fmt_cpu, fmt_memory};
use crate::verdict::{NeverKind, NeverReason, Resource};
use crate::view::{AutoscalePool, NodeView};

/// The taint Kubernetes puts on cordoned nodes (`spec.unschedulable`); a pod tolerating it may
/// still be scheduled there.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// Whether one toleration tolerates one taint (Kubernetes `ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if toleration.effect.is_some_and(|e| e != taint.effect) {
        return false;
    }
    match &toleration.key {
        Some(key) if key != &taint.key => return false,
        None if !toleration.exists && !taint.key.is_empty() => return false,
        _ => {}
    }
    toleration.exists || toleration.value.as_deref().unwrap_or("") == taint.value
}

/// The first taint that keeps the pod off the node: `NoSchedule`/`NoExecute` not tolerated.
/// `PreferNoSchedule` never blocks.
pub fn untolerated<'t>(tolerations: &[Toleration], taints: &'t [Taint]) -> Option<&'t Taint> {
    taints.iter().find(|taint| {
        taint.effect != TaintEffect::PreferNoSchedule
            && !tolerations.iter().any(|t| tolerates(t, taint))
    })
}

/// Whether every `key=value` of the selector is among the labels.
pub fn selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether the pod may go on a node with these labels and taints (selector and taints only;
/// cordoning and usage are separate questions).
pub fn matches(pod: &PodDemand, labels: &BTreeMap<String, String>, taints: &[Taint]) -> bool {
    selector_matches(&pod.node_selector, labels) && untolerated(&pod.tolerations, taints).is_none()
}

/// Whether a cordoned node still takes this pod (it tolerates the unschedulable taint).
pub fn tolerates_cordon(pod: &PodDemand) -> bool {
    let taint = Taint {
        key: UNSCHEDULABLE_TAINT.to_string(),
        value: String::new(),
        effect: TaintEffect::NoSchedule,
    };
    pod.tolerations.iter().any(|t| tolerates(t, &taint))
}

/// Whether the scheduler would consider the node for the pod now (selector, taints, cordon).
pub fn schedulable_on(pod: &PodDemand, node: &NodeView) -> bool {
    matches(pod, &node.labels, &node.taints) && (!node.unschedulable || tolerates_cordon(pod))
}

/// The pool's nodes carry its labels (and the pool label itself when the caller put it there);
/// a pool counts for "ever" only when it may have at least one node.
pub fn pool_matches(pod: &PodDemand, pool: &AutoscalePool) -> bool {
    pool.max > 0 && matches(pod, &pool.labels, &pool.taints)
}

/// "Could this pod ever run here?": some node (existing, cordoned or not, or one an
/// autoscaling pool can add) matches its selector and tolerations and has allocatable for
/// all of its requests at once, ignoring what runs there now.
///
/// `Err` carries the [`NeverReason`] a user reads; `ordinal` is the pod's place among its
/// role (`executor 3 of 4`) for the message.
pub fn fits_ever<'a>(
    pod: &PodDemand,
    nodes: impl IntoIterator<Item = &'a NodeView>,
    pools: &[AutoscalePool],
) -> Result<(), NeverReason> {
    let mut largest = Resources::default();
    let mut candidates = 0usize;
    let shapes = nodes
        .into_iter()
        .filter(|n| matches(pod, &n.labels, &n.taints))
        .map(|n| n.allocatable)
        .chain(
            pools
                .iter()
                .filter(|p| pool_matches(pod, p))
                .map(|p| p.allocatable),
        );
    for shape in shapes {
        if shape.covers(&pod.requests) {
            return Ok(());
        }
        candidates += 1;
        largest = Resources {
            cpu_millis: largest.cpu_millis.max(shape.cpu_millis),
            memory_bytes: largest.memory_bytes.max(shape.memory_bytes),
            pods: largest.pods.max(shape.pods),
        };
    }
    let role = role_name(pod.role);
    let place = describe_selector(&pod.node_selector);
    if candidates == 0 {
        return Err(NeverReason {
            kind: NeverKind::NoMatchingNode { role: pod.role },
            message: format!(
                "{role} can never be scheduled: no node, existing or addable by an autoscaling \
                 pool, matches its node selector and tolerations ({})",
                describe_constraints(pod)
            ),
        });
    }
    // Which resource is too large: one no single shape has; else (each exists, but never
    // together) the one furthest from fitting on the largest shape.
    let resource = too_large(&pod.requests, &largest).unwrap_or(Resource::Memory);
    let (need, have) = amounts(resource, &pod.requests, &largest);
    let message = if pod.requests.cpu_millis <= largest.cpu_millis
        && pod.requests.memory_bytes <= largest.memory_bytes
        && pod.requests.pods <= largest.pods
    {
        format!(
            "{role} needs {} cpu and {} memory on one node; no node {place} has both (the \
             largest have {} cpu or {} memory allocatable)",
            fmt_cpu(pod.requests.cpu_millis),
            fmt_memory(pod.requests.memory_bytes),
            fmt_cpu(largest.cpu_millis),
            fmt_memory(largest.memory_bytes),
        )
    } else {
        format!(
            "{role} needs {need} {}; the largest node {place} has {have} allocatable",
            resource.as_str()
        )
    };
    Err(NeverReason {
        kind: NeverKind::PodTooLarge {
            role: pod.role,
            resource,
        },
        message,
    })
}

/// The resource of `need` furthest beyond `have`, as the fraction of the need that is
/// missing; ties go to cpu, then memory, then pods. `None` when `have` covers `need`.
pub(crate) fn too_large(need: &Resources, have: &Resources) -> Option<Resource> {
    let mut worst: Option<(Resource, f64)> = None;
    for r in [Resource::Cpu, Resource::Memory, Resource::Pods] {
        let (n, h) = (get(need, r), get(have, r));
        if n > h {
            let missing = (n - h) as f64 / n as f64;
            if worst.is_none_or(|(_, w)| missing > w) {
                worst = Some((r, missing));
            }
        }
    }
    worst.map(|(r, _)| r)
}

/// One dimension of a [`Resources`].
pub(crate) fn get(r: &Resources, resource: Resource) -> u64 {
    match resource {
        Resource::Cpu => r.cpu_millis,
        Resource::Memory => r.memory_bytes,
        Resource::Pods => r.pods,
    }
}

/// Both sides of one dimension, formatted for a message.
pub(crate) fn amounts(resource: Resource, a: &Resources, b: &Resources) -> (String, String) {
    (
        fmt_amount(resource, get(a, resource)),
        fmt_amount(resource, get(b, resource)),
    )
}

/// One amount of one resource for humans.
pub(crate) fn fmt_amount(resource: Resource, v: u64) -> String {
    match resource {
        Resource::Cpu => fmt_cpu(v),
        Resource::Memory => fmt_memory(v),
        Resource::Pods => v.to_string(),
    }
}

/// `driver`, `executor`, `pod`.
pub(crate) fn role_name(role: PodRole) -> &'static str {
    match role {
        PodRole::Driver => "driver",
        PodRole::Executor => "executor",
        PodRole::Other => "pod",
    }
}

/// `with pool=spot` / `with pool=spot,disk=ssd` / `in the cluster` (no selector).
pub fn describe_selector(selector: &BTreeMap<String, String>) -> String {
    if selector.is_empty() {
        "in the cluster".to_string()
    } else {
        let pairs: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("with {}", pairs.join(","))
    }
}

/// Selector and tolerations, for a "no matching node" message.
fn describe_constraints(pod: &PodDemand) -> String {
    let selector = if pod.node_selector.is_empty() {
        "no selector".to_string()
    } else {
        let pairs: Vec<String> = pod
            .node_selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("selector {}", pairs.join(","))
    };
    let tolerations: Vec<String> = pod
        .tolerations
        .iter()
        .map(|t| {
            let key = t.key.as_deref().unwrap_or("*");
            let value = if t.exists {
                "*".to_string()
            } else {
                t.value.clone().unwrap_or_default()
            };
            match t.effect {
                Some(effect) => format!("{key}={value}:{effect:?}"),
                None => format!("{key}={value}"),
            }
        })
        .collect();
    if tolerations.is_empty() {
        format!("{selector}, no tolerations")
    } else {
        format!("{selector}, tolerating {}", tolerations.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{gi, labels, node, pod, pool, taint, toleration};

    #[test]
    fn toleration_matching_follows_kubernetes() {
        let spot = taint("spot", "true", TaintEffect::NoSchedule);
        let cases = [
            (toleration(Some("spot"), Some("true"), None), true),
            (toleration(Some("spot"), Some("false"), None), false),
            (toleration(Some("spot"), None, None), true), // Exists
            (toleration(None, None, None), true),         // Exists, no key: everything
            (toleration(Some("other"), None, None), false),
            (
                toleration(Some("spot"), None, Some(TaintEffect::NoExecute)),
                false,
            ),
            (
                toleration(Some("spot"), None, Some(TaintEffect::NoSchedule)),
                true,
            ),
        ];
        for (t, want) in cases {
            assert_eq!(tolerates(&t, &spot), want, "{t:?}");
        }
        let soft = taint("x", "y", TaintEffect::PreferNoSchedule);
        assert!(untolerated(&[], std::slice::from_ref(&soft)).is_none());
    }

    #[test]
    fn schedulable_honours_selector_taints_and_cordon() {
        let mut spot = node("s1", 4000, gi(16), Some("spot"));
        spot.taints
            .push(taint("spot", "true", TaintEffect::NoSchedule));
        let mut p = pod(PodRole::Executor, 1000, gi(1));
        p.node_selector = labels(&[("pool", "spot")]);
        assert!(!schedulable_on(&p, &spot), "untolerated taint");
        p.tolerations.push(toleration(Some("spot"), None, None));
        assert!(schedulable_on(&p, &spot));
        spot.unschedulable = true;
        assert!(!schedulable_on(&p, &spot), "cordoned");
        p.tolerations
            .push(toleration(Some(UNSCHEDULABLE_TAINT), None, None));
        assert!(schedulable_on(&p, &spot), "tolerates the cordon");
        p.node_selector = labels(&[("pool", "general")]);
        assert!(!schedulable_on(&p, &spot), "selector");
    }

    #[test]
    fn fits_ever_separates_never_from_wait() {
        let nodes = vec![
            node("g1", 16_000, gi(64), Some("general")),
            node("g2", 8_000, gi(128), Some("general")),
        ];
        let spot_pool = pool("spot", 32_000, gi(256), 0, 10);
        let mut on_spot = pod(PodRole::Executor, 24_000, gi(100));
        on_spot.node_selector = labels(&[("pool", "spot")]);

        struct Case {
            name: &'static str,
            pod: PodDemand,
            pools: Vec<AutoscalePool>,
            want: Result<(), &'static str>,
        }
        let cases = vec![
            Case {
                name: "fits a node",
                pod: pod(PodRole::Driver, 1000, gi(1)),
                pools: vec![],
                want: Ok(()),
            },
            Case {
                name: "needs cpu of one node and memory of the other",
                pod: pod(PodRole::Executor, 12_000, gi(100)),
                pools: vec![],
                want: Err("pod-too-large"),
            },
            Case {
                name: "too much cpu anywhere",
                pod: pod(PodRole::Executor, 96_000, gi(1)),
                pools: vec![],
                want: Err("pod-too-large"),
            },
            Case {
                name: "no spot node exists",
                pod: on_spot.clone(),
                pools: vec![],
                want: Err("no-matching-node"),
            },
            Case {
                name: "but a spot pool can add one",
                pod: on_spot.clone(),
                pools: vec![spot_pool.clone()],
                want: Ok(()),
            },
            Case {
                name: "pool shape too small too",
                pod: {
                    let mut p = on_spot.clone();
                    p.requests.memory_bytes = gi(512);
                    p
                },
                pools: vec![spot_pool.clone()],
                want: Err("pod-too-large"),
            },
            Case {
                name: "pool with max 0 never adds",
                pod: on_spot.clone(),
                pools: vec![pool("spot", 32_000, gi(256), 0, 0)],
                want: Err("no-matching-node"),
            },
        ];
        for case in cases {
            let got = fits_ever(&case.pod, &nodes, &case.pools).map_err(|r| r.kind.code());
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[test]
    fn never_message_names_the_resource_and_the_largest_node() {
        let nodes = vec![node("g1", 16_000, gi(64), Some("general"))];
        let mut p = pod(PodRole::Executor, 96_000, gi(1));
        p.node_selector = labels(&[("pool", "general")]);
        let reason = fits_ever(&p, &nodes, &[]).unwrap_err();
        assert_eq!(
            reason.kind,
            NeverKind::PodTooLarge {
                role: PodRole::Executor,
                resource: Resource::Cpu
            }
        );
        assert_eq!(
            reason.message,
            "executor needs 96 cpu; the largest node with pool=general has 16 allocatable"
        );
    }

    #[test]
    fn cordoned_nodes_still_count_for_ever() {
        let mut n = node("g1", 16_000, gi(64), None);
        n.unschedulable = true;
        assert!(fits_ever(&pod(PodRole::Driver, 8000, gi(8)), &[n], &[]).is_ok());
    }
}
