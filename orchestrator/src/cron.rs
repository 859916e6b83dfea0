//! Cron schedules: when a schedule fires, and what to do about runs that were missed or are
//! still running. Pure functions over time; the loop that applies them lives with the daemon.
//!
//! [`spec`] parses expressions (standard 5-field cron, or 6 with seconds) in a time zone and
//! turns nominal wall-clock times into instants, handling DST so that a nominal time never
//! fires twice and a skipped local time fires once. [`policy`] decides, for a schedule's last
//! fired nominal time and now, which fires happen and which are recorded as missed, and how
//! a fire meets a previous run that is still active.

pub mod policy;
pub mod runner;
pub mod spec;

pub use policy::{ConcurrencyAction, ConcurrencyPolicy, FirePlan, MissedRunPolicy, plan};
pub use spec::{CronSpec, Fire};
