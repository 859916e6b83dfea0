//! Operational endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (its dependencies answer), `/openapi.json` and `/v1/schema/job` (the contract),
//! and the JSON answers for unknown paths and methods.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Role;
use super::error::ApiError;
use super::state::ApiState;

/// `GET /metrics`: every registered metric, OpenMetrics text. Open unless the options ask
/// for a `read` token.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics", security(()),
    summary = "Prometheus metrics (OpenMetrics text); open unless configured otherwise",
    responses(
        (status = 200, description = "Metrics.", content_type = "application/openmetrics-text", body = String),
        (status = 401, description = "`http.metrics_require_auth` is on and no valid token was given.", body = super::error::Body),
        (status = 403, description = "The token lacks the `read` role.", body = super::error::Body),
        (status = 500, description = "The metrics cannot be encoded.", body = super::error::Body),
    )
)]
pub async fn metrics(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if state.options.metrics_require_auth {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state.auth.authenticate(header)?.require(Role::Read, None)?;
    }
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.registry).map_err(|e| {
        tracing::error!(error = %e, "cannot encode metrics");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "cannot encode the metrics",
        )
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// `GET /healthz`: the process is up and serving.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", operation_id = "healthz", security(()),
    summary = "The process is alive",
    responses((status = 200, description = "Alive.", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// One component's readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentStatus {
    /// Whether it answers.
    ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The answer of `/readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Whether every component answers.
    ready: bool,
    /// By component (`broker`, `database`, `kubernetes`).
    components: BTreeMap<String, ComponentStatus>,
}

/// `GET /readyz`: 200 when every component is usable, else 503 naming the failures.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", operation_id = "readyz", security(()),
    summary = "The broker, database and Kubernetes answer",
    responses(
        (status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready; the failing components say why.", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let components = state.readiness.check().await;
    let ready = components.iter().all(|c| c.status.is_ok());
    let map: BTreeMap<String, ComponentStatus> = components
        .iter()
        .map(|c| {
            let status = ComponentStatus {
                ok: c.status.is_ok(),
                error: c.status.as_ref().err().cloned(),
            };
            (c.name.clone(), status)
        })
        .collect();
    if !ready {
        let failing: Vec<&str> = components
            .iter()
            .filter(|c| c.status.is_err())
            .map(|c| c.name.as_str())
            .collect();
        tracing::warn!(failing = ?failing, "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            ready,
            components: map,
        }),
    )
        .into_response()
}

/// The OpenAPI document, rendered once.
static OPENAPI: LazyLock<Value> = LazyLock::new(super::openapi::document);

/// The job schema, rendered once.
static JOB_SCHEMA: LazyLock<Value> = LazyLock::new(jobs::model::job_schema);

/// `GET /openapi.json`: the API's OpenAPI 3.1 document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations", operation_id = "openapi", security(()),
    summary = "This document",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
pub async fn openapi() -> Json<Value> {
    Json(OPENAPI.clone())
}

/// `GET /v1/schema/job`: the job message's JSON Schema (2020-12), for publishers to check
/// their messages before sending (AMQP or HTTP). Open: it holds nothing secret.
#[utoipa::path(
    get, path = "/v1/schema/job", tag = "jobs", operation_id = "jobSchema", security(()),
    summary = "The JSON Schema (2020-12) of the job message",
    responses((status = 200, description = "The schema; `JobMessage` of this document is the same.", content_type = "application/schema+json", body = Object))
)]
pub async fn job_schema() -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(JOB_SCHEMA.clone()),
    )
        .into_response()
}

/// Unknown path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; see /openapi.json")
}

/// Known path, wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}
