//! A read-only summary of the cluster per pool, for people (the console's cluster view,
//! `GET /v1/cluster`): what the nodes offer, what bound pods request, what the ledger has
//! promised and not yet seen carried by pods, and the placeholder pods standing in for checks.
//!
//! Unlike a decision, a summary walks the pods once (to find placeholders): it is asked for by
//! a person every few seconds, not by the admission loop.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::cache::Cache;
use crate::model::Resources;
use crate::pack::parse_virtual_node;
use crate::placeholders::PLACEHOLDER_LABEL;
use crate::view::QuotaView;

/// Amounts in the summary's units: CPU in millicores, memory in bytes, pod slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Amounts {
    /// CPU in millicores.
    pub cpu_millis: u64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Pod slots.
    pub pods: u64,
}

impl From<Resources> for Amounts {
    fn from(r: Resources) -> Self {
        Amounts {
            cpu_millis: r.cpu_millis,
            memory_bytes: r.memory_bytes,
            pods: r.pods,
        }
    }
}

/// Placeholder pods bound in a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placeholders {
    /// How many.
    pub pods: u64,
    /// What they request.
    pub requested: Amounts,
}

/// One pool (nodes sharing the pool label's value; `None`: nodes without the label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolSummary {
    /// Pool name.
    pub name: Option<String>,
    /// Nodes it has now.
    pub nodes: u32,
    /// Nodes an autoscaling pool may grow to (`None`: not configured as autoscaling).
    pub max_nodes: Option<u32>,
    /// Nodes that are cordoned.
    pub unschedulable: u32,
    /// Sum of the nodes' allocatable.
    pub allocatable: Amounts,
    /// Requests of bound, non-terminal pods (placeholders included).
    pub requested: Amounts,
    /// Promised by the ledger to admitted gangs and not yet carried by bound pods, on this
    /// pool's nodes or on nodes it is expected to add.
    pub reserved: Amounts,
    /// Placeholder pods bound on its nodes.
    pub placeholders: Placeholders,
}

/// A namespace's quota as the cache sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaSummary {
    /// Hard limits (`u64::MAX` for a dimension not limited).
    pub hard: Amounts,
    /// Requests of its active pods, bound or not (reservations are shown per pool).
    pub used: Amounts,
}

impl From<QuotaView> for QuotaSummary {
    fn from(q: QuotaView) -> Self {
        QuotaSummary {
            hard: q.hard.into(),
            used: q.used.into(),
        }
    }
}

/// The whole cluster, per pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSummary {
    /// Whether every watch has synced (before that the figures are partial).
    pub ready: bool,
    /// Pools by name (`None`, nodes without a pool, first), every configured autoscaling pool
    /// included even with no node yet.
    pub pools: Vec<PoolSummary>,
    /// Gangs holding a reservation.
    pub reservations: usize,
    /// Placeholder pods not bound to any node yet (waiting for the scheduler).
    pub pending_placeholders: u64,
    /// Quotas by namespace.
    pub quotas: BTreeMap<String, QuotaSummary>,
}

fn add(a: &mut Amounts, r: &Resources) {
    a.cpu_millis = a.cpu_millis.saturating_add(r.cpu_millis);
    a.memory_bytes = a.memory_bytes.saturating_add(r.memory_bytes);
    a.pods = a.pods.saturating_add(r.pods);
}

impl Cache {
    /// The summary at `now` (reservations lapsed by then are left out). Works before the
    /// watches have synced: it then shows what is known so far.
    pub fn summary(&self, now: Instant) -> ClusterSummary {
        let mut pools: BTreeMap<Option<String>, PoolSummary> = BTreeMap::new();
        let empty = |name: Option<String>| PoolSummary {
            name,
            nodes: 0,
            max_nodes: None,
            unschedulable: 0,
            allocatable: Amounts::default(),
            requested: Amounts::default(),
            reserved: Amounts::default(),
            placeholders: Placeholders::default(),
        };
        for p in self.pools() {
            let entry = pools
                .entry(Some(p.name.clone()))
                .or_insert_with(|| empty(Some(p.name.clone())));
            entry.max_nodes = Some(p.max);
        }
        let mut node_pool: BTreeMap<&str, Option<String>> = BTreeMap::new();
        for n in self.nodes() {
            node_pool.insert(n.name.as_str(), n.pool.clone());
            let entry = pools
                .entry(n.pool.clone())
                .or_insert_with(|| empty(n.pool.clone()));
            entry.nodes += 1;
            entry.unschedulable += u32::from(n.unschedulable);
            add(&mut entry.allocatable, &n.allocatable);
            add(&mut entry.requested, &n.requested);
        }
        for (node, amount) in self.ledger().node_reservations(now) {
            let pool = match node_pool.get(node.as_str()) {
                Some(pool) => pool.clone(),
                None => match parse_virtual_node(&node) {
                    Some((pool, _)) => Some(pool.to_string()),
                    // A node that left the cluster since the promise: nowhere to show it.
                    None => continue,
                },
            };
            let entry = pools
                .entry(pool.clone())
                .or_insert_with(|| empty(pool.clone()));
            add(&mut entry.reserved, &amount);
        }
        let mut pending_placeholders = 0u64;
        for p in self.pods() {
            if !p.active || p.labels.get(PLACEHOLDER_LABEL).map(String::as_str) != Some("true") {
                continue;
            }
            match p.node.as_deref().and_then(|n| node_pool.get(n)) {
                Some(pool) => {
                    if let Some(entry) = pools.get_mut(pool) {
                        entry.placeholders.pods += 1;
                        add(&mut entry.placeholders.requested, &p.requests);
                    }
                }
                None => pending_placeholders += 1,
            }
        }
        ClusterSummary {
            ready: self.ensure_ready().is_ok(),
            pools: pools.into_values().collect(),
            reservations: self.ledger_stats(now).entries,
            pending_placeholders,
            quotas: self
                .quota_namespaces()
                .into_iter()
                .filter_map(|ns| Some((ns.clone(), self.quota(&ns)?.into())))
                .collect(),
        }
    }
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
