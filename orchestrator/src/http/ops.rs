//! Operational endpoints: `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (its dependencies answer), `/openapi.json`, and the JSON answers for unknown
//! paths and methods.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::Role;
use super::error::ApiError;
use super::state::ApiState;

/// `GET /metrics`: every registered metric, OpenMetrics text. Open unless the options ask
/// for a `read` token.
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

/// `GET /healthz`: the process is up and serving.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when every component is usable, else 503 naming the failures.
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let components = state.readiness.check().await;
    let ready = components.iter().all(|c| c.status.is_ok());
    let mut map = Map::new();
    for c in &components {
        map.insert(
            c.name.clone(),
            match &c.status {
                Ok(()) => json!({ "ok": true }),
                Err(e) => json!({ "ok": false, "error": e }),
            },
        );
    }
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
    (status, Json(json!({ "ready": ready, "components": map }))).into_response()
}

/// `GET /openapi.json`: the API's OpenAPI 3.1 document.
pub async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
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
