//! The HTTP API (axum): jobs, queues, dead letters, schedules, metrics, health, OpenAPI.
//!
//! [`router`] builds every route from one table ([`routes`]), which the OpenAPI document
//! ([`openapi`]) is checked against. A request passes the tracing middleware (one span per
//! request; the token is never logged), then [`extract`]: [`auth`] turns the
//! `Authorization` header into a [`auth::Caller`] with roles and namespaces, and body, path
//! and query extractors turn every malformed input into the uniform JSON error of [`error`].
//! Handlers ([`jobs`], [`queue_overview`], [`dlq`], [`schedules`], [`ops`]) check the caller's role
//! and namespace before touching the [`queues::JobStore`]. [`state`] holds what they share,
//! including the [`state::Readiness`] probe `/readyz` asks.

pub mod auth;
pub mod dlq;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod openapi;
pub mod ops;
pub mod queue_overview;
pub mod schedules;
pub mod state;

use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};

pub use self::error::ApiError;
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
        route(Method::GET, "/metrics", get(ops::metrics)),
        route(Method::GET, "/healthz", get(ops::healthz)),
        route(Method::GET, "/readyz", get(ops::readyz)),
        route(Method::GET, "/openapi.json", get(ops::openapi)),
    ]
}

/// The API as an axum router: every route of [`routes`], JSON errors for unknown paths and
/// methods, the body size limit, and a tracing span per request.
pub fn router(state: ApiState) -> Router {
    let limit = state.options.max_body_bytes;
    let mut router = Router::new();
    for r in routes() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(trace))
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

/// One span per request: method, route template (not the raw path: it may hold ids, never
/// secrets, but templates aggregate), status, caller name, duration. Headers — and so the
/// token — are never recorded.
async fn trace(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "http",
        method = %request.method(),
        route = %route,
        caller = field::Empty,
        status = field::Empty,
    );
    let started = Instant::now();
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        tracing::warn!(parent: &span, status, elapsed_ms, "request failed");
    } else {
        tracing::debug!(parent: &span, status, elapsed_ms, "request");
    }
    response
}
