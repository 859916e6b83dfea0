//! The replay cluster and catalog: `nodes` nodes of 16 cpu / 64 GiB in pool `general`, the
//! trace's namespaces, both priority classes, bin-packing scoring; node types `small` (1 cpu,
//! 4 GiB), `medium` (2, 8), `large` (4, 16), `xlarge` (8, 32) — requests, overhead included.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use kube_sim::{PoolConfig, SimConfig};

use crate::trace::TraceJob;

/// CPUs per node.
pub const NODE_CPU: u64 = 16;
/// Memory per node, GiB.
pub const NODE_MEMORY_GIB: u64 = 64;

/// The catalog node types: name, cpu, memory.
pub const NODE_TYPES: [(&str, &str, &str); 4] = [
    ("small", "1", "4Gi"),
    ("medium", "2", "8Gi"),
    ("large", "4", "16Gi"),
    ("xlarge", "8", "32Gi"),
];

/// Namespaces a trace uses, sorted.
pub fn namespaces(trace: &[TraceJob]) -> BTreeSet<String> {
    trace.iter().map(|j| j.namespace.clone()).collect()
}

/// The kube-sim cluster for a trace.
pub fn sim_config(trace: &[TraceJob], nodes: usize, speed: f64) -> SimConfig {
    let mut c = SimConfig::default()
        .with_pool(PoolConfig::new(
            "general",
            nodes,
            &NODE_CPU.to_string(),
            &format!("{NODE_MEMORY_GIB}Gi"),
        ))
        .with_priority_class("spark-high", 1000, false)
        .with_priority_class("spark-normal", 100, false)
        .with_speed(speed);
    for ns in namespaces(trace) {
        c = c.with_namespace(&ns);
    }
    c.scheduler.scoring = kube_sim::Scoring::MostAllocated;
    c
}

/// What an operator adds to `deploy/base` to serve the trace's namespaces (docs/operations.md):
/// one RoleBinding each of the ClusterRole `spark-orchestrator-submit` to the daemon's
/// ServiceAccount; and the namespaces `deploy/base` binds already (`team-a`, `team-b`), which
/// must exist for its RoleBindings to load.
pub fn submit_bindings(trace: &[TraceJob]) -> String {
    const BOUND: [&str; 2] = ["team-a", "team-b"];
    let mut s = String::new();
    for ns in BOUND {
        let _ = write!(
            s,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"
        );
    }
    for ns in namespaces(trace)
        .iter()
        .filter(|ns| !BOUND.contains(&ns.as_str()))
    {
        let _ = write!(
            s,
            "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n\
             metadata: {{name: spark-orchestrator-submit, namespace: {ns}}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: spark-orchestrator-submit}}\n\
             subjects: [{{kind: ServiceAccount, name: spark-orchestrator, namespace: spark-orchestrator}}]\n"
        );
    }
    s
}

/// The orchestrator catalog (TOML) for a trace. Retries back off for one wall second (the
/// store's clock is the wall clock).
pub fn catalog_toml(trace: &[TraceJob]) -> String {
    let mut s = String::new();
    for ns in namespaces(trace) {
        let _ = writeln!(s, "[namespaces.{ns}]");
    }
    for (name, cpu, memory) in NODE_TYPES {
        let _ = writeln!(
            s,
            "[node_types.{name}]\ncpu = \"{cpu}\"\nmemory = \"{memory}\"\nnode_selector = {{ pool = \"general\" }}"
        );
    }
    s.push_str(
        "[defaults]\nimage = \"apache/spark:3.5.3\"\nspark_version = \"3.5.3\"\n\
         driver_node_type = \"small\"\nexecutor_node_type = \"small\"\n\
         retry = { max_attempts = 2, initial_backoff = \"1s\", max_backoff = \"2s\", multiplier = 2.0 }\n",
    );
    s
}
