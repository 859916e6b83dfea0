//! The API's request metrics, recorded by a middleware around every route:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestrator_http_requests_total` | counter | `method`, `route`, `status` |
//! | `orchestrator_http_request_duration_seconds` | histogram | `method`, `route` — until the response head is ready |
//!
//! `route` is the matched template (`/v1/jobs/{id}`), never the raw path, and `method` is one
//! of the standard methods or `OTHER`: a client inventing paths or methods cannot grow the
//! number of series. Unmatched paths are `(unmatched)`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// `{method, route, status}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

/// `{method, route}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

type Latency = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.5 ms … ~8 s: reads are sub-millisecond, a submit is one transaction, a slow
    // database shows in the top buckets.
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

/// Request counts and latencies by route and status.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Latency,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
        }
    }
}

impl HttpMetrics {
    /// Registers under `orchestrator_http_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "orchestrator_http_requests",
            "API requests answered, by method, route template and status",
            self.requests.clone(),
        );
        registry.register(
            "orchestrator_http_request_duration_seconds",
            "Time to answer an API request (to the response head), by method and route template",
            self.duration.clone(),
        );
    }

    /// Records one answer (the middleware's job; public so tools can fill an exposition).
    pub fn observe(&self, method: &Method, route: &str, status: u16, seconds: f64) {
        let method = method_label(method);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: route.to_owned(),
                status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabels {
                method,
                route: route.to_owned(),
            })
            .observe(seconds);
    }
}

fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::HEAD,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN
        .iter()
        .find(|m| *m == method)
        .map_or("OTHER", Method::as_str)
}

/// The middleware: times the inner service and counts its answer.
pub(super) async fn record(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        for (method, label) in [
            (Method::GET, "GET"),
            (Method::DELETE, "DELETE"),
            (Method::from_bytes(b"BREW").unwrap(), "OTHER"),
            (Method::from_bytes(b"get").unwrap(), "OTHER"),
        ] {
            assert_eq!(method_label(&method), label, "{method}");
        }
    }
}
