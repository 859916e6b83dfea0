//! The cron loop: applies the rules of the `schedules` crate to the stored schedules — fires
//! claimed once per (schedule, nominal time) in the same transaction that puts the job on the
//! outbox, missed runs counted, concurrency policies applied.

pub mod runner;
