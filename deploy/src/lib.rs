//! Checks for what ships the orchestrator to a real cluster: the container image recipe
//! (`Dockerfile` at the repository root) and the kustomize deployment beside this crate
//! (`deploy/base`, `deploy/overlays/*`, rendered by `deploy/render`).
//!
//! The checks are pure functions over text or parsed objects, so each is tested on hostile
//! input here and run on the real files by the integration tests in `tests/`:
//! - [`dockerfile`] parses a Dockerfile into stages and checks pinned bases, a non-root user
//!   and that the binary the entrypoint runs is the one cargo builds and the last stage copies;
//! - [`manifests`] loads rendered multi-document YAML and checks RBAC (no `*`), pod hardening,
//!   image tags and Secrets;
//! - [`crd`] validates custom resources (ServiceMonitor, PrometheusRule) against the OpenAPI
//!   schema of their vendored CRD, refusing unknown fields as `kubectl --validate=strict` does;
//! - [`markdown`] computes GitHub's heading anchors, for the alerts' `runbook_url`s;
//! - [`render`] runs `deploy/render`, `kubectl kustomize` and `kubernetes-validate` for the
//!   integration tests.

#![forbid(unsafe_code)]

pub mod crd;
pub mod dockerfile;
pub mod manifests;
pub mod markdown;
pub mod render;

/// Why a file could not be read as what it should be.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// YAML that does not parse.
    #[error("{what}: invalid YAML: {source}")]
    Yaml {
        /// Which text.
        what: String,
        /// The parser's complaint.
        source: serde_yaml_ng::Error,
    },
    /// Input that parses but is not what it should be.
    #[error("{what}: {message}")]
    Invalid {
        /// Which text.
        what: String,
        /// What is wrong.
        message: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
