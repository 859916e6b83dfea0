//! The job model: what a Spark job request is, whether a message is one, and the rules every
//! part of the orchestrator agrees on. Pure — no broker, database or Kubernetes client — so the
//! offline `orchestrator validate`, the submitter's footprint and rendering, and the tests all
//! share one definition.
//!
//! Data flow: message bytes (an AMQP body or an HTTP body) go to [`validate::parse_job`], which
//! reads them strictly and checks every field against the [`catalog::Catalog`] (the namespaces,
//! node types, priority classes, defaults and limits an admin configured), reporting **every**
//! [`validate::Problem`] at once, or yields a normalised [`model::Job`] with every default
//! applied. Amounts are parsed by [`quantity`] (Kubernetes cpu, Spark memory), durations by
//! [`duration`], names and labels checked by [`names`]. A stored job moves through the states of
//! [`state`] (with the dead-letter reasons), and a failed attempt waits [`retry::retry_delay`]
//! under its [`retry::RetryPolicy`].
//!
//! [`model::message`] describes the message as publishers write it, as types: its JSON Schema
//! ([`model::job_schema`], committed as `schemas/job.schema.json`) and the API document's
//! `JobMessage` are generated from them, and tests hold them to what `parse_job` accepts.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod duration;
pub mod model;
pub mod names;
pub mod quantity;
pub mod retry;
pub mod state;
pub mod validate;

pub use catalog::{Catalog, CatalogConfig};
pub use duration::JobDuration;
pub use model::{Job, JobId, Priority};
pub use state::{DeadReason, JobState};
pub use validate::{Problem, ProblemCode, Rejection, parse_job};

/// Domain of the labels and annotations the orchestrator owns (`spark-orchestrator.dev/job-id`).
pub const LABEL_DOMAIN: &str = "spark-orchestrator.dev";
