//! The answer to "can this gang run now?": fits (where), wait (why, short by how much, on
//! which pool) or never (why no amount of waiting helps — the job becomes a dead letter).

use serde::{Deserialize, Serialize};

use crate::model::{PodRole, Resources};

/// The capacity checker's answer for one gang.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every pod has a node.
    Fits(Placement),
    /// Not now; maybe later.
    Wait(WaitReason),
    /// Not ever, on this cluster and under this quota.
    Never(NeverReason),
}

/// Where each pod of a gang goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Node per pod, in the gang's pod order. A pod placed on capacity an autoscaling pool can
    /// still add gets the node name `"<pool>/+<n>"` (the n-th node to be added).
    pub nodes: Vec<String>,
    /// Nodes the gang needs added per pool (empty when it fits on existing nodes).
    pub scale_up: Vec<ScaleUp>,
}

/// Nodes an autoscaling pool must add for a placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleUp {
    /// Pool name.
    pub pool: String,
    /// Nodes to add.
    pub nodes: u32,
}

/// The resource a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Resource {
    /// CPU.
    Cpu,
    /// Memory.
    Memory,
    /// Pod slots.
    Pods,
}

impl Resource {
    /// Metric and wire label.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Pods => "pods",
        }
    }
}

/// Why a gang must wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitReason {
    /// Machine-readable cause.
    pub kind: WaitKind,
    /// For humans ("why pending"), e.g. `no node fits executor 3/4: memory 7.2Gi > 6Gi free
    /// on any node of pool spot`.
    pub message: String,
}

/// Machine-readable wait causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitKind {
    /// No placement on current free capacity.
    Insufficient {
        /// The pod that could not be placed.
        role: PodRole,
        /// The scarcest resource for it.
        resource: Resource,
        /// How much more of it the gang needs than is free (best case over nodes).
        short_by: Resources,
        /// Pool the pod is restricted to, when its selector names one.
        pool: Option<String>,
    },
    /// The namespace's quota has no room left now.
    Quota {
        /// The exhausted resource.
        resource: Resource,
        /// How much it is short.
        short_by: u64,
    },
    /// The free capacity is promised to another gang (reservation or ledger entry).
    Reserved {
        /// Key of the gang holding it.
        holder: String,
    },
    /// A strategy-specific confirmation did not (yet) succeed (dry-run refusal that may pass
    /// later, placeholders not all scheduled within the timeout).
    NotConfirmed,
}

impl WaitKind {
    /// Metric label.
    pub fn code(&self) -> &'static str {
        match self {
            WaitKind::Insufficient { .. } => "insufficient",
            WaitKind::Quota { .. } => "quota",
            WaitKind::Reserved { .. } => "reserved",
            WaitKind::NotConfirmed => "not-confirmed",
        }
    }
}

/// Why a gang can never run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeverReason {
    /// Machine-readable cause.
    pub kind: NeverKind,
    /// For humans, e.g. `executor needs 96 cpu; the largest node that matches its selector
    /// (pool=general) has 16 allocatable`.
    pub message: String,
}

/// Machine-readable never causes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NeverKind {
    /// A pod is larger than any node (existing or addable) that matches its selector and
    /// tolerations could ever hold.
    PodTooLarge {
        /// Which pod.
        role: PodRole,
        /// Which resource is too large.
        resource: Resource,
    },
    /// No node (existing or addable) matches the pod's selector and tolerations at all.
    NoMatchingNode {
        /// Which pod.
        role: PodRole,
    },
    /// Each pod fits some node, but the gang's sum exceeds all the nodes its pods may use
    /// together (autoscaling pools at their maximum).
    ExceedsCluster {
        /// Which resource.
        resource: Resource,
    },
    /// The gang exceeds the namespace's quota hard limit on its own.
    ExceedsQuota {
        /// Which resource.
        resource: Resource,
    },
    /// The API server refuses a pod of this shape outright (dry-run: 400/422 invalid, a
    /// quota demanding limits the pod cannot have, an admission webhook's denial).
    Invalid {
        /// HTTP status of the refusal.
        status: u16,
    },
}

impl NeverKind {
    /// Metric label.
    pub fn code(&self) -> &'static str {
        match self {
            NeverKind::PodTooLarge { .. } => "pod-too-large",
            NeverKind::NoMatchingNode { .. } => "no-matching-node",
            NeverKind::ExceedsCluster { .. } => "exceeds-cluster",
            NeverKind::ExceedsQuota { .. } => "exceeds-quota",
            NeverKind::Invalid { .. } => "invalid",
        }
    }
}
