//! Extractors whose every rejection is an [`ApiError`]: the authenticated caller, JSON bodies
//! (content type, size, syntax, unknown fields — each problem with its JSON path), raw JSON
//! bytes, path parameters and query strings.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use jobs::{Problem, ProblemCode};
use serde::de::DeserializeOwned;

use super::auth::{AuthError, Caller};
use super::error::ApiError;
use super::state::ApiState;

/// The authenticated caller (401 without a valid bearer token). Its name goes into the
/// request's span; the token goes nowhere.
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

impl FromRequestParts<ApiState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let header = match parts.headers.get(header::AUTHORIZATION) {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| {
                AuthError::Unauthenticated("the Authorization header is not printable ASCII".into())
            })?),
        };
        let caller = state.auth.authenticate(header)?;
        tracing::Span::current().record("caller", caller.name.as_str());
        Ok(Self(caller))
    }
}

/// Refuses bodies that do not say they are JSON (`application/json` or `…+json`).
pub fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let unsupported = |what: String| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            format!("{what}; send the body as JSON with \"Content-Type: application/json\""),
        )
    };
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(unsupported("the request has no Content-Type".into()));
    };
    let mime = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    if json {
        Ok(())
    } else {
        let shown: String = mime.chars().take(100).collect();
        Err(unsupported(format!("content type {shown:?} is not JSON")))
    }
}

/// A JSON body's bytes, after the content-type and size checks (for bodies validated by
/// `jobs::parse_job`, which reports its own problems).
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

impl FromRequest<ApiState> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        Ok(Self(Bytes::from_request(req, state).await?))
    }
}

/// A JSON body deserialized into `T` (which should `deny_unknown_fields`); a failure names
/// the field's path and the kind of problem.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(Self)
    }
}

/// Deserializes JSON into `T`, turning a failure into a 400 with one located problem.
///
/// The text is read as a JSON value first and numbers with a zero fraction (`2.0`) become
/// integers: JSON does not tell `2.0` from `2`, and the published schemas' `integer` (JSON
/// Schema's) accepts both, so a client following them must not be refused by serde's `u32`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut value: serde_json::Value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| json_problem(&e.path().to_string(), e.inner()))?;
    de.end().map_err(|e| json_problem(".", &e))?;
    whole_numbers_as_integers(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|e| json_problem(&e.path().to_string(), e.inner()))
}

/// Rewrites every number with a zero fraction that fits an `i64` as that integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

fn json_problem(path: &str, inner: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    let text = inner.to_string();
    let code = match inner.classify() {
        Category::Syntax | Category::Eof | Category::Io => ProblemCode::MalformedJson,
        Category::Data if text.starts_with("unknown field") => ProblemCode::UnknownField,
        Category::Data if text.starts_with("missing field") => ProblemCode::MissingField,
        Category::Data if text.starts_with("invalid type") => ProblemCode::WrongType,
        Category::Data => ProblemCode::InvalidValue,
    };
    let path = match path {
        "." | "" => "$".to_owned(),
        p if p.starts_with('[') => format!("${p}"),
        p => format!("$.{p}"),
    };
    let problem = Problem {
        code,
        path,
        message: text,
    };
    ApiError::bad_request(
        "invalid-request",
        format!("the request body is not acceptable: {problem}"),
    )
    .with_problems(vec![problem])
}

/// Path parameters; a bad one (not a UUID, not a number) is a 400.
#[derive(Debug)]
pub struct PathParam<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<ApiState> for PathParam<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(v))
    }
}

/// A query string; unknown or malformed parameters are a 400.
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<ApiState> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map_err(ApiError::from)?;
        Ok(Self(v))
    }
}

/// Reads a page cursor given by a client: the last item's key (`what` names it in the error),
/// which the API itself returned as `nextCursor`.
pub fn page_cursor<T: std::str::FromStr>(
    cursor: Option<&str>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<T>().map_err(|_| {
                ApiError::bad_request(
                    "invalid-query",
                    format!("cursor is not one this API returned ({what})"),
                )
            })
        })
        .transpose()
}

/// Checks a page size given by a client: 1–1000, 50 by default.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(50),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid-query",
            format!("limit {n} is out of range; use 1 to 1000"),
        )),
    }
}
