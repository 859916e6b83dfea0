//! Small builders for tests and benchmarks (here and in the submitter): nodes, pools, pods and
//! gangs with the few fields a case cares about. Not used by the strategies themselves.

use std::collections::BTreeMap;

use crate::model::{GangDemand, PodDemand, PodRole, Resources, Taint, TaintEffect, Toleration};
use crate::view::{AutoscalePool, NodeView};

/// Label key the builders put the pool name under.
pub const POOL_LABEL: &str = "pool";

/// `n` GiB in bytes.
pub const fn gi(n: u64) -> u64 {
    n << 30
}

/// `n` MiB in bytes.
pub const fn mi(n: u64) -> u64 {
    n << 20
}

/// A seeded xorshift: `next(n)` is in `0..n`. Random sequences in tests that replay the same
/// way every run (no dependency for it).
pub fn xorshift(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}

/// A label map from pairs.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

/// An empty schedulable node with 110 pod slots, labelled `pool=<pool>` when given.
pub fn node(name: &str, cpu_millis: u64, memory_bytes: u64, pool: Option<&str>) -> NodeView {
    NodeView {
        name: name.to_string(),
        pool: pool.map(str::to_string),
        labels: pool.map(|p| labels(&[(POOL_LABEL, p)])).unwrap_or_default(),
        taints: Vec::new(),
        unschedulable: false,
        allocatable: Resources {
            cpu_millis,
            memory_bytes,
            pods: 110,
        },
        requested: Resources::default(),
    }
}

/// The node with `requested` already in use.
pub fn used(mut node: NodeView, cpu_millis: u64, memory_bytes: u64, pods: u64) -> NodeView {
    node.requested = Resources {
        cpu_millis,
        memory_bytes,
        pods,
    };
    node
}

/// An autoscaling pool labelled `pool=<name>`.
pub fn pool(
    name: &str,
    cpu_millis: u64,
    memory_bytes: u64,
    current: u32,
    max: u32,
) -> AutoscalePool {
    AutoscalePool {
        name: name.to_string(),
        labels: labels(&[(POOL_LABEL, name)]),
        taints: Vec::new(),
        allocatable: Resources {
            cpu_millis,
            memory_bytes,
            pods: 110,
        },
        current,
        max,
    }
}

/// A pod demand with no selector or tolerations and priority 0.
pub fn pod(role: PodRole, cpu_millis: u64, memory_bytes: u64) -> PodDemand {
    PodDemand {
        role,
        requests: Resources {
            cpu_millis,
            memory_bytes,
            pods: 1,
        },
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
        priority: 0,
    }
}

/// A taint.
pub fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.to_string(),
        value: value.to_string(),
        effect,
    }
}

/// A toleration: `Equal` when `value` is given, else `Exists`; `key` `None` means every key.
pub fn toleration(
    key: Option<&str>,
    value: Option<&str>,
    effect: Option<TaintEffect>,
) -> Toleration {
    Toleration {
        key: key.map(str::to_string),
        exists: value.is_none(),
        value: value.map(str::to_string),
        effect,
    }
}

/// A gang in namespace `ns`: one driver and `executors` identical executors, pods labelled
/// `app=<key>`.
pub fn gang(
    key: &str,
    ns: &str,
    driver: (u64, u64),
    executors: usize,
    executor: (u64, u64),
) -> GangDemand {
    let mut pods = vec![pod(PodRole::Driver, driver.0, driver.1)];
    pods.extend((0..executors).map(|_| pod(PodRole::Executor, executor.0, executor.1)));
    GangDemand {
        key: key.to_string(),
        namespace: ns.to_string(),
        pod_labels: labels(&[("app", key)]),
        pods,
    }
}

/// The gang with every pod restricted to `selector` and tolerating `tolerations`.
pub fn constrained(
    mut gang: GangDemand,
    selector: &[(&str, &str)],
    tolerations: &[Toleration],
) -> GangDemand {
    for p in &mut gang.pods {
        p.node_selector = labels(selector);
        p.tolerations = tolerations.to_vec();
    }
    gang
}
