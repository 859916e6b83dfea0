//! The orchestrator daemon and its command-line interface, wired from the other crates: the
//! only crate that knows all of them (`jobs`, `schedules`, `queues`, `capacity`, `submitter`).
//!
//! Data flow: [`config`] turns the TOML file into a checked [`config::Config`] (the
//! `jobs::Catalog` plus the daemon's own sections, every problem reported at once); [`cli`]
//! parses the command line and runs a command. `validate` is offline (a job file through
//! `jobs::validate::parse_job`); `enqueue`, `jobs`, `dlq`, `schedules` and `queues` are clients
//! of the HTTP API. `orchestrator run` (`cli::run`) builds the Kubernetes client and starts the
//! [`daemon::Daemon`], which connects the job store and the broker, declares the topology, and
//! spawns on every replica the intake, the outbox relay, housekeeping, the capacity watches and
//! [`http`] (the API and the web console over the `queues::JobStore`). [`leader`] holds a
//! Kubernetes Lease; while this replica leads, the daemon runs the submitter (admission rounds
//! and the tracker) and [`cron`] (schedules fired once per nominal time onto the outbox), and
//! stops them when leadership moves. On a signal the daemon shuts down in the order that loses
//! nothing: intake, then the leader group and the lease, then the rest, then the connections.
//! [`metrics`] holds the daemon's own metrics and the one registry served at `/metrics`.
//! The whole path of a job is described in `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod cron;
pub mod daemon;
pub mod http;
pub mod leader;
pub mod metrics;
