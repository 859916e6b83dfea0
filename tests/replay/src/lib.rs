//! Scheduling quality, measured: workload traces replayed against the orchestrator and three
//! baselines on kube-sim, with real RabbitMQ intake and PostgreSQL.
//!
//! [`trace`] is the JSON-lines workload format and its strict parser; [`generate`] makes
//! seeded traces (the standard mixed workload, the seed blog's scenario, a deadlock); [`cluster`]
//! turns a trace into a kube-sim cluster and an orchestrator catalog. [`replay`] runs one trace
//! under one [`Policy`] (the orchestrator policies on the real daemon, [`daemon`]) —
//! publishing at the submit offsets on the simulated clock, watching SparkApplications and
//! pods into a [`record::Recorder`], sampling utilization and the daemon's start estimates
//! ([`estimates`]) — and
//! [`metrics`] reduces the recording to the report's figures (pure functions), which [`report`]
//! writes as markdown and [`plot`] as a PNG. [`mvp`] is the seed's sum-of-free capacity check,
//! one of the baselines.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod estimates;
pub mod generate;
pub mod metrics;
pub mod mvp;
mod observe;
pub mod plot;
pub mod record;
pub mod replay;
pub mod report;
pub mod trace;

/// Who decides when a job's application is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// The orchestrator as shipped: priority levels, fair shares, gang bin-packing with holds
    /// and backfill, the reservation ledger.
    Orchestrator,
    /// The same with `[submitter.preemption]` enabled (scope `priority`: a high job may stop
    /// normal applications in any namespace).
    OrchestratorPreempt,
    /// Baseline 3: the same, but no backfill — the first job that does not fit blocks every
    /// job ordered after it.
    StrictFifo,
    /// Baseline 2: the seed's MVP — admit when the cluster-wide sum of free cpu and memory
    /// covers the driver and executors.
    Mvp,
    /// Baseline 1: no orchestrator — every SparkApplication created at enqueue (the Spark
    /// Operator alone).
    NoOrchestrator,
}

impl Policy {
    /// The policies a run replays unless told otherwise, in report order: the orchestrator as
    /// shipped and the three baselines.
    pub const DEFAULT: [Policy; 4] = [
        Policy::Orchestrator,
        Policy::StrictFifo,
        Policy::Mvp,
        Policy::NoOrchestrator,
    ];

    /// Every policy.
    pub const ALL: [Policy; 5] = [
        Policy::Orchestrator,
        Policy::OrchestratorPreempt,
        Policy::StrictFifo,
        Policy::Mvp,
        Policy::NoOrchestrator,
    ];

    /// Whether the world's daemon admits (the baselines keep it a standby).
    pub fn daemon_admits(self) -> bool {
        matches!(
            self,
            Policy::Orchestrator | Policy::OrchestratorPreempt | Policy::StrictFifo
        )
    }

    /// Name in the report and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Orchestrator => "orchestrator",
            Policy::OrchestratorPreempt => "orchestrator-preempt",
            Policy::StrictFifo => "strict-fifo",
            Policy::Mvp => "mvp-sum",
            Policy::NoOrchestrator => "no-orchestrator",
        }
    }
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
                format!("unknown policy {s:?}; one of {}", names.join(", "))
            })
    }
}
