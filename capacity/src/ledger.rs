//! The reservation ledger: capacity promised to admitted gangs whose pods do not exist yet.
//!
//! Between "fits" and the moment the scheduler binds the application's pods there are
//! seconds (the Spark Operator submits, the driver starts, then asks for executors) in which
//! the cluster still looks free. Without the ledger a second decision in that window spends
//! the same room. Each entry holds one **slot** per pod of the gang, on the node the placement
//! chose, and every slot passes through three states as the real pods are seen in the cache
//! (matched by [`GangDemand::pod_labels`], then by role and shape):
//!
//! | slot state | counted on its planned node | counted in the namespace quota |
//! |---|---|---|
//! | `Reserved` (no pod yet) | yes | yes |
//! | `Created` (pod exists, not bound) | yes | no — the pod itself is |
//! | `Bound` (pod on a node, or finished) | no — the pod itself is | no |
//!
//! so a resource is never counted twice nor dropped while the pod is pending. A created pod
//! that disappears before binding returns its slot to `Reserved`. An entry leaves the ledger
//! when all its slots are bound, when it is released (submission failed, job over), or when its
//! TTL passes — so nothing leaks even if the pods never come.
//!
//! **Exclusive nodes** ([`Ledger::with_exclusive_nodes`]): the scheduler cannot see the
//! ledger, so when pods are placed by score alone, one gang's pods land in another's promised
//! room and leave its executors Pending. With placements made binding (the submitter pins the
//! driver to its node and the executors to the set of theirs), the only way left for that to
//! happen is a gang whose executors **spread** — pinned to more than one node, or not pinned
//! at all (a placement on a node a pool has yet to add) — sharing a node with another gang's
//! pods on the way: the scheduler spreads those executors over the set by its own scoring, not
//! by the plan, so more of them may land on a node than planned. So:
//! - every node of a spreading gang's placement is offered to no other gang until all its pods
//!   are bound — all of them, not just nodes with open slots, since a pod's slot is the one it
//!   matched at creation and the last executor may land on any node of the set;
//! - a spreading gang is placed only on nodes without pods on the way
//!   ([`Ledger::apply`] with `strict`, [`Ledger::spreads`]);
//! - a gang whose executors all go to one node cannot take more than planned anywhere: its
//!   exact amounts are reserved and its nodes stay open to other gangs that fit beside it. A
//!   round of small gangs is then no longer limited to one gang per node per scheduling
//!   latency (issue 18's profile: 100 admissions per ~4 s on 100 nodes).
//!
//! (For one gang alone any spread works: its executors are identical, and the plan proved its
//! nodes hold them.) Nodes a pool has yet to add keep their exact amounts.
//!
//! Pure: time is passed in, and the snapshot cache calls [`Ledger::observe`] / [`Ledger::forget`]
//! from its watch events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use index::SelectorIndex;
use totals::Totals;

use crate::fit::selector_matches;
use crate::model::{GangDemand, PodRole, Resources};
use crate::pack::{WorkingSet, parse_virtual_node};
use crate::verdict::Placement;
use crate::view::{ClusterView, NodeView};

mod index;
mod totals;

/// Where a slot stands (see the module table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// No pod yet.
    Reserved,
    /// Its pod exists but is not bound.
    Created,
    /// Its pod is bound (or already finished): the reservation has converted.
    Bound,
}

/// One pod's share of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// Driver or executor.
    pub role: PodRole,
    /// Its requests.
    pub requests: Resources,
    /// The node the placement chose (possibly `"<pool>/+<n>"`).
    pub node: String,
    /// Its state.
    pub state: SlotState,
}

/// Capacity promised to one gang.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Namespace of the pods.
    pub namespace: String,
    /// Labels the gang's pods will carry.
    pub selector: BTreeMap<String, String>,
    /// One per pod.
    pub slots: Vec<Slot>,
    /// When the promise lapses.
    pub expires_at: Instant,
}

/// A pod as the ledger needs to see it.
#[derive(Debug, Clone, Copy)]
pub struct ObservedPod<'a> {
    /// Stable identity (uid).
    pub id: &'a str,
    /// Namespace.
    pub namespace: &'a str,
    /// Labels.
    pub labels: &'a BTreeMap<String, String>,
    /// Role when the pod says (Spark's `spark-role` label).
    pub role: Option<PodRole>,
    /// Effective requests.
    pub requests: Resources,
    /// `spec.nodeName` is set.
    pub bound: bool,
    /// Not `Succeeded`/`Failed`.
    pub active: bool,
}

/// Totals for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// Entries.
    pub entries: usize,
    /// Slots not yet converted (reserved or created).
    pub open_slots: usize,
    /// Their requests summed.
    pub reserved: Resources,
}

/// The ledger (see the module docs).
#[derive(Debug, Clone)]
pub struct Ledger {
    ttl: Duration,
    exclusive_nodes: bool,
    entries: BTreeMap<String, Entry>,
    /// The entries a new pod may convert, by selector (see [`index`]).
    index: SelectorIndex,
    /// Pods that converted a slot: the entry and the slot.
    by_pod: HashMap<String, (String, usize)>,
    /// The same pods by entry, so a release forgets them without walking every pod: always
    /// the inverse of `by_pod` (a pod converts only while absent from `by_pod`, and `forget`,
    /// `release` and `reserve`, which releases first, update both).
    pods_of: HashMap<String, Vec<String>>,
    /// What `entries` take, kept as they change.
    totals: Totals,
    /// The entries by when they lapse.
    by_expiry: BTreeSet<(Instant, String)>,
}

impl Ledger {
    /// An empty ledger whose entries lapse `ttl` after they are made.
    pub fn new(ttl: Duration) -> Self {
        Ledger {
            ttl,
            exclusive_nodes: false,
            entries: BTreeMap::new(),
            index: SelectorIndex::default(),
            by_pod: HashMap::new(),
            pods_of: HashMap::new(),
            totals: Totals::default(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// The existing nodes of a spreading gang with pods on the way count as full for every
    /// other decision, and a spreading gang is placed away from pods on the way (see the
    /// module docs).
    pub fn with_exclusive_nodes(mut self, exclusive: bool) -> Self {
        self.exclusive_nodes = exclusive;
        self
    }

    /// The entry of a gang.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Keys and entries.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, e)| (k.as_str(), e))
    }

    /// Promises the placement to the gang (replacing an earlier promise under the same key).
    /// The caller then feeds pods that may already exist through [`Ledger::observe`].
    pub fn reserve(&mut self, demand: &GangDemand, placement: &Placement, now: Instant) {
        self.release(&demand.key);
        let slots = demand
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| Slot {
                role: p.role,
                requests: p.requests,
                node: placement.nodes.get(i).cloned().unwrap_or_default(),
                state: SlotState::Reserved,
            })
            .collect();
        let entry = Entry {
            namespace: demand.namespace.clone(),
            selector: demand.pod_labels.clone(),
            slots,
            expires_at: now + self.ttl,
        };
        self.totals.add(&entry);
        self.by_expiry
            .insert((entry.expires_at, demand.key.clone()));
        self.index
            .insert(&entry.namespace, &entry.selector, &demand.key);
        self.entries.insert(demand.key.clone(), entry);
    }

    /// Drops a promise; `true` when there was one.
    pub fn release(&mut self, key: &str) -> bool {
        let Some(entry) = self.entries.remove(key) else {
            return false;
        };
        self.totals.remove(&entry);
        self.by_expiry.remove(&(entry.expires_at, key.to_string()));
        self.index.remove(&entry.namespace, &entry.selector, key);
        for pod in self.pods_of.remove(key).unwrap_or_default() {
            self.by_pod.remove(&pod);
        }
        true
    }

    /// Drops promises whose TTL has passed; returns their keys.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .by_expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, k)| k.clone())
            .collect();
        for key in &expired {
            self.release(key);
        }
        expired
    }

    /// A pod was added or changed: convert its share of a matching reservation. Returns `true`
    /// when the ledger changed.
    pub fn observe(&mut self, pod: &ObservedPod<'_>) -> bool {
        let target = if pod.bound || !pod.active {
            SlotState::Bound
        } else {
            SlotState::Created
        };
        if let Some((key, slot)) = self.by_pod.get(pod.id).cloned() {
            if !self.entries.contains_key(&key) {
                self.by_pod.remove(pod.id);
                return false;
            }
            let changed = self.set_state(&key, slot, target);
            if changed {
                self.drop_if_converted(&key);
            }
            return changed;
        }
        if !pod.active {
            // A finished pod (an earlier attempt's, say) never converts a fresh promise.
            return false;
        }
        let Some((key, slot)) = self.match_slot(pod) else {
            return false;
        };
        self.set_state(&key, slot, target);
        self.by_pod.insert(pod.id.to_string(), (key.clone(), slot));
        self.pods_of
            .entry(key.clone())
            .or_default()
            .push(pod.id.to_string());
        self.drop_if_converted(&key);
        true
    }

    /// A pod was deleted: an unbound pod's slot is promised again (Spark may recreate it).
    pub fn forget(&mut self, pod_id: &str) -> bool {
        let Some((key, slot)) = self.by_pod.remove(pod_id) else {
            return false;
        };
        if let Some(pods) = self.pods_of.get_mut(&key) {
            pods.retain(|p| p != pod_id);
        }
        let created = self
            .entries
            .get(&key)
            .and_then(|e| e.slots.get(slot))
            .is_some_and(|s| s.state == SlotState::Created);
        created && self.set_state(&key, slot, SlotState::Reserved)
    }

    /// Moves a slot to `state`, keeping the totals; `true` when it changed.
    fn set_state(&mut self, key: &str, slot: usize, state: SlotState) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        if entry.slots.get(slot).is_none_or(|s| s.state == state) {
            return false;
        }
        self.totals.remove(entry);
        entry.slots[slot].state = state;
        self.totals.add(entry);
        true
    }

    /// The reserved slot this new pod takes: same role and shape, else same role, else same
    /// shape, else any.
    fn match_slot(&self, pod: &ObservedPod<'_>) -> Option<(String, usize)> {
        // Only entries of the pod's namespace with a non-empty selector are filed.
        for key in self.index.candidates(pod.namespace, pod.labels) {
            let Some(entry) = self.entries.get(key) else {
                continue;
            };
            if !selector_matches(&entry.selector, pod.labels) {
                continue;
            }
            let free = || {
                entry
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.state == SlotState::Reserved)
            };
            let role_ok = |s: &Slot| pod.role.is_none_or(|r| r == s.role);
            let pick = free()
                .find(|(_, s)| role_ok(s) && s.requests == pod.requests)
                .or_else(|| free().find(|(_, s)| role_ok(s)))
                .or_else(|| free().find(|(_, s)| s.requests == pod.requests))
                .or_else(|| free().next());
            if let Some((i, _)) = pick {
                return Some((key.to_owned(), i));
            }
        }
        None
    }

    fn drop_if_converted(&mut self, key: &str) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.slots.iter().all(|s| s.state == SlotState::Bound))
        {
            self.release(key);
        }
    }

    /// When the first live promise lapses: a view built now holds until then (or until the
    /// ledger changes).
    pub fn next_expiry(&self, now: Instant) -> Option<Instant> {
        self.by_expiry
            .iter()
            .map(|(at, _)| *at)
            .find(|at| *at > now)
    }

    /// Whether some promise has lapsed and is still kept (for [`Ledger::expire`]).
    pub fn any_lapsed(&self, now: Instant) -> bool {
        self.by_expiry.first().is_some_and(|(at, _)| *at <= now)
    }

    /// Live (unexpired) entries.
    fn live(&self, now: Instant) -> impl Iterator<Item = (&String, &Entry)> {
        self.entries.iter().filter(move |(_, e)| e.expires_at > now)
    }

    /// Whether some live promise exists.
    pub fn any_live(&self, now: Instant) -> bool {
        self.by_expiry.last().is_some_and(|(at, _)| *at > now)
    }

    /// `f` over the totals of the live entries: the kept ones, unless a lapsed entry still
    /// waits for [`Ledger::expire`] (then computed afresh without it).
    fn with_totals<R>(&self, now: Instant, f: impl FnOnce(&Totals) -> R) -> R {
        if self.any_lapsed(now) {
            f(&Totals::of(self.live(now).map(|(_, e)| e)))
        } else {
            f(&self.totals)
        }
    }

    /// Per node, what is promised there and not yet carried by a bound pod.
    pub fn node_reservations(&self, now: Instant) -> BTreeMap<String, Resources> {
        self.with_totals(now, |t| {
            t.nodes
                .iter()
                .map(|(node, (_, r))| (node.clone(), *r))
                .collect()
        })
    }

    /// Per namespace, what is promised and not yet carried by an existing pod.
    pub fn namespace_reservations(&self, now: Instant) -> BTreeMap<String, Resources> {
        self.with_totals(now, |t| {
            t.namespaces
                .iter()
                .map(|(ns, (_, r))| (ns.clone(), *r))
                .collect()
        })
    }

    /// The first gang holding room on a node the predicate accepts (for "reserved for X").
    pub fn holder_on(&self, now: Instant, mut node: impl FnMut(&str) -> bool) -> Option<&str> {
        self.live(now)
            .find(|(_, e)| {
                e.slots
                    .iter()
                    .any(|s| s.state != SlotState::Bound && node(&s.node))
            })
            .map(|(k, _)| k.as_str())
    }

    /// The first gang holding quota in a namespace.
    pub fn holder_in(&self, now: Instant, namespace: &str) -> Option<&str> {
        self.live(now)
            .find(|(_, e)| {
                e.namespace == namespace && e.slots.iter().any(|s| s.state == SlotState::Reserved)
            })
            .map(|(k, _)| k.as_str())
    }

    /// Takes every live reservation off a working set (nodes and quotas).
    ///
    /// `strict` (for a gang that [`spreads`](Ledger::spreads)): every existing node with pods
    /// on the way counts as full, not only the nodes of spreading gangs.
    pub fn apply(&self, ws: &mut WorkingSet<'_>, now: Instant, strict: bool) {
        const EVERYTHING: Resources = Resources {
            cpu_millis: u64::MAX,
            memory_bytes: u64::MAX,
            pods: u64::MAX,
        };
        self.with_totals(now, |t| {
            let exclusive = |node: &str| self.exclusive_in(t, node, strict);
            for (node, (_, amount)) in &t.nodes {
                if !exclusive(node) {
                    ws.take_reserved(node, amount);
                }
            }
            for node in t.placed.keys().filter(|n| exclusive(n)) {
                ws.take_reserved(node, &EVERYTHING);
            }
            for (ns, (_, amount)) in &t.namespaces {
                ws.charge_quota(ns, amount);
            }
        });
    }

    /// Whether the node counts as full (see [`Ledger::exclusive`]).
    fn exclusive_in(&self, t: &Totals, node: &str, strict: bool) -> bool {
        self.exclusive_nodes
            && t.placed
                .get(node)
                .is_some_and(|(all, spreading)| if strict { *all > 0 } else { *spreading > 0 })
    }

    /// With exclusive nodes: every existing node in the placement of a spreading gang (any gang
    /// when `strict`) that still has pods on the way. The whole placement, not just nodes with
    /// open slots: the scheduler spreads the gang's executors over it as it likes, so the last
    /// one may need any of them.
    fn exclusive(&self, now: Instant, strict: bool) -> BTreeSet<String> {
        self.with_totals(now, |t| {
            t.placed
                .keys()
                .filter(|n| self.exclusive_in(t, n, strict))
                .cloned()
                .collect()
        })
    }

    /// Counts every live reservation as requested in a view: on existing nodes (exclusive ones
    /// as full), on nodes a pool is expected to add (listed as nodes named `"<pool>/+<n>"`, the
    /// pool's `current` raised accordingly), and in namespace quotas.
    pub fn apply_to_view(&self, view: &mut ClusterView, now: Instant) {
        let mut expected: Vec<NodeView> = Vec::new();
        for (node, amount) in self.node_reservations(now) {
            if let Ok(i) = view.nodes.binary_search_by(|n| n.name.as_str().cmp(&node)) {
                view.nodes[i].requested = view.nodes[i].requested.saturating_add(&amount);
                continue;
            }
            let Some((pool, _)) = parse_virtual_node(&node) else {
                continue;
            };
            let Some(p) = view.pools.iter_mut().find(|p| p.name == pool) else {
                continue;
            };
            p.current = p.current.saturating_add(1);
            expected.push(NodeView {
                name: node.clone(),
                pool: Some(p.name.clone()),
                labels: p.labels.clone(),
                taints: p.taints.clone(),
                unschedulable: false,
                allocatable: p.allocatable,
                requested: amount,
            });
        }
        for node in self.exclusive(now, false) {
            if let Ok(i) = view.nodes.binary_search_by(|n| n.name.as_str().cmp(&node)) {
                let n = &mut view.nodes[i];
                n.requested = Resources {
                    cpu_millis: n.requested.cpu_millis.max(n.allocatable.cpu_millis),
                    memory_bytes: n.requested.memory_bytes.max(n.allocatable.memory_bytes),
                    pods: n.requested.pods.max(n.allocatable.pods),
                };
            }
        }
        if !expected.is_empty() {
            view.nodes.extend(expected);
            view.nodes.sort_by(|a, b| a.name.cmp(&b.name));
        }
        for (ns, amount) in self.namespace_reservations(now) {
            if let Some(q) = view.quotas.get_mut(&ns) {
                q.used = q.used.saturating_add(&amount);
            }
        }
    }

    /// Whether a gang placed so would spread its executors (see the module docs): only then
    /// does it need nodes without pods on the way. Always false without exclusive nodes.
    pub fn spreads(&self, gang: &GangDemand, placement: &Placement) -> bool {
        self.exclusive_nodes
            && spreads(
                gang.pods
                    .iter()
                    .zip(&placement.nodes)
                    .map(|(p, n)| (p.role, n.as_str())),
            )
    }

    /// Totals for metrics.
    pub fn stats(&self, now: Instant) -> LedgerStats {
        let mut stats = LedgerStats::default();
        for (_, e) in self.live(now) {
            stats.entries += 1;
            for s in e.slots.iter().filter(|s| s.state != SlotState::Bound) {
                stats.open_slots += 1;
                stats.reserved = stats.reserved.saturating_add(&s.requests);
            }
        }
        stats
    }
}

/// Whether pods `(role, planned node)` may take more than planned on some node: executors
/// pinned to more than one node, or any pod on a node a pool has yet to add (not pinned).
fn spreads<'a>(pods: impl Iterator<Item = (PodRole, &'a str)>) -> bool {
    let mut executor_node = None;
    for (role, node) in pods {
        if parse_virtual_node(node).is_some() {
            return true;
        }
        if role == PodRole::Executor {
            match executor_node {
                None => executor_node = Some(node),
                Some(n) if n != node => return true,
                Some(_) => {}
            }
        }
    }
    false
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
