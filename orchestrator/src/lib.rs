//! The orchestrator daemon and its command-line interface, wired from the other crates.
//!
//! [`config`] turns the TOML file into a checked [`config::Config`] (the catalog from
//! `queues` plus the daemon's own sections); [`cli`] defines the commands and runs the
//! offline ones, such as `validate`, which feeds a job file through `queues`' validation.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod cron;
pub mod daemon;
pub mod http;
pub mod leader;
pub mod metrics;
