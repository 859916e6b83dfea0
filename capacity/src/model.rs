//! The vocabulary shared with the submitter: what a Spark application asks for (a gang of pod
//! demands), what the cluster offers (a view of nodes and quotas), and the verdict.
//!
//! These are plain data so that every decision over them is a pure, table-testable function.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Amounts of the three resources the scheduler counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Pod slots.
    pub pods: u64,
}

/// Which part of a Spark application a pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodRole {
    /// The driver: created first, by the Spark Operator.
    Driver,
    /// An executor: created by the driver once it runs.
    Executor,
    /// Anything else (e.g. a placeholder).
    Other,
}

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaintEffect {
    /// Not scheduled without a toleration.
    NoSchedule,
    /// Only a preference: ignored for fit.
    PreferNoSchedule,
    /// Not scheduled (and evicted) without a toleration.
    NoExecute,
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// Effect.
    pub effect: TaintEffect,
}

/// A pod toleration (Kubernetes semantics: `Exists` with an empty key tolerates everything).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Toleration {
    /// Key; `None` with `exists` matches every key.
    pub key: Option<String>,
    /// `Exists` (any value) instead of `Equal`.
    pub exists: bool,
    /// Value for `Equal`.
    pub value: Option<String>,
    /// Effect; `None` matches every effect.
    pub effect: Option<TaintEffect>,
}

/// One pod the application will create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodDemand {
    /// Driver or executor.
    pub role: PodRole,
    /// Requests (`pods` is 1).
    pub requests: Resources,
    /// Node labels required.
    pub node_selector: BTreeMap<String, String>,
    /// Taints tolerated.
    pub tolerations: Vec<Toleration>,
    /// Scheduling priority value (resolved from the PriorityClass).
    pub priority: i32,
}

/// Everything an application needs at once to make progress: its driver and its (minimum)
/// executors. Admitting less is how drivers end up running with executors pending forever.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GangDemand {
    /// Stable key of the demand (the job id and attempt); reservations are held under it.
    pub key: String,
    /// Namespace the pods will live in (for quotas).
    pub namespace: String,
    /// Label selector matching the application's pods once they exist (e.g. the job-id label),
    /// so a reservation converts into real pods instead of being counted twice.
    pub pod_labels: BTreeMap<String, String>,
    /// Driver first, then executors.
    pub pods: Vec<PodDemand>,
}

impl GangDemand {
    /// Sum of all pods' requests.
    pub fn total(&self) -> Resources {
        self.pods.iter().fold(Resources::default(), |acc, p| {
            acc.saturating_add(&p.requests)
        })
    }
}

impl Resources {
    /// Element-wise sum, saturating.
    pub fn saturating_add(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
            pods: self.pods.saturating_add(other.pods),
        }
    }

    /// Element-wise difference, floored at zero.
    pub fn saturating_sub(&self, other: &Resources) -> Resources {
        Resources {
            cpu_millis: self.cpu_millis.saturating_sub(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_sub(other.memory_bytes),
            pods: self.pods.saturating_sub(other.pods),
        }
    }

    /// Whether `other` fits in `self` in every dimension.
    pub fn covers(&self, other: &Resources) -> bool {
        self.cpu_millis >= other.cpu_millis
            && self.memory_bytes >= other.memory_bytes
            && self.pods >= other.pods
    }
}
