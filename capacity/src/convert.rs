//! Kubernetes objects → the crate's plain data, computed the way the scheduler and the quota
//! controller compute them:
//!
//! - a pod's **effective request** (`PodRequests` in `component-helpers`): the containers'
//!   sum plus sidecar init containers (`restartPolicy: Always`), element-wise max with each
//!   regular init container plus the sidecars started before it, pod-level requests override,
//!   plus `spec.overhead`;
//! - a node's allocatable, labels, taints and cordon;
//! - a ResourceQuota's hard limits on the three dimensions we track.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, Pod, PodSpec, ResourceQuota, Taint as K8sTaint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::model::{PodRole, Resources, Taint, TaintEffect};
use crate::quantity::{parse_millis, parse_units};
use crate::view::NodeView;

/// The cpu and memory of a resource list (missing → 0, unparsable → 0), `pods` 0.
fn cpu_memory(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
    let Some(list) = list else {
        return Resources::default();
    };
    Resources {
        cpu_millis: list
            .get("cpu")
            .and_then(|q| parse_millis(&q.0))
            .unwrap_or(0),
        memory_bytes: list
            .get("memory")
            .and_then(|q| parse_units(&q.0))
            .unwrap_or(0),
        pods: 0,
    }
}

fn requests_of(c: &Container) -> Resources {
    cpu_memory(c.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

fn max(a: &Resources, b: &Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.max(b.cpu_millis),
        memory_bytes: a.memory_bytes.max(b.memory_bytes),
        pods: a.pods.max(b.pods),
    }
}

/// The pod's effective request as the scheduler counts it (`pods` is 1).
pub fn pod_requests(spec: &PodSpec) -> Resources {
    let mut running = spec.containers.iter().fold(Resources::default(), |acc, c| {
        acc.saturating_add(&requests_of(c))
    });
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let own = requests_of(c);
        let during = if c.restart_policy.as_deref() == Some("Always") {
            running = running.saturating_add(&own);
            sidecars = sidecars.saturating_add(&own);
            sidecars
        } else {
            own.saturating_add(&sidecars)
        };
        init_peak = max(&init_peak, &during);
    }
    let mut total = max(&running, &init_peak);
    if let Some(pod_level) = spec.resources.as_ref().and_then(|r| r.requests.as_ref()) {
        if let Some(cpu) = pod_level.get("cpu").and_then(|q| parse_millis(&q.0)) {
            total.cpu_millis = cpu;
        }
        if let Some(mem) = pod_level.get("memory").and_then(|q| parse_units(&q.0)) {
            total.memory_bytes = mem;
        }
    }
    total = total.saturating_add(&cpu_memory(spec.overhead.as_ref()));
    total.pods = 1;
    total
}

/// Whether the pod still holds its resources (not `Succeeded`/`Failed`).
pub fn pod_is_active(pod: &Pod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The Spark role a pod declares through `role_label` (`spark-role`: `driver`/`executor`).
pub fn pod_role(labels: &BTreeMap<String, String>, role_label: &str) -> Option<PodRole> {
    match labels.get(role_label).map(String::as_str) {
        Some("driver") => Some(PodRole::Driver),
        Some("executor") => Some(PodRole::Executor),
        _ => None,
    }
}

/// A taint effect from its wire name.
pub fn taint_effect(s: &str) -> Option<TaintEffect> {
    match s {
        "NoSchedule" => Some(TaintEffect::NoSchedule),
        "PreferNoSchedule" => Some(TaintEffect::PreferNoSchedule),
        "NoExecute" => Some(TaintEffect::NoExecute),
        _ => None,
    }
}

/// The wire name of a taint effect.
pub fn taint_effect_name(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

fn taint(t: &K8sTaint) -> Option<Taint> {
    Some(Taint {
        key: t.key.clone(),
        value: t.value.clone().unwrap_or_default(),
        effect: taint_effect(&t.effect)?,
    })
}

/// A node as a [`NodeView`] with nothing requested yet; its pool is the value of `pool_label`.
pub fn node_view(node: &Node, pool_label: &str) -> NodeView {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let status = node.status.as_ref();
    let list = status.and_then(|s| s.allocatable.as_ref().or(s.capacity.as_ref()));
    let mut allocatable = cpu_memory(list);
    allocatable.pods = list
        .and_then(|l| l.get("pods"))
        .and_then(|q| parse_units(&q.0))
        .unwrap_or(0);
    let spec = node.spec.as_ref();
    NodeView {
        name: node.metadata.name.clone().unwrap_or_default(),
        pool: labels.get(pool_label).cloned(),
        taints: spec
            .and_then(|s| s.taints.as_ref())
            .map(|ts| ts.iter().filter_map(taint).collect())
            .unwrap_or_default(),
        unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
        allocatable,
        requested: Resources::default(),
        labels,
    }
}

/// The hard limits of a quota on cpu requests, memory requests and pods (`u64::MAX` where it
/// sets none), from `status.hard` (what admission enforces) or else `spec.hard`.
///
/// `None` when the quota limits none of the three, or is **scoped** (`scopes` /
/// `scopeSelector`: it counts only some pods, which this cache does not model — dry-run
/// admission still enforces it).
pub fn quota_hard(q: &ResourceQuota) -> Option<Resources> {
    let spec = q.spec.as_ref();
    let scoped = spec.is_some_and(|s| {
        s.scopes.as_ref().is_some_and(|v| !v.is_empty()) || s.scope_selector.is_some()
    });
    if scoped {
        return None;
    }
    let hard = q
        .status
        .as_ref()
        .and_then(|s| s.hard.as_ref())
        .or(spec.and_then(|s| s.hard.as_ref()))?;
    let lowest = |keys: &[&str], parse: fn(&str) -> Option<u64>| {
        keys.iter()
            .filter_map(|k| hard.get(*k))
            .filter_map(|q| parse(&q.0))
            .min()
    };
    let cpu = lowest(&["requests.cpu", "cpu"], parse_millis);
    let memory = lowest(&["requests.memory", "memory"], parse_units);
    let pods = lowest(&["pods", "count/pods"], parse_units);
    if cpu.is_none() && memory.is_none() && pods.is_none() {
        return None;
    }
    Some(Resources {
        cpu_millis: cpu.unwrap_or(u64::MAX),
        memory_bytes: memory.unwrap_or(u64::MAX),
        pods: pods.unwrap_or(u64::MAX),
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        NodeSpec, NodeStatus, ResourceQuotaSpec, ResourceRequirements,
    };

    use super::*;
    use crate::testing::{gi, mi};

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    fn container(cpu: &str, mem: &str, restart: Option<&str>) -> Container {
        Container {
            name: "c".into(),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_string(), q(cpu)),
                    ("memory".to_string(), q(mem)),
                ])),
                ..Default::default()
            }),
            restart_policy: restart.map(str::to_string),
            ..Default::default()
        }
    }

    fn res(cpu_millis: u64, memory_bytes: u64) -> Resources {
        Resources {
            cpu_millis,
            memory_bytes,
            pods: 1,
        }
    }

    #[test]
    fn effective_requests_like_the_scheduler() {
        let cases: Vec<(&str, PodSpec, Resources)> = vec![
            (
                "containers add up",
                PodSpec {
                    containers: vec![
                        container("1", "1Gi", None),
                        container("500m", "512Mi", None),
                    ],
                    ..Default::default()
                },
                res(1500, gi(1) + mi(512)),
            ),
            (
                "a big init container raises the request",
                PodSpec {
                    containers: vec![container("1", "1Gi", None)],
                    init_containers: Some(vec![container("2", "512Mi", None)]),
                    ..Default::default()
                },
                res(2000, gi(1)),
            ),
            (
                "sidecars run alongside: added to containers and to later init containers",
                PodSpec {
                    containers: vec![container("1", "1Gi", None)],
                    init_containers: Some(vec![
                        container("500m", "256Mi", Some("Always")),
                        container("1", "2Gi", None),
                    ]),
                    ..Default::default()
                },
                res(1500, gi(2) + mi(256)),
            ),
            (
                "overhead is added",
                PodSpec {
                    containers: vec![container("1", "1Gi", None)],
                    overhead: Some(BTreeMap::from([
                        ("cpu".to_string(), q("250m")),
                        ("memory".to_string(), q("120Mi")),
                    ])),
                    ..Default::default()
                },
                res(1250, gi(1) + mi(120)),
            ),
            (
                "pod-level requests override",
                PodSpec {
                    containers: vec![container("1", "1Gi", None)],
                    resources: Some(ResourceRequirements {
                        requests: Some(BTreeMap::from([("cpu".to_string(), q("3"))])),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                res(3000, gi(1)),
            ),
            (
                "no requests: zero",
                PodSpec {
                    containers: vec![Container::default()],
                    ..Default::default()
                },
                res(0, 0),
            ),
        ];
        for (name, spec, want) in cases {
            assert_eq!(pod_requests(&spec), want, "{name}");
        }
    }

    #[test]
    fn nodes_become_views() {
        let node = Node {
            metadata: kube::api::ObjectMeta {
                name: Some("n1".into()),
                labels: Some(BTreeMap::from([("pool".to_string(), "spot".to_string())])),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                unschedulable: Some(true),
                taints: Some(vec![K8sTaint {
                    key: "spot".into(),
                    value: Some("true".into()),
                    effect: "NoSchedule".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                allocatable: Some(BTreeMap::from([
                    ("cpu".to_string(), q("7910m")),
                    ("memory".to_string(), q("30Gi")),
                    ("pods".to_string(), q("110")),
                ])),
                ..Default::default()
            }),
        };
        let v = node_view(&node, "pool");
        assert_eq!(v.name, "n1");
        assert_eq!(v.pool.as_deref(), Some("spot"));
        assert!(v.unschedulable);
        assert_eq!(
            v.allocatable,
            Resources {
                cpu_millis: 7910,
                memory_bytes: gi(30),
                pods: 110
            }
        );
        assert_eq!(
            v.taints,
            vec![Taint {
                key: "spot".into(),
                value: "true".into(),
                effect: TaintEffect::NoSchedule
            }]
        );
    }

    #[test]
    fn quota_limits() {
        let quota = |hard: &[(&str, &str)], scopes: Option<Vec<String>>| ResourceQuota {
            spec: Some(ResourceQuotaSpec {
                hard: Some(hard.iter().map(|(k, v)| ((*k).to_string(), q(v))).collect()),
                scopes,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            quota_hard(&quota(
                &[
                    ("requests.cpu", "16"),
                    ("cpu", "20"),
                    ("requests.memory", "64Gi")
                ],
                None
            )),
            Some(Resources {
                cpu_millis: 16_000,
                memory_bytes: gi(64),
                pods: u64::MAX
            })
        );
        assert_eq!(
            quota_hard(&quota(&[("count/pods", "10")], None)),
            Some(Resources {
                cpu_millis: u64::MAX,
                memory_bytes: u64::MAX,
                pods: 10
            })
        );
        assert_eq!(quota_hard(&quota(&[("services", "3")], None)), None);
        assert_eq!(
            quota_hard(&quota(&[("pods", "3")], Some(vec!["BestEffort".into()]))),
            None
        );
    }

    #[test]
    fn roles_and_activity() {
        let l = BTreeMap::from([("spark-role".to_string(), "executor".to_string())]);
        assert_eq!(pod_role(&l, "spark-role"), Some(PodRole::Executor));
        assert_eq!(pod_role(&l, "other"), None);
        let mut pod = Pod::default();
        assert!(pod_is_active(&pod));
        pod.status = Some(k8s_openapi::api::core::v1::PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        assert!(!pod_is_active(&pod));
    }
}
