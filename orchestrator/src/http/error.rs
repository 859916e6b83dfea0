//! The one error shape of the API: `{"error": code, "message": sentence, "problems": [...]}`
//! with the matching status. Every refusal — authentication, validation, a missing job, an
//! extractor rejection, an outage — goes through [`ApiError`], so clients parse one format.

use axum::Json;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobs::Problem;
use serde::Serialize;

use super::auth::AuthError;

/// A refusal or failure, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine code (`invalid-job`, `forbidden`, …).
    pub code: &'static str,
    /// One sentence for humans.
    pub message: String,
    /// Field-level problems (validation errors), possibly empty.
    pub problems: Vec<Problem>,
}

/// The body of every refusal (the OpenAPI document's `Error`).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Body<'a> {
    /// Stable code: `unauthenticated`, `forbidden`, `not-found`, `conflict`, `invalid-job`,
    /// `invalid-schedule`, `invalid-request`, `invalid-query`, `invalid-path`,
    /// `unknown-namespace`, `payload-too-large`, `unsupported-media-type`,
    /// `method-not-allowed`, `unavailable`, `internal`.
    error: &'a str,
    /// One sentence for humans.
    message: &'a str,
    /// Field-level problems (invalid jobs, schedules and bodies), each at its JSON path.
    #[serde(skip_serializing_if = "<[Problem]>::is_empty")]
    problems: &'a [Problem],
}

impl ApiError {
    /// An error without field problems.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            problems: Vec::new(),
        }
    }

    /// Adds field problems.
    pub fn with_problems(mut self, problems: Vec<Problem>) -> Self {
        self.problems = problems;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422: well formed (the schema accepts it) but refused by a rule the schema cannot state
    /// (the config's namespaces, node types and limits, fields that exclude each other).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Maps an extractor rejection's status to a code, keeping axum's sentence.
    fn rejection(status: StatusCode, text: String) -> Self {
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
            s if s.is_server_error() => "internal",
            _ => "bad-request",
        };
        Self::new(status, code, text)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: self.code,
            message: &self.message,
            problems: &self.problems,
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"orchestrator\""),
            );
        }
        response
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated(m) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", m)
            }
            AuthError::Forbidden(m) => Self::forbidden(m),
        }
    }
}

impl From<queues::Error> for ApiError {
    fn from(e: queues::Error) -> Self {
        use queues::Error as E;
        match &e {
            E::NotFound(_) | E::ScheduleNotFound(_) => Self::not_found(e.to_string()),
            E::StateConflict { .. } | E::IllegalTransition { .. } | E::ScheduleExists(_) => {
                Self::conflict(e.to_string())
            }
            E::InvalidArgument(m) => Self::bad_request("bad-request", m.clone()),
            _ if e.is_retryable() => {
                tracing::warn!(error = %e, "job store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the job store is unavailable; try again shortly",
                )
            }
            _ => {
                tracing::error!(error = %e, kind = e.metric_label(), "request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!(
                        "internal error ({}); see the orchestrator's log",
                        e.metric_label()
                    ),
                )
            }
        }
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        Self::rejection(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        let mut e = Self::rejection(r.status(), r.body_text());
        if e.status.is_client_error() {
            e.code = "invalid-path";
            e.status = StatusCode::BAD_REQUEST;
        }
        e
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        let mut e = Self::rejection(r.status(), r.body_text());
        e.code = "invalid-query";
        e
    }
}
