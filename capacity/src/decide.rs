//! The verdict for one gang over a working set, in the order that makes "never" exact:
//!
//! 1. **Never, shape**: a pod that no node — existing (cordoned or not) or addable by an
//!    autoscaling pool — matching its selector and tolerations could hold even empty
//!    ([`crate::fit::fits_ever`]).
//!    **Never, aggregate**: pods that each fit some node, but whose sum exceeds the allocatable
//!    of all the nodes they may use together (autoscaling pools counted at their maximum) —
//!    the whole eligible cluster, empty, could not hold the gang ([`aggregate_never`]).
//! 2. **Never, quota**: the gang's total exceeds its namespace quota's hard limit.
//! 3. **Wait, quota**: the total exceeds what the quota has left now (ledger included).
//! 4. **Wait, insufficient**: no gang placement on current free capacity ([`WorkingSet::pack`]).
//! 5. **Fits**, with the placement (and the scale-up it relies on); the working set is charged.
//!
//! The aggregate check counts every node the gang's pods may use, empty, plus every node the
//! pools may still add: a gang beyond that would otherwise wait forever (or until someone adds
//! nodes by hand, which then lets a requeued dead letter run).

use crate::fit::{fits_ever, fmt_amount, get, pool_matches, too_large};
use crate::model::{GangDemand, PodDemand, PodRole, Resources};
use crate::pack::WorkingSet;
use crate::verdict::{NeverKind, NeverReason, Resource, Verdict, WaitKind, WaitReason};
use crate::view::{ClusterView, QuotaView};

/// The verdict for one gang on a view (ledger reservations already counted in it).
pub fn decide(view: &ClusterView, gang: &GangDemand) -> Verdict {
    WorkingSet::new(view).admit(gang)
}

/// Where a gang stands against its namespace's quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaOutcome {
    /// Room enough (or no quota).
    Room,
    /// Over the hard limit on its own: never.
    ExceedsHard(NeverReason),
    /// Over what is left now: wait.
    Short(WaitReason),
}

/// Checks a gang total against a namespace quota (`None`: the namespace has none).
pub fn check_quota(namespace: &str, quota: Option<&QuotaView>, total: &Resources) -> QuotaOutcome {
    let Some(q) = quota else {
        return QuotaOutcome::Room;
    };
    let dims = [Resource::Cpu, Resource::Memory, Resource::Pods];
    if let Some(resource) = dims.into_iter().find(|&r| get(total, r) > get(&q.hard, r)) {
        return QuotaOutcome::ExceedsHard(NeverReason {
            kind: NeverKind::ExceedsQuota { resource },
            message: format!(
                "the gang needs {} {} in total, more than namespace {namespace}'s quota allows \
                 at all ({})",
                fmt_amount(resource, get(total, resource)),
                resource.as_str(),
                fmt_amount(resource, get(&q.hard, resource)),
            ),
        });
    }
    let left = q.hard.saturating_sub(&q.used);
    if let Some(resource) = dims.into_iter().find(|&r| get(total, r) > get(&left, r)) {
        let short_by = get(total, resource) - get(&left, resource);
        return QuotaOutcome::Short(WaitReason {
            kind: WaitKind::Quota { resource, short_by },
            message: format!(
                "namespace {namespace} quota {}: the gang needs {}, {} left of {} ({} in use or \
                 reserved)",
                resource.as_str(),
                fmt_amount(resource, get(total, resource)),
                fmt_amount(resource, get(&left, resource)),
                fmt_amount(resource, get(&q.hard, resource)),
                fmt_amount(resource, get(&q.used, resource)),
            ),
        });
    }
    QuotaOutcome::Room
}

impl WorkingSet<'_> {
    /// Never, quota, then packing (see the module docs); charges the working set on `Fits`.
    pub fn admit(&mut self, gang: &GangDemand) -> Verdict {
        self.verdict(gang, true)
    }

    /// The verdict [`WorkingSet::admit`] would give, leaving the working set as it was.
    pub fn probe_admit(&mut self, gang: &GangDemand) -> Verdict {
        self.verdict(gang, false)
    }

    fn verdict(&mut self, gang: &GangDemand, charge: bool) -> Verdict {
        if let Err(never) = self.never(gang) {
            return Verdict::Never(never);
        }
        let total = gang.total();
        match check_quota(&gang.namespace, self.quotas().get(&gang.namespace), &total) {
            QuotaOutcome::Room => {}
            QuotaOutcome::ExceedsHard(never) => return Verdict::Never(never),
            QuotaOutcome::Short(wait) => return Verdict::Wait(wait),
        }
        let packed = if charge {
            self.pack(gang)
        } else {
            self.probe(gang)
        };
        match packed {
            Ok(placement) => {
                if charge {
                    self.charge_quota(&gang.namespace, &total);
                }
                Verdict::Fits(placement)
            }
            Err(shortfall) => Verdict::Wait(shortfall.wait_reason()),
        }
    }

    /// The "never" checks alone: every pod's shape against every node that exists or can be
    /// added, then the quota hard limit, then the gang's sum against all its eligible nodes.
    pub fn never(&mut self, gang: &GangDemand) -> Result<(), NeverReason> {
        let mut previous: Option<&PodDemand> = None;
        for pod in &gang.pods {
            // Executors are identical: check each distinct shape once.
            if previous.is_some_and(|p| same_shape(p, pod)) {
                continue;
            }
            previous = Some(pod);
            self.fits_ever(pod)?;
        }
        if let QuotaOutcome::ExceedsHard(never) = check_quota(
            &gang.namespace,
            self.quotas().get(&gang.namespace),
            &gang.total(),
        ) {
            return Err(never);
        }
        // After the quota: a namespace's own limit is the more specific sentence.
        self.aggregate_never(gang)
    }

    /// [`fits_ever`] over this working set's nodes, using its eligibility cache.
    pub fn fits_ever(&mut self, pod: &PodDemand) -> Result<(), NeverReason> {
        let eligible = self.eligible(pod);
        let nodes = self.nodes();
        // Fast path: one eligible node or pool large enough.
        let big_enough = eligible
            .iter()
            .any(|&i| nodes[i as usize].allocatable.covers(&pod.requests))
            || self
                .pools()
                .iter()
                .any(|p| pool_matches(pod, p) && p.allocatable.covers(&pod.requests));
        if big_enough {
            return Ok(());
        }
        fits_ever(
            pod,
            eligible.iter().map(|&i| &nodes[i as usize]),
            self.pools(),
        )
    }
}

impl WorkingSet<'_> {
    /// "Never in aggregate": for each group of pods with one selector-and-tolerations shape,
    /// and for all pods together, the sum of requests against the sum of allocatable of the
    /// nodes they may use (cordoned included: they may come back) plus what matching pools
    /// may still add. Per-pod fit is checked before, so each pod alone fits somewhere.
    fn aggregate_never(&mut self, gang: &GangDemand) -> Result<(), NeverReason> {
        let mut groups: Vec<(&PodDemand, Resources, Vec<u32>)> = Vec::new();
        for pod in &gang.pods {
            match groups.iter_mut().find(|(p, _, _)| {
                p.node_selector == pod.node_selector && p.tolerations == pod.tolerations
            }) {
                Some((_, need, _)) => *need = need.saturating_add(&pod.requests),
                None => groups.push((pod, pod.requests, self.eligible(pod).to_vec())),
            }
        }
        let nodes = self.nodes();
        let pools = self.pools();
        let capacity = |pods: &[&PodDemand], eligible: &[u32]| {
            let existing = eligible.iter().fold(Resources::default(), |acc, &i| {
                acc.saturating_add(&nodes[i as usize].allocatable)
            });
            pools
                .iter()
                .filter(|p| pods.iter().any(|pod| pool_matches(pod, p)))
                .fold(existing, |acc, p| {
                    let addable = u64::from(p.max.saturating_sub(p.current));
                    acc.saturating_add(&Resources {
                        cpu_millis: p.allocatable.cpu_millis.saturating_mul(addable),
                        memory_bytes: p.allocatable.memory_bytes.saturating_mul(addable),
                        pods: p.allocatable.pods.saturating_mul(addable),
                    })
                })
        };
        let short = |need: &Resources, have: &Resources, what: &str| {
            let resource = too_large(need, have)?;
            let (n, h) = (get(need, resource), get(have, resource));
            Some(NeverReason {
                kind: NeverKind::ExceedsCluster { resource },
                message: format!(
                    "{what} need {} {} in total, {} more than all the nodes they may use \
                     together can ever hold ({} allocatable, autoscaling pools at their \
                     maximum)",
                    fmt_amount(resource, n),
                    resource.as_str(),
                    fmt_amount(resource, n - h),
                    fmt_amount(resource, h),
                ),
            })
        };
        for (pod, need, eligible) in &groups {
            let have = capacity(&[pod], eligible);
            let what = if groups.len() == 1 {
                "the gang's pods"
            } else {
                match pod.role {
                    PodRole::Driver => "the driver",
                    PodRole::Executor => "the executors",
                    PodRole::Other => "the pods",
                }
            };
            if let Some(never) = short(need, &have, what) {
                return Err(never);
            }
        }
        if groups.len() > 1 {
            let mut union: Vec<u32> = groups
                .iter()
                .flat_map(|(_, _, e)| e.iter().copied())
                .collect();
            union.sort_unstable();
            union.dedup();
            let pods: Vec<&PodDemand> = groups.iter().map(|(p, _, _)| *p).collect();
            let have = capacity(&pods, &union);
            if let Some(never) = short(&gang.total(), &have, "the gang's pods") {
                return Err(never);
            }
        }
        Ok(())
    }
}

/// Same requests, selector, tolerations and role: one fit check covers both.
fn same_shape(a: &PodDemand, b: &PodDemand) -> bool {
    a.role == b.role
        && a.requests == b.requests
        && a.node_selector == b.node_selector
        && a.tolerations == b.tolerations
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
