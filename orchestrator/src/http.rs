//! The HTTP API (axum): jobs, queues, dead letters, schedules, metrics, health, OpenAPI.
//!
//! [`router`] builds every route from one table ([`routes`]), which the OpenAPI document
//! ([`openapi`], generated from the handlers and types) is checked against; [`contract`]
//! holds the request schemas that tell a `400` from a `422`. A request passes the tracing
//! layer (one span per request; the token is never logged) and the request metrics
//! ([`HttpMetrics`]), then [`extract`]: [`auth`] turns the
//! `Authorization` header into a [`auth::Caller`] with roles and namespaces, and body, path
//! and query extractors turn every malformed input into the uniform JSON error of [`error`].
//! Handlers ([`jobs`], [`queue_overview`], [`dlq`], [`schedules`], [`ops`]) check the caller's role
//! and namespace before touching the [`queues::JobStore`]. [`state`] holds what they share,
//! including the [`state::Readiness`] probe `/readyz` asks. [`ui`] serves the web console
//! (static files embedded in the binary) at `/ui`; it uses only the routes above.

#![allow(
    unused_qualifications,
    reason = "utoipa's ToSchema derive and #[utoipa::path] expand to qualified paths"
)]

pub mod auth;
pub mod cluster;
pub mod contract;
pub mod dlq;
pub mod error;
pub mod extract;
pub mod job_view;
pub mod jobs;
mod metrics;
pub mod openapi;
pub mod ops;
pub mod queue_overview;
pub mod schedules;
pub mod state;
pub mod ui;
pub mod whoami;

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;
use tracing::{Span, field};

pub use self::error::ApiError;
pub use self::metrics::HttpMetrics;
pub use self::state::{ApiOptions, ApiState, Component, Readiness, StoreReadiness};

/// One route: method, path (axum syntax, `{id}` for parameters) and handler.
pub struct Route {
    /// HTTP method.
    pub method: Method,
    /// Path template, as in the OpenAPI document.
    pub path: &'static str,
    handler: MethodRouter<ApiState>,
}

fn route(method: Method, path: &'static str, handler: MethodRouter<ApiState>) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

/// Every route the API serves: the single source for [`router`] and for the test that holds
/// the OpenAPI document to it.
pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/v1/jobs", post(jobs::submit)),
        route(Method::GET, "/v1/jobs", get(jobs::list)),
        route(Method::GET, "/v1/jobs/{id}", get(jobs::show)),
        route(Method::POST, "/v1/jobs/{id}/cancel", post(jobs::cancel)),
        route(Method::GET, "/v1/queues", get(queue_overview::list)),
        route(Method::GET, "/v1/dlq", get(dlq::list)),
        route(Method::GET, "/v1/dlq/{id}", get(dlq::show)),
        route(Method::POST, "/v1/dlq/requeue", post(dlq::requeue)),
        route(Method::POST, "/v1/dlq/purge", post(dlq::purge)),
        route(Method::GET, "/v1/schedules", get(schedules::list)),
        route(Method::POST, "/v1/schedules", post(schedules::create)),
        route(Method::GET, "/v1/schedules/{name}", get(schedules::show)),
        route(Method::PUT, "/v1/schedules/{name}", put(schedules::update)),
        route(
            Method::DELETE,
            "/v1/schedules/{name}",
            delete(schedules::remove),
        ),
        route(
            Method::POST,
            "/v1/schedules/{name}/pause",
            post(schedules::pause),
        ),
        route(
            Method::POST,
            "/v1/schedules/{name}/resume",
            post(schedules::resume),
        ),
        route(Method::GET, "/v1/cluster", get(cluster::show)),
        route(Method::GET, "/v1/whoami", get(whoami::show)),
        route(Method::GET, "/metrics", get(ops::metrics)),
        route(Method::GET, "/healthz", get(ops::healthz)),
        route(Method::GET, "/readyz", get(ops::readyz)),
        route(Method::GET, "/openapi.json", get(ops::openapi)),
        route(
            Method::GET,
            ::jobs::model::JOB_SCHEMA_PATH,
            get(ops::job_schema),
        ),
    ]
}

/// The API as an axum router: every route of [`routes`], JSON errors for unknown paths and
/// methods, the body size limit, and a tracing span per request.
pub fn router(state: ApiState) -> Router {
    let limit = state.options.max_body_bytes;
    let http_metrics = state.http_metrics.clone();
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    ui::mount(router)
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            http_metrics,
            metrics::record,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(request_done)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .with_state(state)
}

/// Serves `router` on `listener` until `token` is cancelled, then finishes the requests in
/// flight (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    token: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await
}

/// One span per request (tower-http's `TraceLayer`): method, route template (not the raw
/// path: templates aggregate), caller name (recorded by the auth extractor), status and
/// duration. Headers — and so the token — are never recorded.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", MatchedPath::as_str);
    tracing::info_span!(
        "http",
        method = %request.method(),
        route = %route,
        caller = field::Empty,
        status = field::Empty,
    )
}

/// Records the status on the request's span; server errors are warnings.
fn request_done(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed_ms = latency.as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(parent: span, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(parent: span, status, elapsed_ms, "request");
    }
}
