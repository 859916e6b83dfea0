//! What the cluster offers, as seen by one decision: nodes with their allocatable and
//! requested resources (capacity promised in the ledger already counted as requested),
//! namespace quotas, and autoscaling pools that can still add nodes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Resources, Taint};

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// Node name.
    pub name: String,
    /// Autoscaling/node pool it belongs to, if known.
    pub pool: Option<String>,
    /// Labels (for selectors).
    pub labels: BTreeMap<String, String>,
    /// Taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `status.allocatable`.
    pub allocatable: Resources,
    /// Sum of requests of non-terminal pods bound to it, plus ledger reservations placed on it.
    pub requested: Resources,
}

impl NodeView {
    /// What is still free on it.
    pub fn free(&self) -> Resources {
        self.allocatable.saturating_sub(&self.requested)
    }
}

/// A namespace's ResourceQuota (hard limits and current use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaView {
    /// Hard limits; a dimension the quota does not limit is `u64::MAX`.
    pub hard: Resources,
    /// Used, plus ledger reservations in the namespace.
    pub used: Resources,
}

/// An autoscaling pool: nodes of one shape that can be added up to a maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoscalePool {
    /// Pool name (matches [`NodeView::pool`] of its existing nodes).
    pub name: String,
    /// Labels every node of the pool carries.
    pub labels: BTreeMap<String, String>,
    /// Taints every node of the pool carries.
    pub taints: Vec<Taint>,
    /// Allocatable of one new node.
    pub allocatable: Resources,
    /// Nodes it has now.
    pub current: u32,
    /// Nodes it may have at most.
    pub max: u32,
}

/// The cluster as one decision sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Nodes, in a stable order (by name). Nodes named `"<pool>/+<n>"` are nodes an
    /// autoscaling pool is expected to add for reservations already made (counted in the
    /// pool's `current`).
    pub nodes: Vec<NodeView>,
    /// Quotas by namespace.
    pub quotas: BTreeMap<String, QuotaView>,
    /// Autoscaling pools.
    pub pools: Vec<AutoscalePool>,
}
