//! Cron schedules, as pure rules: when a schedule fires, what happens to runs that were missed
//! or are still running, and what a valid schedule is. The daemon's cron loop applies them;
//! the job store keeps their typed values; the HTTP API checks requests with them.
//!
//! [`spec`] parses expressions (standard 5-field cron, or 6 with seconds) in a time zone and
//! turns nominal wall-clock times into instants, handling DST so that a nominal time never
//! fires twice and a skipped local time fires once. [`policy`] decides, for a schedule's last
//! fired nominal time and now, which fires happen and which are recorded as missed, and how a
//! fire meets a previous run that is still active. [`definition`] checks a request whole
//! against the catalog into a [`ScheduleDefinition`].

#![forbid(unsafe_code)]

pub mod definition;
pub mod policy;
pub mod spec;

pub use definition::{ScheduleDefinition, ScheduleRequest, check};
pub use policy::{ConcurrencyAction, ConcurrencyPolicy, FirePlan, MissedRunPolicy, plan};
pub use spec::{CronSpec, Fire, SpecError};
