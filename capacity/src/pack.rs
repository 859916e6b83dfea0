//! Multi-dimensional gang bin packing over a mutable working set of free capacity.
//!
//! A [`WorkingSet`] starts from the nodes (and autoscaling pools) of one view and is consumed
//! by successive decisions: [`WorkingSet::pack`] places a whole gang or nothing, and
//! [`WorkingSet::hold`] sets aside, for a gang that does not fit yet, the room it is waiting
//! for, so that later gangs only backfill around it.
//!
//! ## Packing choice: best-fit decreasing
//!
//! Pods are placed largest first (by dominant share of the largest node shape), each on the
//! feasible node that it leaves with the **least** free capacity (sum of cpu and memory
//! leftovers, each normalised by the largest node shape so the two dimensions weigh alike);
//! ties go to the first node by name. Largest-first matters because a big executor placed
//! last may find only holes that small pods have already nibbled. Best-fit rather than
//! first-fit or the scheduler's spreading (LeastAllocated) keeps the *big holes* intact: the
//! small pods of this gang fill nodes that are already nearly full, and empty or lightly used
//! nodes stay whole for the next gang's large pods (and for the autoscaler to remove).
//! First-fit in name order splits whichever big node happens to sort first; spreading splits
//! all of them. A node an autoscaling pool would have to add is opened only when no existing
//! node (or already opened new node) can take the pod; the smallest pool shape that holds it
//! wins.
//!
//! The placement is a proof that room exists, not an instruction: the real scheduler may
//! place pods elsewhere (see the crate README on how the strategies bound that risk).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::fit::{matches, pool_matches, tolerates_cordon};
use crate::model::{GangDemand, PodDemand, Resources, Toleration};
use crate::shortfall::Shortfall;
use crate::verdict::{Placement, ScaleUp};
use crate::view::{AutoscalePool, ClusterView, NodeView, QuotaView};

/// Name of the `n`-th node (1-based) an autoscaling pool would add: `"<pool>/+<n>"`.
pub fn virtual_node_name(pool: &str, n: u32) -> String {
    format!("{pool}/+{n}")
}

/// The pool and ordinal of a `"<pool>/+<n>"` name (real node names never contain `/`).
pub fn parse_virtual_node(name: &str) -> Option<(&str, u32)> {
    // Called per node per decision: one byte search, not a substring search.
    let slash = name.rfind('/')?;
    let n = name[slash + 1..].strip_prefix('+')?;
    Some((&name[..slash], n.parse().ok()?))
}

/// The selector-and-tolerations shape of a pod: pods with equal keys match the same nodes.
pub type ShapeKey = (BTreeMap<String, String>, Vec<Toleration>);

/// Nodes (indices into the working set's node slice) that match a shape's selector and taints,
/// cordoned ones included. Valid only for the node slice it was computed for; a long-lived
/// owner (the snapshot cache) keeps one per node generation and hands it to each working set.
pub type Eligibility = HashMap<ShapeKey, Arc<[u32]>>;

/// What a working set derives from every node: the largest cpu and memory (to weigh one
/// against the other) and the highest `+n` ordinal of each pool's virtual nodes. It parses
/// every node's name, so a long-lived owner (the snapshot cache, deciding once per admission
/// over 5,000 nodes) keeps it while its nodes' names and sizes do not change.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeScan {
    scale: [f64; 2],
    /// (pool, highest ordinal) of the virtual nodes among the nodes.
    ordinals: Vec<(String, u32)>,
}

impl NodeScan {
    /// The scan of `nodes`.
    pub fn of(nodes: &[NodeView]) -> Self {
        let mut scale = [1.0f64, 1.0f64];
        let mut ordinals: Vec<(String, u32)> = Vec::new();
        for n in nodes {
            scale[0] = scale[0].max(n.allocatable.cpu_millis as f64);
            scale[1] = scale[1].max(n.allocatable.memory_bytes as f64);
            if let Some((pool, ord)) = parse_virtual_node(&n.name) {
                match ordinals.iter_mut().find(|(p, _)| p == pool) {
                    Some((_, last)) => *last = (*last).max(ord),
                    None => ordinals.push((pool.to_owned(), ord)),
                }
            }
        }
        Self { scale, ordinals }
    }
}

/// Where a pod lands while packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bin {
    /// An index into the node slice.
    Node(usize),
    /// An index into the opened virtual nodes.
    Virtual(usize),
}

/// A node an autoscaling pool would add, opened while packing (or reserved in the ledger).
#[derive(Debug, Clone)]
struct VirtualNode {
    pool: usize,
    ordinal: u32,
    free: Resources,
}

/// Free capacity during one decision round, consumed gang by gang.
#[derive(Debug)]
pub struct WorkingSet<'v> {
    nodes: &'v [NodeView],
    pools: &'v [AutoscalePool],
    free: Vec<Resources>,
    virtuals: Vec<VirtualNode>,
    /// Per pool: nodes counted against its headroom on top of `current` (opened here).
    opened: Vec<u32>,
    /// Per pool: the highest `+n` ordinal in use (view nodes, ledger, opened here).
    last_ordinal: Vec<u32>,
    quotas: BTreeMap<String, QuotaView>,
    /// Per-dimension normalisation (largest cpu and memory of any node or pool shape).
    scale: [f64; 2],
    eligibility: Eligibility,
    /// The last shape asked for and its nodes.
    last_eligible: Option<(ShapeKey, Arc<[u32]>)>,
}

impl<'v> WorkingSet<'v> {
    /// A working set over a [`ClusterView`] (as returned by `CapacityChecker::view`, ledger
    /// reservations already counted as requested).
    pub fn new(view: &'v ClusterView) -> Self {
        Self::from_parts(
            &view.nodes,
            &view.pools,
            view.quotas.clone(),
            Eligibility::new(),
        )
    }

    /// A working set over nodes sorted by name, pools and quotas, reusing eligibility computed
    /// earlier for the same node slice.
    pub fn from_parts(
        nodes: &'v [NodeView],
        pools: &'v [AutoscalePool],
        quotas: BTreeMap<String, QuotaView>,
        eligibility: Eligibility,
    ) -> Self {
        Self::scanned(nodes, &NodeScan::of(nodes), pools, quotas, eligibility)
    }

    /// [`WorkingSet::from_parts`] with the nodes' [`NodeScan`] kept by the caller.
    pub fn scanned(
        nodes: &'v [NodeView],
        scan: &NodeScan,
        pools: &'v [AutoscalePool],
        quotas: BTreeMap<String, QuotaView>,
        eligibility: Eligibility,
    ) -> Self {
        let mut scale = scan.scale;
        let last_ordinal = pools
            .iter()
            .map(|p| {
                scale[0] = scale[0].max(p.allocatable.cpu_millis as f64);
                scale[1] = scale[1].max(p.allocatable.memory_bytes as f64);
                scan.ordinals
                    .iter()
                    .filter(|(pool, _)| *pool == p.name)
                    .map(|(_, ordinal)| *ordinal)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        WorkingSet {
            nodes,
            pools,
            free: nodes.iter().map(NodeView::free).collect(),
            virtuals: Vec::new(),
            opened: vec![0; pools.len()],
            last_ordinal,
            quotas,
            scale,
            eligibility,
            last_eligible: None,
        }
    }

    /// Hands the eligibility cache back to its owner for the next working set.
    pub fn into_eligibility(self) -> Eligibility {
        self.eligibility
    }

    /// The nodes this working set packs onto.
    pub fn nodes(&self) -> &'v [NodeView] {
        self.nodes
    }

    /// The autoscaling pools.
    pub fn pools(&self) -> &'v [AutoscalePool] {
        self.pools
    }

    /// Quotas as consumed so far.
    pub fn quotas(&self) -> &BTreeMap<String, QuotaView> {
        &self.quotas
    }

    /// Free capacity left on a node (by index).
    pub fn free(&self, node: usize) -> Option<Resources> {
        self.free.get(node).copied()
    }

    /// Takes capacity promised elsewhere (a ledger reservation) off a node, by name: an
    /// existing node, or a `"<pool>/+<n>"` node a pool is expected to add. Unknown names
    /// (a node that left) are ignored.
    pub fn take_reserved(&mut self, node: &str, amount: &Resources) {
        if let Ok(i) = self.nodes.binary_search_by(|n| n.name.as_str().cmp(node)) {
            self.free[i] = self.free[i].saturating_sub(amount);
            return;
        }
        let Some((pool, ordinal)) = parse_virtual_node(node) else {
            return;
        };
        let Some(p) = self.pools.iter().position(|x| x.name == pool) else {
            return;
        };
        let v = match self
            .virtuals
            .iter()
            .position(|v| v.pool == p && v.ordinal == ordinal)
        {
            Some(v) => v,
            None => {
                self.virtuals.push(VirtualNode {
                    pool: p,
                    ordinal,
                    free: self.pools[p].allocatable,
                });
                self.opened[p] += 1;
                self.last_ordinal[p] = self.last_ordinal[p].max(ordinal);
                self.virtuals.len() - 1
            }
        };
        self.virtuals[v].free = self.virtuals[v].free.saturating_sub(amount);
    }

    /// Charges a namespace's quota (a reservation or an admitted gang).
    pub fn charge_quota(&mut self, namespace: &str, amount: &Resources) {
        if let Some(q) = self.quotas.get_mut(namespace) {
            q.used = q.used.saturating_add(amount);
        }
    }

    /// Nodes matching the pod's selector and taints (cordoned included), computed once per
    /// shape.
    pub(crate) fn eligible(&mut self, pod: &PodDemand) -> Arc<[u32]> {
        // Gangs repeat one shape pod after pod: answer those without building a key.
        if let Some(((selector, tolerations), list)) = &self.last_eligible
            && selector == &pod.node_selector
            && tolerations == &pod.tolerations
        {
            return Arc::clone(list);
        }
        let list = self.eligible_uncached(pod);
        self.last_eligible = Some((
            (pod.node_selector.clone(), pod.tolerations.clone()),
            Arc::clone(&list),
        ));
        list
    }

    fn eligible_uncached(&mut self, pod: &PodDemand) -> Arc<[u32]> {
        let key: ShapeKey = (pod.node_selector.clone(), pod.tolerations.clone());
        if let Some(hit) = self.eligibility.get(&key) {
            return Arc::clone(hit);
        }
        let list: Arc<[u32]> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches(pod, &n.labels, &n.taints))
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect();
        self.eligibility.insert(key, Arc::clone(&list));
        list
    }

    /// Places every pod of the gang or none: on success the capacity is taken and the
    /// placement returned; on failure nothing changes and the [`Shortfall`] says which pod
    /// did not fit and by how much. Quotas are not consulted (see `admit`).
    pub fn pack(&mut self, gang: &GangDemand) -> Result<Placement, Box<Shortfall>> {
        self.pack_or_probe(gang, true)
    }

    /// What [`WorkingSet::pack`] would answer, leaving the working set as it was.
    pub fn probe(&mut self, gang: &GangDemand) -> Result<Placement, Box<Shortfall>> {
        self.pack_or_probe(gang, false)
    }

    fn pack_or_probe(
        &mut self,
        gang: &GangDemand,
        keep: bool,
    ) -> Result<Placement, Box<Shortfall>> {
        let virtuals_before = self.virtuals.len();
        let opened_before = self.opened.clone();
        let last_before = self.last_ordinal.clone();
        let mut taken: Vec<(Bin, Resources)> = Vec::with_capacity(gang.pods.len());
        let mut bins: Vec<Option<Bin>> = vec![None; gang.pods.len()];
        let mut shortfall = None;
        for i in self.order(gang) {
            let pod = &gang.pods[i];
            let bin = match self.best_bin(pod) {
                Some(bin) => Some(bin),
                None => self.open_virtual(pod),
            };
            let Some(bin) = bin else {
                shortfall = Some(self.shortfall(gang, i, taken.len()));
                break;
            };
            self.take(bin, &pod.requests);
            taken.push((bin, pod.requests));
            bins[i] = Some(bin);
        }
        let result = match shortfall {
            None => Ok(self.placement(&bins)),
            Some(s) => Err(Box::new(s)),
        };
        if result.is_err() || !keep {
            for (bin, amount) in taken {
                self.give(bin, &amount);
            }
            self.virtuals.truncate(virtuals_before);
            self.opened = opened_before;
            self.last_ordinal = last_before;
        }
        result
    }

    /// For a gang that must wait but keeps its place: sets aside the room it is waiting for so
    /// that gangs considered after it only use capacity it cannot. Each pod (largest first)
    /// takes a node where it fits, or else all that is free (up to its request) on the node
    /// closest to fitting it; the gang's namespace quota room is held the same way. Returns
    /// what was set aside per node, for "reserved for …" explanations.
    pub fn hold(&mut self, gang: &GangDemand) -> Vec<(String, Resources)> {
        let mut held: Vec<(String, Resources)> = Vec::new();
        for i in self.order(gang) {
            let pod = &gang.pods[i];
            let bin = self.best_bin(pod).or_else(|| self.closest_bin(pod));
            let Some(bin) = bin else { continue };
            let free = self.bin_free(bin);
            let amount = Resources {
                cpu_millis: free.cpu_millis.min(pod.requests.cpu_millis),
                memory_bytes: free.memory_bytes.min(pod.requests.memory_bytes),
                pods: free.pods.min(pod.requests.pods),
            };
            self.take(bin, &amount);
            held.push((self.bin_name(bin), amount));
        }
        if let Some(q) = self.quotas.get_mut(&gang.namespace) {
            let room = q.hard.saturating_sub(&q.used);
            let total = gang.total();
            q.used = q.used.saturating_add(&Resources {
                cpu_millis: room.cpu_millis.min(total.cpu_millis),
                memory_bytes: room.memory_bytes.min(total.memory_bytes),
                pods: room.pods.min(total.pods),
            });
        }
        held
    }

    /// Pod indices, largest dominant share first; equal sizes keep gang order (driver first).
    fn order(&self, gang: &GangDemand) -> Vec<usize> {
        let size = |p: &PodDemand| {
            (p.requests.cpu_millis as f64 / self.scale[0])
                .max(p.requests.memory_bytes as f64 / self.scale[1])
        };
        let mut order: Vec<usize> = (0..gang.pods.len()).collect();
        order.sort_by(|&a, &b| size(&gang.pods[b]).total_cmp(&size(&gang.pods[a])));
        order
    }

    /// Normalised leftover if `need` goes where `free` is; lower is a tighter fit.
    fn leftover(&self, free: &Resources, need: &Resources) -> f64 {
        (free.cpu_millis - need.cpu_millis) as f64 / self.scale[0]
            + (free.memory_bytes - need.memory_bytes) as f64 / self.scale[1]
    }

    /// The best-fit feasible node (existing or already opened), if any.
    fn best_bin(&mut self, pod: &PodDemand) -> Option<Bin> {
        let eligible = self.eligible(pod);
        let cordon_ok = tolerates_cordon(pod);
        let mut best: Option<(f64, Bin)> = None;
        for &i in eligible.iter() {
            let i = i as usize;
            let free = &self.free[i];
            // Eligible nodes already match selector and taints; only the cordon is left.
            if !free.covers(&pod.requests) || (self.nodes[i].unschedulable && !cordon_ok) {
                continue;
            }
            let score = self.leftover(free, &pod.requests);
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, Bin::Node(i)));
            }
        }
        for (v, node) in self.virtuals.iter().enumerate() {
            if !node.free.covers(&pod.requests) || !pool_matches(pod, &self.pools[node.pool]) {
                continue;
            }
            let score = self.leftover(&node.free, &pod.requests);
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, Bin::Virtual(v)));
            }
        }
        best.map(|(_, b)| b)
    }

    /// Opens a new node in the tightest-fitting pool that may still grow, if any.
    fn open_virtual(&mut self, pod: &PodDemand) -> Option<Bin> {
        let mut best: Option<(f64, usize)> = None;
        for (p, pool) in self.pools.iter().enumerate() {
            let headroom = pool
                .max
                .saturating_sub(pool.current)
                .saturating_sub(self.opened[p]);
            if headroom == 0 || !pool_matches(pod, pool) || !pool.allocatable.covers(&pod.requests)
            {
                continue;
            }
            let score = self.leftover(&pool.allocatable, &pod.requests);
            if best.is_none_or(|(s, _)| score < s) {
                best = Some((score, p));
            }
        }
        let (_, p) = best?;
        self.opened[p] += 1;
        self.last_ordinal[p] += 1;
        self.virtuals.push(VirtualNode {
            pool: p,
            ordinal: self.last_ordinal[p],
            free: self.pools[p].allocatable,
        });
        Some(Bin::Virtual(self.virtuals.len() - 1))
    }

    /// The schedulable node nearest to fitting the pod (smallest normalised deficit).
    fn closest_bin(&mut self, pod: &PodDemand) -> Option<Bin> {
        let eligible = self.eligible(pod);
        let cordon_ok = tolerates_cordon(pod);
        let need = &pod.requests;
        eligible
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| cordon_ok || !self.nodes[i].unschedulable)
            .map(|i| (self.deficit(&self.free[i], need), i))
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, i)| Bin::Node(i))
    }

    /// Normalised amount by which `free` misses `need`.
    pub(crate) fn deficit(&self, free: &Resources, need: &Resources) -> f64 {
        let short = need.saturating_sub(free);
        short.cpu_millis as f64 / self.scale[0]
            + short.memory_bytes as f64 / self.scale[1]
            + short.pods as f64
    }

    fn bin_free(&self, bin: Bin) -> Resources {
        match bin {
            Bin::Node(i) => self.free[i],
            Bin::Virtual(v) => self.virtuals[v].free,
        }
    }

    fn bin_name(&self, bin: Bin) -> String {
        match bin {
            Bin::Node(i) => self.nodes[i].name.clone(),
            Bin::Virtual(v) => {
                let node = &self.virtuals[v];
                virtual_node_name(&self.pools[node.pool].name, node.ordinal)
            }
        }
    }

    fn take(&mut self, bin: Bin, amount: &Resources) {
        match bin {
            Bin::Node(i) => self.free[i] = self.free[i].saturating_sub(amount),
            Bin::Virtual(v) => self.virtuals[v].free = self.virtuals[v].free.saturating_sub(amount),
        }
    }

    fn give(&mut self, bin: Bin, amount: &Resources) {
        match bin {
            Bin::Node(i) => self.free[i] = self.free[i].saturating_add(amount),
            Bin::Virtual(v) => self.virtuals[v].free = self.virtuals[v].free.saturating_add(amount),
        }
    }

    /// Node names in gang order, and the nodes each pool must add.
    fn placement(&self, bins: &[Option<Bin>]) -> Placement {
        let mut nodes = Vec::with_capacity(bins.len());
        let mut added: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for bin in bins.iter().flatten() {
            let name = self.bin_name(*bin);
            if let Some((pool, ordinal)) = parse_virtual_node(&name) {
                let ords = added.entry(pool.to_string()).or_default();
                if !ords.contains(&ordinal) {
                    ords.push(ordinal);
                }
            }
            nodes.push(name);
        }
        let scale_up = added
            .into_iter()
            .map(|(pool, ords)| ScaleUp {
                pool,
                nodes: u32::try_from(ords.len()).unwrap_or(u32::MAX),
            })
            .collect();
        Placement { nodes, scale_up }
    }

    /// Why pod `i` of the gang found no node, given what is free now.
    fn shortfall(&mut self, gang: &GangDemand, i: usize, placed: usize) -> Shortfall {
        let pod = &gang.pods[i];
        let need = pod.requests;
        let mut best_free = Resources::default();
        let mut total_free = Resources::default();
        let mut closest: Option<(f64, String, Resources)> = None;
        let mut candidates = 0usize;
        let mut pools_seen: Vec<Option<&str>> = Vec::new();
        let eligible = self.eligible(pod);
        let cordon_ok = tolerates_cordon(pod);
        let bins = eligible
            .iter()
            .map(|&i| i as usize)
            .filter(|&i| cordon_ok || !self.nodes[i].unschedulable)
            .map(|i| (Bin::Node(i), self.nodes[i].pool.as_deref()))
            .chain(
                self.virtuals
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| pool_matches(pod, &self.pools[v.pool]))
                    .map(|(v, n)| (Bin::Virtual(v), Some(self.pools[n.pool].name.as_str()))),
            );
        for (bin, pool) in bins {
            let free = self.bin_free(bin);
            candidates += 1;
            if !pools_seen.contains(&pool) {
                pools_seen.push(pool);
            }
            best_free = Resources {
                cpu_millis: best_free.cpu_millis.max(free.cpu_millis),
                memory_bytes: best_free.memory_bytes.max(free.memory_bytes),
                pods: best_free.pods.max(free.pods),
            };
            total_free = total_free.saturating_add(&free);
            let d = self.deficit(&free, &need);
            if closest.as_ref().is_none_or(|(c, _, _)| d < *c) {
                closest = Some((d, self.bin_name(bin), free));
            }
        }
        let pool = match pools_seen.as_slice() {
            [Some(p)] => Some((*p).to_string()),
            _ => None,
        };
        let same_role: Vec<usize> = (0..gang.pods.len())
            .filter(|&j| gang.pods[j].role == pod.role)
            .collect();
        Shortfall {
            pod: i,
            role: pod.role,
            ordinal: same_role.iter().position(|&j| j == i).map_or(1, |p| p + 1),
            of: same_role.len(),
            need,
            best_free,
            total_free,
            closest: closest.map(|(_, name, free)| (name, free)),
            candidates,
            placed,
            gang_size: gang.pods.len(),
            pool,
            place: crate::fit::describe_selector(&pod.node_selector),
        }
    }
}

#[cfg(test)]
#[path = "pack_tests.rs"]
mod tests;
