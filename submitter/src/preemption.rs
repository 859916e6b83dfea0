//! Preemption (DESIGN "Ordering and fairness", rule 5): which running applications a waiting
//! job of higher priority (or a promoted one) may take room from, and which of them to stop —
//! a pure function of the cluster view, the running applications and the policy.
//!
//! The choice goes by the bin packer, not by sums: a victim set is good only if
//! [`capacity::decide`] places the whole gang on the view with the victims' pods removed. Of
//! the sets that work, the one with the fewest victims wins, then the least elapsed runtime
//! (the work a restart loses); a chosen set is always minimal — no victim can be left out and
//! the gang still fit ("never more than needed"). Exhaustive search is exponential, so the
//! candidates are: every single victim alone, and two greedy fills (least elapsed first,
//! largest first) each pruned to minimal.
//!
//! Guards, each a reason an application is not a victim ([`Ineligible`]): scope (same
//! namespace; lower priority anywhere; or, with `fair-share`, also equal priority in a
//! namespace above its dominant-resource share when the preemptor's is below its own), a
//! minimum runtime, and a most-times any one job may be preempted. A normal job promoted to
//! the high level by its wait may stop only normal applications enqueued **after** it — the
//! ones that overtook it (backfill) — never the ones that were simply ahead of it in line:
//! on a saturated cluster every normal job is eventually promoted, and letting each stop the
//! others only restarts work and delays everyone (the saturated replay showed it: 164
//! preemptions for 148 jobs, high jobs waiting longer than without preemption). A gang that would not fit
//! even with every eligible victim gone preempts nobody ([`Refusal::WouldNotFit`]).

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use capacity::{ClusterView, GangDemand, Placement, Resources, Verdict};
use chrono::{DateTime, Utc};
use jobs::duration::JobDuration;
use jobs::{JobId, Priority};
use serde::Deserialize;

use crate::ordering::dominant_share;

/// `[submitter.preemption]`: off unless `enabled`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreemptionConfig {
    /// Whether waiting jobs may preempt running applications at all.
    #[serde(default)]
    pub enabled: bool,
    /// Which applications a waiting job may preempt (see [`Scope`]).
    #[serde(default)]
    pub scope: Scope,
    /// An application younger than this is never preempted (its driver is still starting;
    /// stopping it wastes the start and can thrash).
    #[serde(default = "defaults::min_runtime")]
    pub min_runtime: JobDuration,
    /// A job preempted this many times is not preempted again (it would otherwise starve).
    #[serde(default = "defaults::max_per_job")]
    pub max_per_job: u32,
    /// Most waiting jobs that preempt in one admission round (bounds the deletes per round).
    #[serde(default = "defaults::max_per_round")]
    pub max_per_round: usize,
    /// How long room freed for a preemptor stays held for it if its pods are not bound by
    /// then (a victim that does not go away, a preemptor cancelled meanwhile).
    #[serde(default = "defaults::hold_for")]
    pub hold_for: JobDuration,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            scope: Scope::default(),
            min_runtime: defaults::min_runtime(),
            max_per_job: defaults::max_per_job(),
            max_per_round: defaults::max_per_round(),
            hold_for: defaults::hold_for(),
        }
    }
}

impl PreemptionConfig {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if self.min_runtime.0 > Duration::from_secs(7 * 24 * 3600) {
            problems.push("submitter.preemption.min_runtime: must be at most 7d".to_owned());
        }
        if !(1..=100).contains(&self.max_per_job) {
            problems.push("submitter.preemption.max_per_job: must be between 1 and 100".to_owned());
        }
        if !(1..=100).contains(&self.max_per_round) {
            problems
                .push("submitter.preemption.max_per_round: must be between 1 and 100".to_owned());
        }
        if self.hold_for.0 < Duration::from_secs(1) || self.hold_for.0 > Duration::from_secs(3600) {
            problems.push("submitter.preemption.hold_for: must be between 1s and 1h".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Which applications a waiting job may preempt. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Lower-priority applications of the preemptor's own namespace only.
    #[default]
    Namespace,
    /// Lower-priority applications in any namespace.
    Priority,
    /// As `priority`, and also applications of equal priority in a namespace above its fair
    /// (dominant-resource) share, for a preemptor whose namespace is below its own.
    FairShare,
}

mod defaults {
    use std::time::Duration;

    use jobs::duration::JobDuration;

    pub fn min_runtime() -> JobDuration {
        JobDuration(Duration::from_secs(120))
    }
    pub fn max_per_job() -> u32 {
        2
    }
    pub fn max_per_round() -> usize {
        1
    }
    pub fn hold_for() -> JobDuration {
        JobDuration(Duration::from_secs(600))
    }
}

/// A running application as preemption sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningApp {
    /// Its job.
    pub job: JobId,
    /// Its SparkApplication's name (for events and "why it waits").
    pub app: String,
    /// Namespace.
    pub namespace: String,
    /// The job's priority.
    pub priority: Priority,
    /// When its job was taken in.
    pub enqueued_at: DateTime<Utc>,
    /// When its current attempt was admitted.
    pub started_at: DateTime<Utc>,
    /// How often the job was preempted already.
    pub preemptions: u32,
    /// Its pods' requests by node name (what deleting it frees).
    pub pods: Vec<(String, Resources)>,
}

impl RunningApp {
    /// Cpu-seconds a restart loses: elapsed runtime × the cpu it holds.
    pub fn lost_work(&self, now: DateTime<Utc>) -> f64 {
        let cpu: u64 = self.pods.iter().map(|(_, r)| r.cpu_millis).sum();
        elapsed(now, self.started_at).as_secs_f64() * cpu as f64 / 1000.0
    }
}

fn elapsed(now: DateTime<Utc>, since: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or_default()
}

/// The waiting job that wants room.
#[derive(Debug, Clone, Copy)]
pub struct Preemptor<'a> {
    /// Its job.
    pub job: JobId,
    /// Its level this round: `High` for a high job or a promoted normal one.
    pub level: Priority,
    /// Its own priority (below `level` when promoted).
    pub priority: Priority,
    /// When it was taken in.
    pub enqueued_at: DateTime<Utc>,
    /// What it needs (its namespace is `gang.namespace`).
    pub gang: &'a GangDemand,
}

/// Each namespace's running usage and entitlement (for the `fair-share` scope).
#[derive(Debug, Clone, Default)]
pub struct Shares<'a> {
    /// Running usage per namespace.
    pub usage: Option<&'a BTreeMap<String, Resources>>,
    /// Entitlement per namespace ([`crate::ordering::entitlements`]).
    pub entitlements: Option<&'a BTreeMap<String, Resources>>,
}

impl Shares<'_> {
    fn share(&self, namespace: &str) -> f64 {
        let (Some(usage), Some(entitled)) = (self.usage, self.entitlements) else {
            return 0.0;
        };
        dominant_share(
            &usage.get(namespace).copied().unwrap_or_default(),
            &entitled.get(namespace).copied().unwrap_or_default(),
        )
    }
}

/// Why an application is not a victim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ineligible {
    /// Not of lower priority (and no fair-share reclaim applies).
    NotLower,
    /// Another namespace, with scope `namespace`.
    OtherNamespace,
    /// Younger than `min_runtime`.
    TooYoung,
    /// Preempted `max_per_job` times already.
    PreemptedEnough,
    /// It is the preemptor itself (a stale running record).
    Itself,
}

/// Why a victim was chosen (the metric's `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// The preemptor's priority is above the victim's.
    Priority,
    /// The preemptor was promoted by its wait and the victim, of its own priority, was
    /// enqueued after it (it overtook the preemptor).
    Promoted,
    /// The victim's namespace is above its fair share, the preemptor's below.
    FairShare,
}

impl Cause {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Priority => "priority",
            Cause::Promoted => "promoted",
            Cause::FairShare => "fair-share",
        }
    }
}

/// Whether `app` may be preempted for `preemptor`, and why.
pub fn eligible(
    now: DateTime<Utc>,
    preemptor: &Preemptor<'_>,
    app: &RunningApp,
    config: &PreemptionConfig,
    shares: &Shares<'_>,
) -> Result<Cause, Ineligible> {
    if app.job == preemptor.job {
        return Err(Ineligible::Itself);
    }
    let namespace = &preemptor.gang.namespace;
    if config.scope == Scope::Namespace && app.namespace != *namespace {
        return Err(Ineligible::OtherNamespace);
    }
    // `Priority` orders High before Normal.
    let cause = if preemptor.priority < app.priority {
        Cause::Priority
    } else if preemptor.level < app.priority && app.enqueued_at > preemptor.enqueued_at {
        Cause::Promoted
    } else if config.scope == Scope::FairShare
        && preemptor.level == app.priority
        && app.namespace != *namespace
        && shares.share(&app.namespace) > 1.0
        && shares.share(namespace) < 1.0
    {
        Cause::FairShare
    } else {
        return Err(Ineligible::NotLower);
    };
    if elapsed(now, app.started_at) < config.min_runtime.0 {
        return Err(Ineligible::TooYoung);
    }
    if app.preemptions >= config.max_per_job {
        return Err(Ineligible::PreemptedEnough);
    }
    Ok(cause)
}

/// Why nobody is preempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Preemption is off.
    Disabled,
    /// The gang fits without preempting anyone.
    FitsAlready,
    /// No running application passes the guards.
    NoVictims,
    /// Even with every eligible application gone, the gang would not fit (the sentence says
    /// why).
    WouldNotFit(String),
}

/// The applications to stop, and where the preemptor will go once they are gone.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// Victims with the reason each was chosen, in `running`'s order.
    pub victims: Vec<(JobId, Cause)>,
    /// The preemptor's placement on the freed view.
    pub placement: Placement,
    /// Cpu-seconds the victims' restarts lose.
    pub lost_work: f64,
}

/// Chooses the victims for one preemptor (see the module docs), or says why none.
pub fn choose(
    now: DateTime<Utc>,
    view: &ClusterView,
    preemptor: &Preemptor<'_>,
    running: &[RunningApp],
    config: &PreemptionConfig,
    shares: &Shares<'_>,
) -> Result<Choice, Refusal> {
    if !config.enabled {
        return Err(Refusal::Disabled);
    }
    let mut scratch = Scratch::new(view);
    if scratch.fits(preemptor.gang, &[], running).is_some() {
        return Err(Refusal::FitsAlready);
    }
    let candidates: Vec<(usize, Cause)> = running
        .iter()
        .enumerate()
        .filter_map(|(i, app)| {
            eligible(now, preemptor, app, config, shares)
                .ok()
                .map(|c| (i, c))
        })
        .collect();
    if candidates.is_empty() {
        return Err(Refusal::NoVictims);
    }
    let all: Vec<usize> = candidates.iter().map(|(i, _)| *i).collect();
    if scratch.fits(preemptor.gang, &all, running).is_none() {
        let mut freed = view.clone();
        Scratch::apply(&mut freed, &all, running, false);
        let why = match capacity::decide(&freed, preemptor.gang) {
            Verdict::Wait(w) => w.message,
            Verdict::Never(n) => n.message,
            Verdict::Fits(_) => String::new(),
        };
        return Err(Refusal::WouldNotFit(why));
    }

    let cost = |set: &[usize]| {
        let runtime: Duration = set
            .iter()
            .map(|&i| elapsed(now, running[i].started_at))
            .sum();
        (set.len(), runtime)
    };
    let mut options: Vec<Vec<usize>> = all
        .iter()
        .filter(|&&i| scratch.fits(preemptor.gang, &[i], running).is_some())
        .map(|&i| vec![i])
        .collect();
    let mut youngest = all.clone();
    youngest.sort_by_key(|&i| (Reverse(running[i].started_at), running[i].job));
    let mut largest = all.clone();
    largest.sort_by_key(|&i| {
        let freed = running[i]
            .pods
            .iter()
            .fold(Resources::default(), |acc, (_, r)| acc.saturating_add(r));
        (
            Reverse(freed.cpu_millis),
            Reverse(freed.memory_bytes),
            running[i].job,
        )
    });
    for order in [youngest, largest] {
        if let Some(set) = scratch.greedy(preemptor.gang, &order, running, now) {
            options.push(set);
        }
    }
    let best = options
        .into_iter()
        .min_by_key(|set| {
            let mut ids: Vec<JobId> = set.iter().map(|&i| running[i].job).collect();
            ids.sort();
            (cost(set), ids)
        })
        .ok_or_else(|| Refusal::WouldNotFit(String::new()))?;
    let placement = scratch
        .fits(preemptor.gang, &best, running)
        .ok_or_else(|| Refusal::WouldNotFit(String::new()))?;
    let causes: HashMap<usize, Cause> = candidates.into_iter().collect();
    let mut chosen = best;
    chosen.sort_unstable();
    Ok(Choice {
        lost_work: chosen.iter().map(|&i| running[i].lost_work(now)).sum(),
        victims: chosen
            .iter()
            .map(|&i| (running[i].job, causes[&i]))
            .collect(),
        placement,
    })
}

/// A copy of the view that victims' pods are taken off and put back on.
struct Scratch {
    view: ClusterView,
}

impl Scratch {
    fn new(view: &ClusterView) -> Self {
        Self { view: view.clone() }
    }

    /// Removes (`restore` false) or puts back (`true`) the pods of `set` on `view`'s nodes and
    /// in their namespaces' quota usage.
    fn apply(view: &mut ClusterView, set: &[usize], running: &[RunningApp], restore: bool) {
        for &i in set {
            let app = &running[i];
            for (node, r) in &app.pods {
                if let Ok(n) = view.nodes.binary_search_by(|x| x.name.as_str().cmp(node)) {
                    let requested = &mut view.nodes[n].requested;
                    *requested = if restore {
                        requested.saturating_add(r)
                    } else {
                        requested.saturating_sub(r)
                    };
                }
                if let Some(q) = view.quotas.get_mut(&app.namespace) {
                    q.used = if restore {
                        q.used.saturating_add(r)
                    } else {
                        q.used.saturating_sub(r)
                    };
                }
            }
        }
    }

    /// The gang's placement with `set` gone, if it fits; the view is left as it was.
    fn fits(
        &mut self,
        gang: &GangDemand,
        set: &[usize],
        running: &[RunningApp],
    ) -> Option<Placement> {
        Self::apply(&mut self.view, set, running, false);
        let verdict = capacity::decide(&self.view, gang);
        Self::apply(&mut self.view, set, running, true);
        match verdict {
            Verdict::Fits(p) => Some(p),
            _ => None,
        }
    }

    /// Adds victims in `order` until the gang fits, then drops every one it can do without
    /// (longest-running first), so the set is minimal.
    fn greedy(
        &mut self,
        gang: &GangDemand,
        order: &[usize],
        running: &[RunningApp],
        now: DateTime<Utc>,
    ) -> Option<Vec<usize>> {
        let mut set = Vec::new();
        for &i in order {
            set.push(i);
            if self.fits(gang, &set, running).is_some() {
                break;
            }
        }
        self.fits(gang, &set, running)?;
        let mut by_runtime = set.clone();
        by_runtime.sort_by_key(|&i| Reverse(elapsed(now, running[i].started_at)));
        for i in by_runtime {
            let without: Vec<usize> = set.iter().copied().filter(|&j| j != i).collect();
            if self.fits(gang, &without, running).is_some() {
                set = without;
            }
        }
        Some(set)
    }
}

#[cfg(test)]
#[path = "preemption_tests.rs"]
mod tests;
