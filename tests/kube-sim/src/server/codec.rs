//! Content negotiation: request bodies by `Content-Type` (JSON, YAML, or Kubernetes
//! protobuf for built-in kinds; custom resources have no protobuf form, as with the
//! real server, so those get 415), and responses by `Accept`: a client that lists
//! protobuf first (client-go sends `application/vnd.kubernetes.protobuf,application/json`)
//! gets protobuf for built-in kinds and JSON otherwise.

use axum::body::{Body, to_bytes};
use axum::http::{self, HeaderMap};
use axum::response::Response;
use serde_json::Value;

use crate::error::ApiError;
use crate::protobuf;

fn media_type(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decode a create/update body. `custom`: the target is a custom resource.
pub(super) fn decode_body(
    headers: &HeaderMap,
    body: &[u8],
    custom: bool,
) -> Result<Value, ApiError> {
    match media_type(headers, "content-type").as_str() {
        protobuf::MEDIA_TYPE => {
            if custom {
                return Err(ApiError::unsupported_media_type(
                    protobuf::MEDIA_TYPE,
                    &["application/json", "application/yaml"],
                ));
            }
            if body.is_empty() {
                return Err(ApiError::bad_request("the body of the request is empty"));
            }
            protobuf::decode(body).map_err(ApiError::bad_request)
        }
        "application/yaml" => super::parse_body(body, true),
        _ => super::parse_body(body, false),
    }
}

/// Decode an optional body (DeleteOptions): `None` when empty.
pub(super) fn decode_optional(headers: &HeaderMap, body: &[u8]) -> Result<Option<Value>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    decode_body(headers, body, false).map(Some)
}

/// Whether the client's first choice is protobuf (plain objects, not `as=Table` etc.).
pub(super) fn prefers_protobuf(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| {
        let mut parts = first.split(';').map(str::trim);
        parts.next() == Some(protobuf::MEDIA_TYPE) && parts.all(|p| !p.starts_with("as="))
    })
}

/// Turn a successful JSON response into protobuf when the client prefers it and the
/// kind has a protobuf form; anything else passes unchanged.
pub(super) async fn negotiate(resp: Response, accept: &str) -> Response {
    let json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/json");
    if !prefers_protobuf(accept) || !resp.status().is_success() || !json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => return super::error_response(&ApiError::internal(e.to_string())),
    };
    let encoded = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| protobuf::encode(&v));
    match encoded {
        Some(pb) => {
            parts.headers.insert(
                "content-type",
                http::HeaderValue::from_static(protobuf::MEDIA_TYPE),
            );
            parts.headers.remove("content-length");
            Response::from_parts(parts, Body::from(pb))
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_preferences() {
        for (accept, want) in [
            ("application/vnd.kubernetes.protobuf,application/json", true),
            ("application/vnd.kubernetes.protobuf", true),
            (
                "application/vnd.kubernetes.protobuf; q=0.9, application/json",
                true,
            ),
            (
                "application/json,application/vnd.kubernetes.protobuf",
                false,
            ),
            ("application/json", false),
            ("", false),
            ("*/*", false),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json",
                false,
            ),
        ] {
            assert_eq!(prefers_protobuf(accept), want, "{accept}");
        }
    }
}
