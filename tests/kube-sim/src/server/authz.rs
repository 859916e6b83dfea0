//! The request's side of authentication and RBAC: request attributes as the real
//! request-info resolver derives them (a namespace's own name is its namespace; a
//! list or watch with a `metadata.name` field selector carries that name), the gate
//! every API request passes when `[auth]` is on, and
//! `authorization.k8s.io/v1` SelfSubjectAccessReview (what `kubectl auth can-i` calls).

use std::sync::Arc;

use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{Value, json};

use crate::cluster::Shared;
use crate::error::ApiError;
use crate::rbac::{Attributes, Identity};
use crate::resources::Res;

use super::Target;
use super::query::Query;

/// The path of SelfSubjectAccessReviews.
pub const SSAR_PATH: &str = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
/// The path of SelfSubjectReviews (`kubectl auth whoami`).
pub const SSR_PATH: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";

/// Attributes of a resource request.
pub(super) fn resource_attributes(t: &Target, verb: &str, q: &Query) -> Attributes {
    let def = t.res.def();
    let mut name = t.name.clone().unwrap_or_default();
    if name.is_empty()
        && (verb == "list" || verb == "watch")
        && let Some(fs) = q.get("fieldSelector")
    {
        // `metadata.name=x` (or `==`) among the terms: the request is about that object.
        for term in fs.split(',') {
            let term = term.trim();
            if let Some(v) = term
                .strip_prefix("metadata.name==")
                .or_else(|| term.strip_prefix("metadata.name="))
                && !v.is_empty()
                && !v.contains('/')
            {
                name = v.to_string();
            }
        }
    }
    let namespace = match (&t.ns, t.res) {
        (Some(ns), _) => ns.clone(),
        (None, Res::Namespace) => t.name.clone().unwrap_or_default(),
        (None, _) => String::new(),
    };
    Attributes::resource(
        verb,
        def.group,
        def.plural,
        t.sub.as_deref().unwrap_or(""),
        &namespace,
        &name,
    )
}

/// Authenticate and authorize. `Ok(None)` when auth is off; `Err` is the 401 or 403.
pub(super) fn gate(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    what: &Attributes,
) -> Result<Option<Identity>, ApiError> {
    let mut c = shared.lock();
    let c = &mut *c;
    let Some(auth) = c.auth.as_mut() else {
        return Ok(None);
    };
    let header = headers.get("authorization").and_then(|v| v.to_str().ok());
    let who = auth.authenticate(header)?;
    let d = auth.authorize(&c.store, &who, what);
    if d.allowed {
        Ok(Some(who))
    } else {
        Err(crate::rbac::forbidden(&who, what, &d.reason))
    }
}

/// Authenticate only (for paths that are not found anyway).
pub(super) fn authenticate(shared: &Arc<Shared>, headers: &HeaderMap) -> Result<(), ApiError> {
    let c = shared.lock();
    match &c.auth {
        None => Ok(()),
        Some(a) => a
            .authenticate(headers.get("authorization").and_then(|v| v.to_str().ok()))
            .map(|_| ()),
    }
}

/// The attributes a non-resource request is authorized with.
pub(super) fn non_resource(method: &Method, path: &str) -> Attributes {
    Attributes::non_resource(&method.as_str().to_ascii_lowercase(), path)
}

/// `POST .../selfsubjectaccessreviews`: may the caller do what `spec` describes?
/// `body` is the decoded JSON review.
pub(super) fn self_subject_access_review(
    shared: &Arc<Shared>,
    who: Option<&Identity>,
    body: Value,
) -> Result<Value, ApiError> {
    let kind = "SelfSubjectAccessReview";
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: expected an object"
        )));
    }
    for (field, want) in [("apiVersion", "authorization.k8s.io/v1"), ("kind", kind)] {
        if let Some(v) = body.get(field).and_then(Value::as_str)
            && v != want
        {
            return Err(ApiError::bad_request(format!(
                "the {field} in the data ({v}) does not match the expected {field} ({want})"
            )));
        }
    }
    let s = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or("");
    let what = match (
        body.pointer("/spec/resourceAttributes"),
        body.pointer("/spec/nonResourceAttributes"),
    ) {
        (Some(_), None) => Attributes::resource(
            s("/spec/resourceAttributes/verb"),
            s("/spec/resourceAttributes/group"),
            s("/spec/resourceAttributes/resource"),
            s("/spec/resourceAttributes/subresource"),
            s("/spec/resourceAttributes/namespace"),
            s("/spec/resourceAttributes/name"),
        ),
        (None, Some(_)) => Attributes::non_resource(
            s("/spec/nonResourceAttributes/verb"),
            s("/spec/nonResourceAttributes/path"),
        ),
        (both, _) => {
            let msg = if both.is_some() {
                "spec.nonResourceAttributes: Invalid value: \"null\": cannot be specified in combination with resourceAttributes"
            } else {
                "spec.resourceAttributes: Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified"
            };
            return Err(ApiError::new(
                422,
                "Invalid",
                format!("{kind}.authorization.k8s.io \"\" is invalid: {msg}"),
            ));
        }
    };
    let (allowed, reason) = {
        let mut c = shared.lock();
        let c = &mut *c;
        match (c.auth.as_mut(), who) {
            (Some(auth), Some(who)) => {
                let policy = auth.policy(&c.store);
                let d = crate::rbac::authorize(who, &what, &policy);
                (d.allowed, d.reason)
            }
            // Without [auth] everything is allowed, as with the AlwaysAllow authorizer.
            _ => (true, String::new()),
        }
    };
    let mut out = body;
    let m = crate::object::as_map(&mut out);
    m.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
    m.insert("kind".into(), json!(kind));
    m.insert("metadata".into(), json!({"creationTimestamp": null}));
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    m.insert("status".into(), status);
    Ok(out)
}

/// The review endpoints (SelfSubjectAccessReview, SelfSubjectReview): only `POST`.
pub(super) fn review(
    shared: &Arc<Shared>,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed());
    }
    let (group, resource) = if path == SSR_PATH {
        ("authentication.k8s.io", "selfsubjectreviews")
    } else {
        ("authorization.k8s.io", "selfsubjectaccessreviews")
    };
    let what = Attributes::resource("create", group, resource, "", "", "");
    let who = gate(shared, headers, &what)?;
    let v = super::codec::decode_body(headers, body, false)?;
    let out = if path == SSR_PATH {
        self_subject_review(who.as_ref(), &v)?
    } else {
        self_subject_access_review(shared, who.as_ref(), v)?
    };
    Ok(super::json_response(
        201,
        serde_json::to_vec(&out).unwrap_or_default(),
        "application/json",
    ))
}

/// `POST .../selfsubjectreviews`: who the caller is (anonymous without `[auth]`).
fn self_subject_review(who: Option<&Identity>, body: &Value) -> Result<Value, ApiError> {
    let kind = "SelfSubjectReview";
    if !body.is_object() {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: expected an object"
        )));
    }
    let (name, groups) = match who {
        Some(w) => (w.name.clone(), w.groups.clone()),
        None => (
            "system:anonymous".to_string(),
            vec!["system:unauthenticated".to_string()],
        ),
    };
    Ok(
        json!({"kind": kind, "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": {"username": name, "groups": groups}}}),
    )
}
