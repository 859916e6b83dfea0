//! The daemon's own Prometheus metrics (cron and leadership), and the one registry that also
//! holds the queues', capacity's and submitter's metrics, served at `/metrics`.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestrator_cron_fires_total` | counter | `schedule`, `namespace`, `outcome` = `fired` \| `replaced` \| `skipped` \| `invalid` |
//! | `orchestrator_cron_fire_lag_seconds` | histogram | — from a fire's instant to its job being enqueued |
//! | `orchestrator_cron_missed_total` | counter | `schedule` — runs not fired (daemon down beyond the starting deadline, policy) |
//! | `orchestrator_cron_schedules` | gauge | `state` = `active` \| `suspended` |
//! | `orchestrator_leader` | gauge | `replica` — 1 while this replica holds the lease |
//! | `orchestrator_build_info` | gauge | `version` — always 1 |

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use queues::store::Schedule;

/// `{schedule, namespace, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FireLabels {
    schedule: String,
    namespace: String,
    outcome: String,
}

/// `{schedule}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScheduleLabels {
    schedule: String,
}

/// `{state}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// `{replica}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReplicaLabels {
    replica: String,
}

/// `{version}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// What the cron loop counts.
#[derive(Debug)]
pub struct CronMetrics {
    fires: Family<FireLabels, Counter>,
    lag: Histogram,
    missed: Family<ScheduleLabels, Counter>,
    schedules: Family<StateLabels, Gauge>,
}

impl Default for CronMetrics {
    fn default() -> Self {
        Self {
            fires: Family::default(),
            // 1 ms … ~65 s.
            lag: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            missed: Family::default(),
            schedules: Family::default(),
        }
    }
}

impl CronMetrics {
    /// Registers under `orchestrator_cron_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "orchestrator_cron_fires",
            "Schedule fires handled by this replica, by outcome",
            self.fires.clone(),
        );
        registry.register(
            "orchestrator_cron_fire_lag_seconds",
            "Time from a fire's scheduled instant to its job being enqueued",
            self.lag.clone(),
        );
        registry.register(
            "orchestrator_cron_missed",
            "Runs not fired (daemon down beyond the starting deadline, missed-run policy)",
            self.missed.clone(),
        );
        registry.register(
            "orchestrator_cron_schedules",
            "Schedules by state",
            self.schedules.clone(),
        );
    }

    pub(crate) fn fire(&self, schedule: &Schedule, outcome: &str) {
        self.fires
            .get_or_create(&FireLabels {
                schedule: schedule.definition.name.clone(),
                namespace: schedule.definition.namespace.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub(crate) fn lag(&self, lag: Duration) {
        self.lag.observe(lag.as_secs_f64());
    }

    pub(crate) fn missed(&self, schedule: &str, n: u64) {
        self.missed
            .get_or_create(&ScheduleLabels {
                schedule: schedule.to_owned(),
            })
            .inc_by(n);
    }

    pub(crate) fn set_schedules(&self, schedules: &[Schedule]) {
        let suspended = schedules.iter().filter(|s| s.definition.suspended).count();
        for (state, n) in [
            ("active", schedules.len() - suspended),
            ("suspended", suspended),
        ] {
            self.schedules
                .get_or_create(&StateLabels {
                    state: state.into(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// Whether this replica leads, and the build it runs.
#[derive(Debug, Default)]
pub struct DaemonMetrics {
    leader: Family<ReplicaLabels, Gauge>,
    build: Family<VersionLabels, Gauge>,
}

impl DaemonMetrics {
    /// Registers `orchestrator_leader` and `orchestrator_build_info`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "orchestrator_leader",
            "1 while this replica holds the leader lease (admits jobs and fires cron)",
            self.leader.clone(),
        );
        registry.register(
            "orchestrator_build_info",
            "The running build; always 1",
            self.build.clone(),
        );
        self.build
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
    }

    /// Records leadership of `replica`.
    pub fn set_leader(&self, replica: &str, leads: bool) {
        self.leader
            .get_or_create(&ReplicaLabels {
                replica: replica.to_owned(),
            })
            .set(i64::from(leads));
    }
}
