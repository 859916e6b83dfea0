//! `GET /v1/cluster`: the cluster per pool — allocatable, requested by bound pods, reserved by
//! the capacity ledger, placeholder pods — and the namespace quotas the caller may see.
//!
//! The handlers read it through [`ClusterInfo`], so the HTTP layer needs no Kubernetes client:
//! the daemon plugs in its [`capacity::Capacity`]; a process without one (tests of the API
//! alone, tools) answers `503 unavailable`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use capacity::{ClusterSummary, PodProgress};

use super::auth::Role;
use super::error::ApiError;
use super::extract::Authed;
use super::state::ApiState;

/// Where the cluster summary, and a job's pods, come from.
pub trait ClusterInfo: Send + Sync {
    /// The summary now.
    fn summary(&self) -> ClusterSummary;
    /// How far application `app`'s pods in `namespace` have come (`GET /v1/jobs/{id}`).
    fn app_pods(&self, namespace: &str, app: &str) -> PodProgress;
}

impl ClusterInfo for capacity::Capacity {
    fn summary(&self) -> ClusterSummary {
        capacity::Capacity::summary(self)
    }

    fn app_pods(&self, namespace: &str, app: &str) -> PodProgress {
        capacity::Capacity::app_pods(self, namespace, app)
    }
}

/// `GET /v1/cluster`: needs the `read` role. Pools are cluster-wide and shown to every
/// reader; quotas only for the namespaces the token may access.
#[utoipa::path(
    get, path = "/v1/cluster", tag = "cluster", operation_id = "getCluster",
    summary = "The cluster per pool: allocatable, requested, reserved by the capacity ledger, placeholders; quotas of the token's namespaces",
    description = "Requires the `read` role.",
    responses(
        (status = 200, description = "The summary.", body = ClusterSummary),
        (status = 503, description = "This process watches no cluster.", body = super::error::Body),
    )
)]
pub async fn show(
    State(state): State<ApiState>,
    Authed(caller): Authed,
) -> Result<Json<ClusterSummary>, ApiError> {
    caller.require(Role::Read, None)?;
    let info = state.cluster.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this process does not watch a cluster (no capacity checker); ask the daemon",
        )
    })?;
    let mut summary = info.summary();
    summary.quotas.retain(|ns, _| caller.may_access(ns));
    Ok(Json(summary))
}
