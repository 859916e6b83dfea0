//! The snapshot cache: nodes with their requested resources, pods, quotas and the ledger, kept
//! **incrementally** from watch events so a decision never walks the pods.
//!
//! Each pod event moves only that pod's effective request: off its old node and namespace,
//! onto its new ones (`O(1)`), and lets the ledger convert its share of a reservation in the
//! same step, so the two never disagree. A relist (`Init … InitDone`) replaces a kind
//! wholesale and recomputes the aggregates once. Nodes are kept sorted by name; the
//! selector/taint eligibility of each pod shape is cached until the node set or a node's
//! labels/taints change. A decision is then: copy the free vector (one entry per node), take
//! the ledger off, pack the gang over the nodes it may use.
//!
//! No I/O here: [`crate::snapshot`] feeds it from kube watchers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use k8s_openapi::api::core::v1::ResourceQuota;

use crate::convert::quota_hard;
use crate::fit::{matches, pool_matches};
use crate::ledger::{Ledger, LedgerStats, ObservedPod};
use crate::model::{GangDemand, Resources};
use crate::pack::{Eligibility, NodeScan, WorkingSet, parse_virtual_node};
use crate::verdict::{Placement, Verdict, WaitKind, WaitReason};
use crate::view::{AutoscalePool, ClusterView, NodeView, QuotaView};
use crate::{Error, Result};

mod label_index;
mod records;
use label_index::LabelIndex;
pub use records::{Kind, PodRecord, PoolTotals, QuotaEntry, QuotaKey};

/// The cache (see the module docs).
#[derive(Debug)]
pub struct Cache {
    pool_label: String,
    role_label: String,
    pools: Vec<AutoscalePool>,
    nodes: Vec<NodeView>,
    node_index: HashMap<String, usize>,
    /// Requests of pods bound to nodes the cache does not (yet, or any more) know.
    orphans: HashMap<String, Resources>,
    pods: HashMap<String, PodRecord>,
    pods_by_ns: HashMap<String, HashSet<String>>,
    /// Pods by the label values reservations select on.
    label_index: LabelIndex,
    ns_used: HashMap<String, Resources>,
    quotas: HashMap<QuotaKey, Option<Resources>>,
    /// Nodes per pool label value.
    pool_nodes: HashMap<String, u32>,
    ledger: Ledger,
    synced: [bool; 3],
    eligibility: Mutex<Eligibility>,
    /// The nodes' scan for working sets, kept while no node is added, removed or resized.
    scan: NodeScan,
}

impl Cache {
    /// An empty, unsynced cache.
    pub fn new(
        pool_label: &str,
        role_label: &str,
        pools: Vec<AutoscalePool>,
        ledger: Ledger,
    ) -> Self {
        Cache {
            pool_label: pool_label.to_string(),
            role_label: role_label.to_string(),
            pools,
            nodes: Vec::new(),
            node_index: HashMap::new(),
            orphans: HashMap::new(),
            pods: HashMap::new(),
            pods_by_ns: HashMap::new(),
            label_index: LabelIndex::default(),
            ns_used: HashMap::new(),
            quotas: HashMap::new(),
            pool_nodes: HashMap::new(),
            ledger,
            synced: [false; 3],
            eligibility: Mutex::new(Eligibility::new()),
            scan: NodeScan::of(&[]),
        }
    }

    /// The node label naming pools.
    pub fn pool_label(&self) -> &str {
        &self.pool_label
    }

    /// The pod label naming Spark roles.
    pub fn role_label(&self) -> &str {
        &self.role_label
    }

    /// A kind's initial list has been applied.
    pub fn mark_synced(&mut self, kind: Kind) {
        self.synced[kind as usize] = true;
    }

    /// Whether every kind has synced; `Err(NotReady)` naming the missing ones otherwise.
    pub fn ensure_ready(&self) -> Result<()> {
        let missing: Vec<&str> = [Kind::Nodes, Kind::Pods, Kind::Quotas]
            .into_iter()
            .filter(|k| !self.synced[*k as usize])
            .map(Kind::as_str)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Error::NotReady(format!(
                "waiting for the initial list of {}",
                missing.join(", ")
            )))
        }
    }

    // ---- nodes ----

    /// Replaces every node (a relist).
    pub fn replace_nodes(&mut self, mut nodes: Vec<NodeView>) {
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes.dedup_by(|a, b| a.name == b.name);
        self.nodes = nodes;
        self.reindex_nodes();
        self.recount_pods();
    }

    /// A node was added or changed.
    pub fn upsert_node(&mut self, mut node: NodeView) {
        if let Some(&i) = self.node_index.get(&node.name) {
            let old = &mut self.nodes[i];
            let shape_changed = old.labels != node.labels || old.taints != node.taints;
            let pool_changed = old.pool != node.pool;
            let resized = old.allocatable != node.allocatable;
            node.requested = old.requested;
            *old = node;
            if shape_changed {
                self.clear_eligibility();
            }
            if resized {
                self.scan = NodeScan::of(&self.nodes);
            }
            if pool_changed {
                self.recount_pool_nodes();
            }
            return;
        }
        node.requested = self.orphans.remove(&node.name).unwrap_or_default();
        let at = self.nodes.partition_point(|n| n.name < node.name);
        self.nodes.insert(at, node);
        self.reindex_nodes();
    }

    /// A node was deleted: pods still bound to it keep their requests aside until they go.
    pub fn remove_node(&mut self, name: &str) {
        let Some(&i) = self.node_index.get(name) else {
            return;
        };
        let node = self.nodes.remove(i);
        if node.requested != Resources::default() {
            self.orphans.insert(node.name, node.requested);
        }
        self.reindex_nodes();
    }

    fn reindex_nodes(&mut self) {
        self.node_index = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        self.scan = NodeScan::of(&self.nodes);
        self.clear_eligibility();
        self.recount_pool_nodes();
    }

    fn clear_eligibility(&mut self) {
        self.eligibility
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Nodes, sorted by name, with requests of bound pods (no reservations).
    pub fn nodes(&self) -> &[NodeView] {
        &self.nodes
    }

    // ---- pods ----

    /// Replaces every pod (a relist) and recomputes the aggregates.
    pub fn replace_pods(&mut self, pods: impl IntoIterator<Item = (String, PodRecord)>) {
        let old: HashSet<String> = self.pods.keys().cloned().collect();
        self.pods = pods.into_iter().collect();
        self.label_index.rebuild(&self.pods);
        for gone in old.iter().filter(|k| !self.pods.contains_key(*k)) {
            self.ledger.forget(gone);
        }
        self.pods_by_ns.clear();
        for (key, p) in &self.pods {
            self.pods_by_ns
                .entry(p.namespace.clone())
                .or_default()
                .insert(key.clone());
        }
        self.recount_pods();
        let keys: Vec<String> = self.pods.keys().cloned().collect();
        for key in keys {
            self.observe(&key);
        }
    }

    /// A pod was added or changed.
    pub fn upsert_pod(&mut self, key: String, record: PodRecord) {
        self.count(&record, true);
        self.pods_by_ns
            .entry(record.namespace.clone())
            .or_default()
            .insert(key.clone());
        if let Some(old) = self.pods.get(&key) {
            self.label_index.remove(&key, &old.labels);
        }
        self.label_index.insert(&key, &record.labels);
        if let Some(old) = self.pods.insert(key.clone(), record) {
            self.count(&old, false);
        }
        self.observe(&key);
    }

    /// A pod was deleted.
    pub fn remove_pod(&mut self, key: &str) {
        let Some(old) = self.pods.remove(key) else {
            return;
        };
        self.count(&old, false);
        self.label_index.remove(key, &old.labels);
        if let Some(set) = self.pods_by_ns.get_mut(&old.namespace) {
            set.remove(key);
            if set.is_empty() {
                self.pods_by_ns.remove(&old.namespace);
            }
        }
        self.ledger.forget(key);
    }

    /// Adds (or with `add == false` removes) a pod's request on its node and in its namespace.
    fn count(&mut self, p: &PodRecord, add: bool) {
        if !p.active {
            return;
        }
        let apply = |r: &mut Resources| {
            *r = if add {
                r.saturating_add(&p.requests)
            } else {
                r.saturating_sub(&p.requests)
            }
        };
        apply(self.ns_used.entry(p.namespace.clone()).or_default());
        if let Some(node) = &p.node {
            match self.node_index.get(node) {
                Some(&i) => apply(&mut self.nodes[i].requested),
                None => {
                    let r = self.orphans.entry(node.clone()).or_default();
                    apply(r);
                    if *r == Resources::default() {
                        self.orphans.remove(node);
                    }
                }
            }
        }
    }

    fn recount_pods(&mut self) {
        for n in &mut self.nodes {
            n.requested = Resources::default();
        }
        self.orphans.clear();
        self.ns_used.clear();
        let pods = std::mem::take(&mut self.pods);
        for p in pods.values() {
            self.count(p, true);
        }
        self.pods = pods;
    }

    fn observe(&mut self, key: &str) {
        let Some(p) = self.pods.get(key) else { return };
        self.ledger.observe(&ObservedPod {
            id: key,
            namespace: &p.namespace,
            labels: &p.labels,
            role: p.role,
            requests: p.requests,
            bound: p.node.is_some(),
            active: p.active,
        });
    }

    /// Pods known.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Every pod known (diagnostics and summaries; decisions never walk the pods).
    pub fn pods(&self) -> impl Iterator<Item = &PodRecord> {
        self.pods.values()
    }

    // ---- quotas ----

    /// Quota key and hard limits of a ResourceQuota.
    pub fn quota_entry(q: &ResourceQuota) -> QuotaEntry {
        let key = (
            q.metadata.namespace.clone().unwrap_or_default(),
            q.metadata.name.clone().unwrap_or_default(),
        );
        (key, quota_hard(q))
    }

    /// Replaces every quota (a relist).
    pub fn replace_quotas(
        &mut self,
        quotas: impl IntoIterator<Item = ((String, String), Option<Resources>)>,
    ) {
        self.quotas = quotas.into_iter().collect();
    }

    /// Namespaces with at least one ResourceQuota, sorted.
    pub fn quota_namespaces(&self) -> Vec<String> {
        let mut out: Vec<String> = self.quotas.keys().map(|(ns, _)| ns.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// A quota was added or changed.
    pub fn upsert_quota(&mut self, key: QuotaKey, hard: Option<Resources>) {
        self.quotas.insert(key, hard);
    }

    /// A quota was deleted.
    pub fn remove_quota(&mut self, key: &QuotaKey) {
        self.quotas.remove(key);
    }

    /// A namespace's quota: the lowest hard limit of its unscoped quotas, and what its active
    /// pods request (no reservations). `None` when it has none.
    pub fn quota(&self, namespace: &str) -> Option<QuotaView> {
        let mut hard: Option<Resources> = None;
        for ((ns, _), h) in &self.quotas {
            let (true, Some(h)) = (ns == namespace, h) else {
                continue;
            };
            hard = Some(match hard {
                None => *h,
                Some(prev) => Resources {
                    cpu_millis: prev.cpu_millis.min(h.cpu_millis),
                    memory_bytes: prev.memory_bytes.min(h.memory_bytes),
                    pods: prev.pods.min(h.pods),
                },
            });
        }
        Some(QuotaView {
            hard: hard?,
            used: self.ns_used.get(namespace).copied().unwrap_or_default(),
        })
    }

    // ---- decisions ----

    /// Pools with `current` counted from the nodes.
    pub fn pools(&self) -> Vec<AutoscalePool> {
        let mut pools = self.pools.clone();
        for p in &mut pools {
            p.current = self.pool_nodes.get(&p.name).copied().unwrap_or(0);
        }
        pools
    }

    fn recount_pool_nodes(&mut self) {
        self.pool_nodes.clear();
        for n in &self.nodes {
            if let Some(pool) = &n.pool {
                *self.pool_nodes.entry(pool.clone()).or_default() += 1;
            }
        }
    }

    /// The cluster as one decision sees it, reservations counted as requested.
    pub fn view(&self, now: Instant) -> Result<ClusterView> {
        self.ensure_ready()?;
        let namespaces: HashSet<&str> = self.quotas.keys().map(|(ns, _)| ns.as_str()).collect();
        let quotas = namespaces
            .into_iter()
            .filter_map(|ns| Some((ns.to_string(), self.quota(ns)?)))
            .collect();
        let mut view = ClusterView {
            nodes: self.nodes.clone(),
            quotas,
            pools: self.pools(),
        };
        self.ledger.apply_to_view(&mut view, now);
        Ok(view)
    }

    /// The verdict for a gang now. A wait caused only by reservations says whose.
    pub fn check(&self, gang: &GangDemand, now: Instant) -> Result<Verdict> {
        self.ensure_ready()?;
        let pools = self.pools();
        let verdict = match self.decide(gang, &pools, true, false, now) {
            // A gang whose executors would spread keeps away from every node with pods on the
            // way (see `ledger`'s module docs).
            Verdict::Fits(p) if self.ledger.spreads(gang, &p) => {
                self.decide(gang, &pools, true, true, now)
            }
            v => v,
        };
        let Verdict::Wait(wait) = &verdict else {
            return Ok(verdict);
        };
        if !matches!(
            wait.kind,
            WaitKind::Insufficient { .. } | WaitKind::Quota { .. }
        ) || !self.ledger.any_live(now)
        {
            return Ok(verdict);
        }
        if !matches!(
            self.decide(gang, &pools, false, false, now),
            Verdict::Fits(_)
        ) {
            return Ok(verdict);
        }
        let holder = match wait.kind {
            WaitKind::Quota { .. } => self.ledger.holder_in(now, &gang.namespace),
            _ => self
                .ledger
                .holder_on(now, |node| self.usable_by(gang, &pools, node)),
        };
        let Some(holder) = holder else {
            return Ok(verdict);
        };
        Ok(Verdict::Wait(WaitReason {
            kind: WaitKind::Reserved {
                holder: holder.to_string(),
            },
            message: format!(
                "reserved for {holder}: the room is promised to a gang admitted before this one \
                 whose pods are not all running yet; without it: {}",
                wait.message
            ),
        }))
    }

    fn decide(
        &self,
        gang: &GangDemand,
        pools: &[AutoscalePool],
        with_ledger: bool,
        strict: bool,
        now: Instant,
    ) -> Verdict {
        let quotas: BTreeMap<String, QuotaView> = self
            .quota(&gang.namespace)
            .map(|q| (gang.namespace.clone(), q))
            .into_iter()
            .collect();
        let eligibility = std::mem::take(
            &mut *self
                .eligibility
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut ws = WorkingSet::scanned(&self.nodes, &self.scan, pools, quotas, eligibility);
        if with_ledger {
            self.ledger.apply(&mut ws, now, strict);
        }
        let verdict = ws.admit(gang);
        *self
            .eligibility
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ws.into_eligibility();
        verdict
    }

    /// Whether some pod of the gang may use the node (existing or expected).
    fn usable_by(&self, gang: &GangDemand, pools: &[AutoscalePool], node: &str) -> bool {
        if let Some(&i) = self.node_index.get(node) {
            let n = &self.nodes[i];
            return gang.pods.iter().any(|p| matches(p, &n.labels, &n.taints));
        }
        let Some((pool, _)) = parse_virtual_node(node) else {
            return false;
        };
        pools
            .iter()
            .any(|p| p.name == pool && gang.pods.iter().any(|d| pool_matches(d, p)))
    }

    // ---- ledger ----

    /// Promises the placement to the gang; pods of it already in the cache convert at once.
    pub fn reserve(&mut self, demand: &GangDemand, placement: &Placement, now: Instant) {
        self.ledger.reserve(demand, placement, now);
        // Pods of the gang that exist already (an adopted application) take their slots now.
        // Only pods the new promise's selector matches can: every other pod was matched
        // against the older promises when it was seen. Observing all of the namespace's pods
        // here made each reservation cost (pods × promises) — most of a wave's admission time;
        // the label index finds the matching ones directly.
        if demand.pod_labels.is_empty() {
            return; // a promise without a selector takes no pod (`Ledger::observe`)
        }
        let keys: Vec<String> = self
            .label_index
            .matching(&demand.pod_labels, &self.pods)
            .into_iter()
            .filter(|key| {
                self.pods
                    .get(key)
                    .is_some_and(|p| p.namespace == demand.namespace)
            })
            .collect();
        for key in keys {
            self.observe(&key);
        }
    }

    /// Drops a promise.
    pub fn release(&mut self, key: &str) -> bool {
        self.ledger.release(key)
    }

    /// Drops lapsed promises; returns their keys.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.ledger.expire(now)
    }

    /// The ledger (read-only).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Ledger totals.
    pub fn ledger_stats(&self, now: Instant) -> LedgerStats {
        self.ledger.stats(now)
    }

    /// Allocatable and requested per pool (`""` for nodes without one).
    pub fn pool_totals(&self) -> BTreeMap<String, PoolTotals> {
        let mut out: BTreeMap<String, PoolTotals> = BTreeMap::new();
        for n in &self.nodes {
            let t = out.entry(n.pool.clone().unwrap_or_default()).or_default();
            t.allocatable = t.allocatable.saturating_add(&n.allocatable);
            t.requested = t.requested.saturating_add(&n.requested);
            t.nodes += 1;
        }
        out
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
