//! Start-time estimates (DESIGN "Ordering and fairness", rule 6): when will each waiting job
//! start? The queue is replayed forward over the current cluster view — running applications
//! end after the runtime learned from history, and at each step [`ordering::decide`] runs
//! over a fresh [`ClusterRoom`] exactly as an admission round would (priority, fair shares,
//! FIFO, holds and backfill). There is no second model of the scheduler: what the estimate
//! assumes is what the submitter does, and only the runtimes are guesses.
//!
//! Runtimes ([`Runtimes`]): the median of the same job name's finished runs in the namespace,
//! else the namespace's median, else a configured default. [`live`] runs it in the admission
//! round and stores the results for the API.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use capacity::{ClusterView, NodeView, Resources};
use chrono::{DateTime, Utc};
use jobs::JobId;

use crate::ordering::{self, Candidate, Decision, Policy};
use crate::room::ClusterRoom;

pub mod live;

/// Expected runtimes learned from finished runs.
#[derive(Debug, Clone, Default)]
pub struct Runtimes {
    by_name: HashMap<(String, String), Duration>,
    by_namespace: HashMap<String, Duration>,
    default: Duration,
}

impl Runtimes {
    /// Medians of `(namespace, job name, runtime)` samples; `default` for namespaces with none.
    pub fn from_history(
        samples: impl IntoIterator<Item = (String, String, Duration)>,
        default: Duration,
    ) -> Self {
        let mut by_name: HashMap<(String, String), Vec<Duration>> = HashMap::new();
        let mut by_namespace: HashMap<String, Vec<Duration>> = HashMap::new();
        for (ns, name, d) in samples {
            by_namespace.entry(ns.clone()).or_default().push(d);
            by_name.entry((ns, name)).or_default().push(d);
        }
        Self {
            by_name: by_name.into_iter().map(|(k, v)| (k, median(v))).collect(),
            by_namespace: by_namespace
                .into_iter()
                .map(|(k, v)| (k, median(v)))
                .collect(),
            default,
        }
    }

    /// The expected runtime of job `name` in `namespace`.
    pub fn expect(&self, namespace: &str, name: &str) -> Duration {
        self.by_name
            .get(&(namespace.to_owned(), name.to_owned()))
            .or_else(|| self.by_namespace.get(namespace))
            .copied()
            .unwrap_or(self.default)
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

/// A running application: where its pods are and when it is expected to end.
#[derive(Debug, Clone)]
pub struct Running {
    /// Namespace (its usage counts against the namespace's share until it ends).
    pub namespace: String,
    /// Requests by node name.
    pub pods: Vec<(String, Resources)>,
    /// Expected end (`started + expected runtime`; at least now).
    pub ends_at: DateTime<Utc>,
}

/// A waiting job and its expected runtime once started.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The candidate as the admission round sees it.
    pub candidate: Candidate,
    /// How long it will run.
    pub runtime: Duration,
}

/// Most simulated steps (admission rounds plus completions): bounds the work per estimate.
const MAX_STEPS: usize = 20_000;

/// The estimated start of every waiting job the replay gets to start; a job missing from the
/// result never starts in the replay (it can never fit, or the replay hit its step bound).
#[allow(clippy::too_many_arguments)]
pub fn estimate(
    now: DateTime<Utc>,
    view: &ClusterView,
    running: Vec<Running>,
    waiting: Vec<Waiting>,
    usage: &BTreeMap<String, Resources>,
    entitlements: &BTreeMap<String, Resources>,
    policy: &Policy,
) -> BTreeMap<JobId, DateTime<Utc>> {
    let mut view = view.clone();
    let mut usage = usage.clone();
    let mut running = running;
    let mut waiting: BTreeMap<JobId, Waiting> =
        waiting.into_iter().map(|w| (w.candidate.id, w)).collect();
    let mut starts = BTreeMap::new();
    let mut t = now;
    for _ in 0..MAX_STEPS {
        if waiting.is_empty() {
            break;
        }
        let candidates: Vec<Candidate> = waiting.values().map(|w| w.candidate.clone()).collect();
        let decisions = {
            let mut room = ClusterRoom::new(&view);
            ordering::decide(t, candidates, &usage, entitlements, policy, &mut room)
        };
        let mut admitted = false;
        for d in decisions {
            match d {
                Decision::Admit { id, placement } => {
                    let Some(w) = waiting.remove(&id) else {
                        continue;
                    };
                    admitted = true;
                    starts.insert(id, t);
                    let pods: Vec<(String, Resources)> = placement
                        .nodes
                        .iter()
                        .cloned()
                        .zip(w.candidate.gang.pods.iter().map(|p| p.requests))
                        .collect();
                    for (node, r) in &pods {
                        take(&mut view, node, r);
                    }
                    let total = w.candidate.gang.total();
                    let used = usage.entry(w.candidate.namespace.clone()).or_default();
                    *used = used.saturating_add(&total);
                    charge_quota(&mut view, &w.candidate.namespace, &total, true);
                    running.push(Running {
                        namespace: w.candidate.namespace,
                        pods,
                        ends_at: t + chrono::Duration::from_std(w.runtime)
                            .unwrap_or(chrono::Duration::MAX),
                    });
                }
                Decision::Never { id, .. } => {
                    waiting.remove(&id);
                }
                Decision::Wait { .. } => {}
            }
        }
        if admitted {
            // The room changed: decide again at the same instant (as the next round would).
            continue;
        }
        // Nothing starts now: jump to the next completion and free what it held.
        let Some(next) = running.iter().map(|r| r.ends_at).min() else {
            break;
        };
        t = t.max(next);
        let (done, still): (Vec<Running>, Vec<Running>) =
            running.into_iter().partition(|r| r.ends_at <= t);
        running = still;
        for r in done {
            let mut total = Resources::default();
            for (node, req) in &r.pods {
                give(&mut view, node, req);
                total = total.saturating_add(req);
            }
            if let Some(used) = usage.get_mut(&r.namespace) {
                *used = used.saturating_sub(&total);
            }
            charge_quota(&mut view, &r.namespace, &total, false);
        }
    }
    starts
}

fn charge_quota(view: &mut ClusterView, namespace: &str, amount: &Resources, add: bool) {
    if let Some(q) = view.quotas.get_mut(namespace) {
        q.used = if add {
            q.used.saturating_add(amount)
        } else {
            q.used.saturating_sub(amount)
        };
    }
}

/// Charges a node; a `"<pool>/+<n>"` node an autoscaling pool would add becomes a real node of
/// the simulated view (kept sorted by name, counted in the pool's `current`).
fn take(view: &mut ClusterView, node: &str, amount: &Resources) {
    let i = match view.nodes.binary_search_by(|n| n.name.as_str().cmp(node)) {
        Ok(i) => i,
        Err(i) => {
            let Some((pool, _)) = capacity::pack::parse_virtual_node(node) else {
                return;
            };
            let Some(p) = view.pools.iter_mut().find(|p| p.name == pool) else {
                return;
            };
            p.current += 1;
            let added = NodeView {
                name: node.to_owned(),
                pool: Some(p.name.clone()),
                labels: p.labels.clone(),
                taints: p.taints.clone(),
                unschedulable: false,
                allocatable: p.allocatable,
                requested: Resources::default(),
            };
            view.nodes.insert(i, added);
            i
        }
    };
    let n = &mut view.nodes[i];
    n.requested = n.requested.saturating_add(amount);
}

fn give(view: &mut ClusterView, node: &str, amount: &Resources) {
    if let Ok(i) = view.nodes.binary_search_by(|n| n.name.as_str().cmp(node)) {
        let n = &mut view.nodes[i];
        n.requested = n.requested.saturating_sub(amount);
    }
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;
