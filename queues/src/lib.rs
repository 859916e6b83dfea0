//! The durable job queues: how jobs travel from RabbitMQ into the PostgreSQL job store,
//! through their lifecycle, and out to events and dead letters. What a job is, whether a
//! message is one, and the states and retry delays live in the pure `jobs` crate; the cron
//! rules in `schedules`.
//!
//! Data flow: a publisher ([`publisher`]) sends job JSON to `{p}.jobs`, routed by
//! `{namespace}.{priority}` into per-namespace quorum queues declared by [`topology`]. The
//! [`intake`] consumes them (high before normal, fair across namespaces, a bounded window per
//! queue), checks each body with `jobs::validate::parse_job` against the `jobs::Catalog`,
//! and stores a batch of normalised `jobs::Job`s — or dead letters carrying every
//! `jobs::Problem` — in one transaction of the [`store::JobStore`], acking only after
//! the commit. From there the submitter drives each job through the states of `jobs::state`
//! (pending heads, waiting reasons, transitions, retries with `jobs::retry` backoff, dead
//! letters); every change writes its history row and outbox messages in the same
//! transaction, and the [`relay`] publishes them (events on `{p}.events`, dead-letter copies,
//! reply_to verdicts, cron-fired jobs). The store also keeps the cron schedules and claims
//! their fires. [`maintenance`] promotes due retries, expires ttls, refreshes gauges and
//! applies retention; [`metrics`] holds the Prometheus metrics; [`amqp`] the RabbitMQ helpers;
//! [`outage`] the reconnect backoff; [`error`] the one error type.

#![forbid(unsafe_code)]

pub mod amqp;
pub mod error;
pub mod intake;
pub mod maintenance;
pub mod metrics;
pub mod outage;
pub mod publisher;
pub mod relay;
pub mod store;
pub mod topology;

pub use error::{Disposition, Error, Result};
pub use intake::{Intake, IntakeConfig};
pub use metrics::Metrics;
pub use publisher::{Outgoing, Publisher};
pub use relay::{Relay, RelayConfig};
pub use store::JobStore;
pub use topology::{Names, Topology, TopologyConfig};
