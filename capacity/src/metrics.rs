//! Prometheus metrics of the capacity checker. One [`Metrics`] per process, cloned into each
//! strategy (the families share their storage), registered once with
//! [`Metrics::register`].
//!
//! | name | type | labels |
//! |---|---|---|
//! | `orchestrator_capacity_verdicts_total` | counter | `strategy` (snapshot, dry-run, placeholders), `verdict` (fits, wait, never), `reason` (wait/never kind code, `scale-up` or `now` for fits) |
//! | `orchestrator_capacity_check_seconds` | histogram | `strategy` |
//! | `orchestrator_capacity_errors_total` | counter | `strategy`, `error` (`Error::metric_label`) |
//! | `orchestrator_cluster_allocatable` | gauge | `resource` (cpu in cores, memory in bytes, pods), `pool` (`""` for nodes without one) |
//! | `orchestrator_cluster_requested` | gauge | `resource`, `pool` — requests of bound, non-terminal pods |
//! | `orchestrator_capacity_ledger_entries` | gauge | — gangs holding a reservation |
//! | `orchestrator_capacity_ledger_reserved` | gauge | `resource` — promised, not yet carried by pods |
//! | `orchestrator_capacity_placeholders` | gauge | `state` (confirming: waiting for the scheduler; held: bound, awaiting reserve/release) |
//! | `orchestrator_capacity_placeholders_created_total` | counter | — |
//! | `orchestrator_capacity_placeholders_deleted_total` | counter | `reason` (reserve, release, wait, cancelled, superseded, sweep) |
//! | `orchestrator_capacity_watch_events_total` | counter | `kind` (nodes, pods, resourcequotas), `event` (apply, delete, relist) |
//! | `orchestrator_capacity_watch_errors_total` | counter | `kind` |
//! | `orchestrator_capacity_cache_ready` | gauge | — 1 once every watch has synced |

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::Resources;
use crate::verdict::Verdict;

/// `strategy, verdict, reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// Strategy.
    pub strategy: &'static str,
    /// fits / wait / never.
    pub verdict: &'static str,
    /// Kind code.
    pub reason: &'static str,
}

/// `strategy`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StrategyLabels {
    /// Strategy.
    pub strategy: &'static str,
}

/// `strategy, error`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Strategy.
    pub strategy: &'static str,
    /// Error label.
    pub error: &'static str,
}

/// `resource, pool`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// cpu / memory / pods.
    pub resource: &'static str,
    /// Pool name.
    pub pool: String,
}

/// `resource`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// cpu / memory / pods.
    pub resource: &'static str,
}

/// `state`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// confirming / held.
    pub state: &'static str,
}

/// `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why.
    pub reason: &'static str,
}

/// `kind, event`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WatchLabels {
    /// Watched kind.
    pub kind: &'static str,
    /// apply / delete / relist.
    pub event: &'static str,
}

/// `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Watched kind.
    pub kind: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// All metrics of the crate (see the module table).
#[derive(Clone, Debug)]
pub struct Metrics {
    verdicts: Family<VerdictLabels, Counter>,
    check_seconds: Family<StrategyLabels, Histogram, fn() -> Histogram>,
    errors: Family<ErrorLabels, Counter>,
    allocatable: Family<PoolLabels, FloatGauge>,
    requested: Family<PoolLabels, FloatGauge>,
    ledger_entries: Gauge,
    ledger_reserved: Family<ResourceLabels, FloatGauge>,
    placeholders: Family<StateLabels, Gauge>,
    placeholders_created: Counter,
    placeholders_deleted: Family<ReasonLabels, Counter>,
    watch_events: Family<WatchLabels, Counter>,
    watch_errors: Family<KindLabels, Counter>,
    cache_ready: Gauge,
}

fn check_histogram() -> Histogram {
    // 10µs … ~5s: a cached decision is microseconds, a placeholder confirmation seconds.
    Histogram::new(exponential_buckets(1e-5, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Fresh, unregistered metrics.
    pub fn new() -> Self {
        Metrics {
            verdicts: Family::default(),
            check_seconds: Family::new_with_constructor(check_histogram as fn() -> Histogram),
            errors: Family::default(),
            allocatable: Family::default(),
            requested: Family::default(),
            ledger_entries: Gauge::default(),
            ledger_reserved: Family::default(),
            placeholders: Family::default(),
            placeholders_created: Counter::default(),
            placeholders_deleted: Family::default(),
            watch_events: Family::default(),
            watch_errors: Family::default(),
            cache_ready: Gauge::default(),
        }
    }

    /// Registers every metric (names without the `_total` suffix the library adds).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "orchestrator_capacity_verdicts",
            "Capacity verdicts by strategy, verdict and reason",
            self.verdicts.clone(),
        );
        r.register(
            "orchestrator_capacity_check_seconds",
            "Time to a capacity verdict",
            self.check_seconds.clone(),
        );
        r.register(
            "orchestrator_capacity_errors",
            "Capacity checks that failed, by error",
            self.errors.clone(),
        );
        r.register(
            "orchestrator_cluster_allocatable",
            "Allocatable per resource and pool (cpu in cores, memory in bytes)",
            self.allocatable.clone(),
        );
        r.register(
            "orchestrator_cluster_requested",
            "Requests of bound non-terminal pods per resource and pool",
            self.requested.clone(),
        );
        r.register(
            "orchestrator_capacity_ledger_entries",
            "Gangs holding a capacity reservation",
            self.ledger_entries.clone(),
        );
        r.register(
            "orchestrator_capacity_ledger_reserved",
            "Capacity promised to admitted gangs and not yet carried by their pods",
            self.ledger_reserved.clone(),
        );
        r.register(
            "orchestrator_capacity_placeholders",
            "Placeholder pods of checks in progress",
            self.placeholders.clone(),
        );
        r.register(
            "orchestrator_capacity_placeholders_created",
            "Placeholder pods created",
            self.placeholders_created.clone(),
        );
        r.register(
            "orchestrator_capacity_placeholders_deleted",
            "Placeholder pods deleted, by reason",
            self.placeholders_deleted.clone(),
        );
        r.register(
            "orchestrator_capacity_watch_events",
            "Watch events applied to the snapshot cache",
            self.watch_events.clone(),
        );
        r.register(
            "orchestrator_capacity_watch_errors",
            "Watch errors (the watch retries)",
            self.watch_errors.clone(),
        );
        r.register(
            "orchestrator_capacity_cache_ready",
            "1 once every watch of the snapshot cache has synced",
            self.cache_ready.clone(),
        );
    }

    /// Starts timing one check; the time is recorded when the guard drops.
    pub fn time_check(&self, strategy: &'static str) -> CheckTimer {
        CheckTimer {
            histogram: self
                .check_seconds
                .get_or_create(&StrategyLabels { strategy })
                .clone(),
            start: Instant::now(),
        }
    }

    /// Counts a verdict.
    pub fn verdict(&self, strategy: &'static str, verdict: &Verdict) {
        let (v, reason) = match verdict {
            Verdict::Fits(p) if p.scale_up.is_empty() => ("fits", "now"),
            Verdict::Fits(_) => ("fits", "scale-up"),
            Verdict::Wait(w) => ("wait", w.kind.code()),
            Verdict::Never(n) => ("never", n.kind.code()),
        };
        self.verdicts
            .get_or_create(&VerdictLabels {
                strategy,
                verdict: v,
                reason,
            })
            .inc();
    }

    /// Counts a failed check.
    pub fn error(&self, strategy: &'static str, error: &crate::Error) {
        self.errors
            .get_or_create(&ErrorLabels {
                strategy,
                error: error.metric_label(),
            })
            .inc();
    }

    /// Sets the per-pool cluster gauges.
    pub fn cluster(&self, pool: &str, allocatable: &Resources, requested: &Resources) {
        for (family, r) in [
            (&self.allocatable, allocatable),
            (&self.requested, requested),
        ] {
            for (resource, value) in dims(r) {
                family
                    .get_or_create(&PoolLabels {
                        resource,
                        pool: pool.to_string(),
                    })
                    .set(value);
            }
        }
    }

    /// Sets the ledger gauges.
    pub fn ledger(&self, entries: usize, reserved: &Resources) {
        self.ledger_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        for (resource, value) in dims(reserved) {
            self.ledger_reserved
                .get_or_create(&ResourceLabels { resource })
                .set(value);
        }
    }

    /// Moves the placeholder gauge of a state.
    pub fn placeholders(&self, state: &'static str, delta: i64) {
        self.placeholders
            .get_or_create(&StateLabels { state })
            .inc_by(delta);
    }

    /// Counts created placeholders.
    pub fn placeholders_created(&self, n: u64) {
        self.placeholders_created.inc_by(n);
    }

    /// Counts deleted placeholders.
    pub fn placeholders_deleted(&self, reason: &'static str, n: u64) {
        self.placeholders_deleted
            .get_or_create(&ReasonLabels { reason })
            .inc_by(n);
    }

    /// Counts a watch event.
    pub fn watch_event(&self, kind: &'static str, event: &'static str) {
        self.watch_events
            .get_or_create(&WatchLabels { kind, event })
            .inc();
    }

    /// Counts a watch error.
    pub fn watch_error(&self, kind: &'static str) {
        self.watch_errors.get_or_create(&KindLabels { kind }).inc();
    }

    /// Sets the readiness gauge.
    pub fn ready(&self, ready: bool) {
        self.cache_ready.set(i64::from(ready));
    }
}

/// cpu in cores, memory in bytes, pods.
fn dims(r: &Resources) -> [(&'static str, f64); 3] {
    [
        ("cpu", r.cpu_millis as f64 / 1000.0),
        ("memory", r.memory_bytes as f64),
        ("pods", r.pods as f64),
    ]
}

/// Records the time since it was made into `orchestrator_capacity_check_seconds` on drop.
#[derive(Debug)]
pub struct CheckTimer {
    histogram: Histogram,
    start: Instant,
}

impl Drop for CheckTimer {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::text::encode;

    use super::*;
    use crate::verdict::{Placement, ScaleUp};

    #[test]
    fn exposes_the_documented_names() {
        let m = Metrics::new();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.verdict(
            "snapshot",
            &Verdict::Fits(Placement {
                nodes: vec![],
                scale_up: vec![ScaleUp {
                    pool: "spot".into(),
                    nodes: 1,
                }],
            }),
        );
        drop(m.time_check("snapshot"));
        m.cluster(
            "spot",
            &Resources {
                cpu_millis: 8000,
                memory_bytes: 1 << 30,
                pods: 110,
            },
            &Resources::default(),
        );
        m.ledger(
            2,
            &Resources {
                cpu_millis: 500,
                memory_bytes: 0,
                pods: 1,
            },
        );
        m.placeholders("confirming", 3);
        m.placeholders_deleted("sweep", 1);
        m.watch_event("pods", "apply");
        let mut out = String::new();
        encode(&mut out, &registry).unwrap();
        for want in [
            r#"orchestrator_capacity_verdicts_total{strategy="snapshot",verdict="fits",reason="scale-up"} 1"#,
            r#"orchestrator_capacity_check_seconds_count{strategy="snapshot"} 1"#,
            r#"orchestrator_cluster_allocatable{resource="cpu",pool="spot"} 8.0"#,
            r#"orchestrator_cluster_requested{resource="memory",pool="spot"} 0.0"#,
            "orchestrator_capacity_ledger_entries 2",
            r#"orchestrator_capacity_ledger_reserved{resource="cpu"} 0.5"#,
            r#"orchestrator_capacity_placeholders{state="confirming"} 3"#,
            r#"orchestrator_capacity_placeholders_deleted_total{reason="sweep"} 1"#,
            r#"orchestrator_capacity_watch_events_total{kind="pods",event="apply"} 1"#,
        ] {
            assert!(out.contains(want), "missing {want} in\n{out}");
        }
    }
}
