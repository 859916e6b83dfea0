//! The orchestrator's Grafana dashboards (`grafana/*.json`), Prometheus alert rules
//! (`prometheus/alerts.yml`, unit-tested by `prometheus/alerts.test.yml`) and provisioning
//! examples (`provisioning/`, `prometheus/prometheus.yml`), embedded in [`files`], plus the
//! code that reads them so tests can check them against the metrics the code registers and
//! against a real Prometheus.
//!
//! [`files`] holds the texts; [`grafana`] reads a dashboard into panels, targets and
//! variables; [`rules`] reads the alert rules; [`query`] works on the query texts: Grafana
//! variable substitution, metric names, the `<signal> <op> <threshold>` split of an alert.
//! [`exposition`] reads `/metrics` text into the sample names a query may use.
//! Data flows one way: file text → model → query strings the tests run.

#![forbid(unsafe_code)]

pub mod exposition;
pub mod files;
pub mod grafana;
pub mod query;
pub mod rules;

/// What can go wrong reading the embedded files or their queries.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A dashboard is not JSON.
    #[error("{file}: {source}")]
    Json {
        /// Which file.
        file: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A YAML file does not parse or does not have the expected shape.
    #[error("{file}: {source}")]
    Yaml {
        /// Which file.
        file: String,
        /// Why.
        source: serde_yaml_ng::Error,
    },
    /// A dashboard is JSON but not shaped like a Grafana dashboard.
    #[error("{file}: {message}")]
    Shape {
        /// Which file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A query uses a variable nobody defined.
    #[error("unknown variable ${name} in {query:?}")]
    UnknownVariable {
        /// The variable.
        name: String,
        /// The query.
        query: String,
    },
    /// A query has a `$`, `${` or macro call that does not close.
    #[error("malformed variable reference in {0:?}")]
    Malformed(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
