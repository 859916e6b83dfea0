//! Seeded trace generators. The same parameters and seed always give the same trace.
//!
//! - [`standard`]: a day's slice of a shared cluster — background Poisson arrivals of mixed
//!   sizes over ten namespaces (Zipf-weighted: a few teams submit most), two priorities,
//!   bursts (one team dumping dozens of jobs within a minute) and a nightly cron wave (every
//!   team's scheduled jobs firing in the same minute). Offered load is scaled to the cluster.
//! - [`seed002`]: the seed blog's pain, in order — a flood of trivial jobs fills the cluster,
//!   business-critical jobs keep arriving behind them, then a big backfill wave lands.
//! - [`deadlock`]: the smallest trace that deadlocks the Spark Operator alone (gangs of one
//!   node each, all at once, more drivers than the cluster has gangs' room).
//! - [`saturated`]: more work than the cluster holds, for hours — big gangs (20–60 executors),
//!   a fifth of them high priority, several namespaces: the high jobs can only start quickly
//!   if someone makes room (preemption), and the queues are long enough to test estimates.
//!
//! Sizes use the catalog node types of [`crate::cluster`]: `small` 1 cpu/4 GiB, `medium` 2/8,
//! `large` 4/16, `xlarge` 8/32, on nodes of 16 cpu/64 GiB.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::NODE_CPU;
use crate::trace::{DynamicAllocation, ExecutorShape, Outcome, PodShape, Priority, TraceJob};

/// Knobs of the standard trace.
#[derive(Debug, Clone)]
pub struct StandardParams {
    /// Random seed.
    pub seed: u64,
    /// Cluster nodes the load is scaled to.
    pub nodes: usize,
    /// Length of the submission window, simulated hours.
    pub hours: f64,
    /// Namespaces (`ns-00` …).
    pub namespaces: usize,
    /// Background offered load as a fraction of cluster cpu.
    pub load: f64,
    /// Share of background jobs that are high priority.
    pub high_share: f64,
    /// Number of bursts.
    pub bursts: usize,
    /// Jobs in the nightly cron wave per 100 nodes.
    pub cron_per_100_nodes: usize,
}

impl Default for StandardParams {
    fn default() -> Self {
        Self {
            seed: 1,
            nodes: 100,
            hours: 3.0,
            namespaces: 10,
            load: 0.75,
            high_share: 0.15,
            bursts: 3,
            cron_per_100_nodes: 120,
        }
    }
}

/// Job size classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Trivial,
    Medium,
    Big,
}

fn pod(node_type: &str) -> PodShape {
    PodShape {
        node_type: Some(node_type.to_owned()),
        cores: None,
        memory: None,
    }
}

fn executors(node_type: &str, count: u32, dynamic: bool) -> ExecutorShape {
    ExecutorShape {
        node_type: Some(node_type.to_owned()),
        cores: None,
        memory: None,
        instances: (!dynamic).then_some(count),
        dynamic_allocation: dynamic.then_some(DynamicAllocation {
            min_executors: count,
            max_executors: count * 2,
            initial_executors: Some(count),
        }),
    }
}

struct Gen {
    rng: StdRng,
    jobs: Vec<TraceJob>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            jobs: Vec::new(),
        }
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.rng.random_range(lo..hi)
    }

    fn count(&mut self, lo: u32, hi: u32) -> u32 {
        self.rng.random_range(lo..=hi)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Zipf-ish: namespace i weighs 1/(i+1).
    fn namespace(&mut self, n: usize) -> String {
        let total: f64 = (1..=n).map(|i| 1.0 / i as f64).sum();
        let mut x = self.uniform(0.0, total);
        for i in 0..n {
            x -= 1.0 / (i + 1) as f64;
            if x <= 0.0 {
                return ns(i);
            }
        }
        ns(n - 1)
    }

    fn class(&mut self) -> Class {
        let x = self.uniform(0.0, 1.0);
        if x < 0.45 {
            Class::Trivial
        } else if x < 0.85 {
            Class::Medium
        } else {
            Class::Big
        }
    }

    #[allow(clippy::too_many_arguments, reason = "a job line has this many parts")]
    fn push(
        &mut self,
        at: f64,
        tag: &str,
        namespace: String,
        priority: Priority,
        class: Class,
        failed_share: f64,
    ) {
        let (driver, executor, runtime) = match class {
            Class::Trivial => {
                let n = self.count(1, 4);
                (
                    pod("small"),
                    executors("small", n, false),
                    self.uniform(180.0, 900.0),
                )
            }
            Class::Medium => {
                let size = if self.chance(0.5) { "medium" } else { "large" };
                let n = self.count(2, 8);
                let dynamic = self.chance(0.2);
                (
                    pod("medium"),
                    executors(size, n, dynamic),
                    self.uniform(600.0, 2400.0),
                )
            }
            Class::Big => {
                let size = if self.chance(0.6) { "large" } else { "xlarge" };
                let n = self.count(4, 12);
                let dynamic = self.chance(0.2);
                (
                    pod("medium"),
                    executors(size, n, dynamic),
                    self.uniform(1200.0, 3600.0),
                )
            }
        };
        let outcome = if self.chance(failed_share) {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        };
        let index = self.jobs.len();
        self.jobs.push(TraceJob {
            at: (at * 10.0).round() / 10.0,
            name: format!("{tag}-{index:05}"),
            namespace,
            priority,
            driver,
            executor,
            runtime: runtime.round(),
            outcome,
            tag: Some(tag.to_owned()),
        });
    }

    fn finish(mut self) -> Vec<TraceJob> {
        self.jobs.sort_by(|a, b| a.at.total_cmp(&b.at));
        // Names carry creation order; make them follow submit order instead.
        for (i, j) in self.jobs.iter_mut().enumerate() {
            let tag = j.tag.clone().unwrap_or_default();
            j.name = format!("{tag}-{i:05}");
        }
        self.jobs
    }
}

/// Namespace name `ns-07`.
pub fn ns(i: usize) -> String {
    format!("ns-{i:02}")
}

/// Mean cpu·seconds of a background job (class mix of [`Gen::class`]), for load scaling.
fn mean_cpu_seconds() -> f64 {
    // trivial: 1 + 2.5×1 cpu for 540 s; medium: 2 + 5×3 for 1500 s; big: 2 + 8×5.6 for 2400 s.
    0.45 * 3.5 * 540.0 + 0.40 * 17.0 * 1500.0 + 0.15 * 46.8 * 2400.0
}

/// The standard trace (see the module docs).
pub fn standard(p: &StandardParams) -> Vec<TraceJob> {
    let mut g = Gen::new(p.seed);
    let span = p.hours.max(0.1) * 3600.0;
    let namespaces = p.namespaces.max(1);
    let cluster_cpu = (p.nodes * NODE_CPU as usize) as f64;
    let rate = p.load * cluster_cpu / mean_cpu_seconds();
    // Background: Poisson arrivals.
    let mut t = 0.0;
    loop {
        let u: f64 = g.uniform(f64::MIN_POSITIVE, 1.0);
        t += -u.ln() / rate;
        if t >= span {
            break;
        }
        let class = g.class();
        let priority = if class != Class::Big && g.chance(p.high_share / 0.85) {
            Priority::High
        } else {
            Priority::Normal
        };
        let namespace = g.namespace(namespaces);
        g.push(t, "bg", namespace, priority, class, 0.03);
    }
    // Bursts: one team, dozens of jobs within a minute.
    for _ in 0..p.bursts {
        let start = g.uniform(0.1, 0.5) * span;
        let namespace = g.namespace(namespaces);
        let n = g.count(30, 50);
        for _ in 0..n {
            let at = start + g.uniform(0.0, 60.0);
            let class = if g.chance(0.7) {
                Class::Trivial
            } else {
                Class::Medium
            };
            g.push(
                at,
                "burst",
                namespace.clone(),
                Priority::Normal,
                class,
                0.03,
            );
        }
    }
    // The nightly cron wave: every namespace's schedules fire at 00:00 (+ jitter).
    let wave_at = 0.6 * span;
    let n = p.cron_per_100_nodes * p.nodes / 100;
    for i in 0..n {
        let at = wave_at + g.uniform(0.0, 90.0);
        let class = if g.chance(0.6) {
            Class::Medium
        } else {
            Class::Big
        };
        let priority = if class == Class::Medium && g.chance(0.1) {
            Priority::High
        } else {
            Priority::Normal
        };
        g.push(at, "cron", ns(i % namespaces), priority, class, 0.03);
    }
    g.finish()
}

/// Knobs of the saturated trace.
#[derive(Debug, Clone)]
pub struct SaturatedParams {
    /// Random seed.
    pub seed: u64,
    /// Cluster nodes the load is scaled to.
    pub nodes: usize,
    /// Length of the submission window, simulated hours.
    pub hours: f64,
    /// Namespaces (`ns-00` …, Zipf-weighted).
    pub namespaces: usize,
    /// Offered load as a fraction of cluster cpu (well above 1).
    pub load: f64,
    /// Share of jobs that are high priority.
    pub high_share: f64,
}

impl Default for SaturatedParams {
    fn default() -> Self {
        Self {
            seed: 1,
            nodes: 100,
            hours: 3.0,
            namespaces: 5,
            load: 1.5,
            high_share: 0.2,
        }
    }
}

/// Mean cpu·seconds of a saturated-trace gang: a medium driver and 40 executors of 2.8 cpu on
/// average (60 % medium, 40 % large) for 1,500 s.
fn mean_gang_cpu_seconds() -> f64 {
    (2.0 + 40.0 * (0.6 * 2.0 + 0.4 * 4.0)) * 1500.0
}

/// The saturated trace (see the module docs): Poisson arrivals of gangs at `load` × cluster
/// cpu over the window, each 20–60 medium or large executors for 10–40 minutes, 2 % failing.
pub fn saturated(p: &SaturatedParams) -> Vec<TraceJob> {
    let mut g = Gen::new(p.seed);
    let span = p.hours.max(0.1) * 3600.0;
    let namespaces = p.namespaces.max(1);
    let rate = p.load * (p.nodes * NODE_CPU as usize) as f64 / mean_gang_cpu_seconds();
    let mut t = 0.0;
    loop {
        let u: f64 = g.uniform(f64::MIN_POSITIVE, 1.0);
        t += -u.ln() / rate;
        if t >= span {
            break;
        }
        let priority = if g.chance(p.high_share) {
            Priority::High
        } else {
            Priority::Normal
        };
        let namespace = g.namespace(namespaces);
        let size = if g.chance(0.6) { "medium" } else { "large" };
        let n = g.count(20, 60);
        let runtime = g.uniform(600.0, 2400.0).round();
        let outcome = if g.chance(0.02) {
            Outcome::Failed
        } else {
            Outcome::Succeeded
        };
        let index = g.jobs.len();
        g.jobs.push(TraceJob {
            at: (t * 10.0).round() / 10.0,
            name: format!("gang-{index:05}"),
            namespace,
            priority,
            driver: pod("medium"),
            executor: executors(size, n, false),
            runtime,
            outcome,
            tag: Some("gang".into()),
        });
    }
    g.finish()
}

/// The seed-002 scenario on `nodes` nodes (see the module docs).
pub fn seed002(seed: u64, nodes: usize) -> Vec<TraceJob> {
    let mut g = Gen::new(seed);
    // Trivial flood from three teams: 5 per node of 4 cpu each, > the cluster's 16 per node.
    for _ in 0..nodes * 5 {
        let at = g.uniform(0.0, 300.0);
        let namespace = ns(g.count(0, 2) as usize);
        let runtime = g.uniform(600.0, 1200.0).round();
        let index = g.jobs.len();
        g.jobs.push(TraceJob {
            at,
            name: format!("trivial-{index:05}"),
            namespace,
            priority: Priority::Normal,
            driver: pod("small"),
            executor: executors("small", 3, false),
            runtime,
            outcome: Outcome::Succeeded,
            tag: Some("trivial".into()),
        });
    }
    // Business-critical: one a minute for 40 minutes, from two teams.
    for k in 0..40 {
        let at = 120.0 + 60.0 * k as f64 + g.uniform(0.0, 10.0);
        let index = g.jobs.len();
        g.jobs.push(TraceJob {
            at,
            name: format!("critical-{index:05}"),
            namespace: ns(3 + (k % 2)),
            priority: Priority::High,
            driver: pod("medium"),
            executor: executors("large", 4, false),
            runtime: 900.0,
            outcome: Outcome::Succeeded,
            tag: Some("critical".into()),
        });
    }
    // The backfill wave: one team re-processes history, a node's worth of jobs per node.
    for _ in 0..nodes {
        let at = 1800.0 + g.uniform(0.0, 60.0);
        let runtime = g.uniform(1200.0, 2400.0).round();
        let index = g.jobs.len();
        g.jobs.push(TraceJob {
            at,
            name: format!("backfill-{index:05}"),
            namespace: ns(5),
            priority: Priority::Normal,
            driver: pod("medium"),
            executor: executors("large", 8, false),
            runtime,
            outcome: Outcome::Succeeded,
            tag: Some("backfill".into()),
        });
    }
    for j in &mut g.jobs {
        j.at = (j.at * 10.0).round() / 10.0;
    }
    g.finish()
}

/// `jobs` gangs of one node each (a `large` driver and three `large` executors on 16-cpu
/// nodes), all submitted in the first second, each running `runtime` seconds.
pub fn deadlock(jobs: usize, runtime: f64) -> Vec<TraceJob> {
    let mut g = Gen::new(0);
    for i in 0..jobs {
        g.jobs.push(TraceJob {
            at: (i as f64 * 0.05 * 10.0).round() / 10.0,
            name: format!("gang-{i:05}"),
            namespace: ns(i % 2),
            priority: Priority::Normal,
            driver: pod("large"),
            executor: executors("large", 3, false),
            runtime,
            outcome: Outcome::Succeeded,
            tag: Some("gang".into()),
        });
    }
    g.finish()
}

#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
