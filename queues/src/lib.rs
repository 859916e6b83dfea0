//! The durable job queues: what a job is, whether a message is one, and (as the crate grows)
//! how jobs travel from RabbitMQ into the PostgreSQL job store and out to dead letters.
//!
//! Data flow: message bytes → [`validate::parse_job`] (checked against the [`catalog::Catalog`])
//! → a normalised [`job::Job`], or a [`validate::Rejection`] listing every problem with a
//! code, a JSON path and a sentence. [`quantity`] parses cpu and memory amounts and [`names`]
//! holds the naming rules both jobs and the catalog follow.

#![forbid(unsafe_code)]

pub mod catalog;
pub mod job;
pub mod names;
pub mod quantity;
pub mod validate;

pub use catalog::{Catalog, CatalogConfig};
pub use job::{Job, JobId, Priority};
pub use validate::{Problem, ProblemCode, Rejection, parse_job};

/// Domain of the labels and annotations the orchestrator owns (`spark-orchestrator.dev/job-id`).
pub const LABEL_DOMAIN: &str = "spark-orchestrator.dev";
