//! Decoding and validation of built-in objects: each body is round-tripped through the
//! k8s-openapi type (which checks types and required fields, and prunes unknown fields
//! like the real decoder), unknown fields are reported under `fieldValidation=Strict`,
//! and names are checked as DNS subdomains/labels.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, ResourceQuota};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::scheduling::v1::PriorityClass;
use serde_json::{Map, Value};

use crate::error::{ApiError, Cause};
use crate::resources::{Res, ResourceDef};

fn roundtrip<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, String> {
    let t: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(t).map_err(|e| e.to_string())
}

/// Decode a built-in object through its k8s-openapi type. Returns the pruned object and
/// the paths of unknown fields that were dropped.
pub fn canonicalize_builtin(res: Res, v: Value) -> Result<(Value, Vec<String>), ApiError> {
    let def = res.def();
    let original = v.clone();
    let out = match res {
        Res::Namespace => roundtrip::<Namespace>(v),
        Res::Node => roundtrip::<Node>(v),
        Res::Pod => roundtrip::<Pod>(v),
        Res::ResourceQuota => roundtrip::<ResourceQuota>(v),
        Res::Event => roundtrip::<Event>(v),
        Res::EventV1 => roundtrip::<EventV1>(v),
        Res::PriorityClass => roundtrip::<PriorityClass>(v),
        Res::Lease => roundtrip::<Lease>(v),
        Res::SparkApplication => Ok(v),
        Res::Role => roundtrip::<Role>(v),
        Res::ClusterRole => roundtrip::<ClusterRole>(v),
        Res::RoleBinding => roundtrip::<RoleBinding>(v),
        Res::ClusterRoleBinding => roundtrip::<ClusterRoleBinding>(v),
    }
    .map_err(|e| {
        ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            def.kind, def.version, def.kind
        ))
    })?;
    let mut unknown = Vec::new();
    dropped_paths(&original, &out, "", &mut unknown);
    Ok((out, unknown))
}

/// Paths present (non-null) in `a` but absent in `b`.
pub fn dropped_paths(a: &Value, b: &Value, prefix: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(am), Value::Object(bm)) => {
            for (k, av) in am {
                if av.is_null() {
                    continue;
                }
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match bm.get(k) {
                    None => out.push(p),
                    Some(bv) => dropped_paths(av, bv, &p, out),
                }
            }
        }
        (Value::Array(aa), Value::Array(ba)) => {
            for (i, (av, bv)) in aa.iter().zip(ba.iter()).enumerate() {
                dropped_paths(av, bv, &format!("{prefix}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The 400 the real server returns for unknown fields under `fieldValidation=Strict`.
pub fn strict_error(def: &ResourceDef, unknown: &[String]) -> ApiError {
    let list: Vec<String> = unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    ApiError::bad_request(format!(
        "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
        def.kind,
        def.version,
        def.kind,
        list.join(", ")
    ))
}

/// RFC 1123 label: lowercase alphanumerics and `-`, at most 63, alnum at both ends.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// RFC 1123 subdomain: dot-separated labels, at most 253.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Validate `metadata.name` for a resource (namespaces: DNS label; others: subdomain).
pub fn validate_name(res: Res, name: &str) -> Option<Cause> {
    if matches!(
        res,
        Res::Role | Res::ClusterRole | Res::RoleBinding | Res::ClusterRoleBinding
    ) {
        // RBAC names only have to be path segments (`system:discovery` is valid).
        let why = match name {
            "." => "may not be '.'",
            ".." => "may not be '..'",
            n if n.contains('/') => "may not contain '/'",
            n if n.contains('%') => "may not contain '%'",
            _ => return None,
        };
        return Some(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: \"{name}\": {why}"),
        ));
    }
    let ok = if res == Res::Namespace {
        is_dns_label(name)
    } else {
        is_dns_subdomain(name)
    };
    if ok {
        return None;
    }
    let msg = if res == Res::Namespace {
        LABEL_MSG
    } else {
        SUBDOMAIN_MSG
    };
    Some(Cause::new(
        "FieldValueInvalid",
        "metadata.name",
        format!("Invalid value: \"{name}\": {msg}"),
    ))
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// Kind-specific checks the real server makes on create and update (a subset).
pub fn validate_builtin(res: Res, v: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    match res {
        Res::Pod => {
            let containers = v.pointer("/spec/containers").and_then(Value::as_array);
            match containers {
                None => causes.push(Cause::new(
                    "FieldValueRequired",
                    "spec.containers",
                    "Required value",
                )),
                Some(cs) if cs.is_empty() => causes.push(Cause::new(
                    "FieldValueRequired",
                    "spec.containers",
                    "Required value",
                )),
                Some(cs) => {
                    for (i, c) in cs.iter().enumerate() {
                        if str_at(c, "/image").is_none_or(str::is_empty) {
                            causes.push(Cause::new(
                                "FieldValueRequired",
                                format!("spec.containers[{i}].image"),
                                "Required value",
                            ));
                        }
                        if let Some(n) = str_at(c, "/name")
                            && !is_dns_label(n)
                        {
                            causes.push(Cause::new(
                                "FieldValueInvalid",
                                format!("spec.containers[{i}].name"),
                                format!("Invalid value: \"{n}\": {LABEL_MSG}"),
                            ));
                        }
                        validate_requests(c, &format!("spec.containers[{i}]"), &mut causes);
                    }
                }
            }
        }
        Res::Lease => {
            if let Some(d) = v
                .pointer("/spec/leaseDurationSeconds")
                .and_then(Value::as_i64)
                && d <= 0
            {
                causes.push(Cause::new(
                    "FieldValueInvalid",
                    "spec.leaseDurationSeconds",
                    format!("Invalid value: {d}: must be greater than 0"),
                ));
            }
        }
        Res::PriorityClass => {
            if let Some(val) = v.get("value").and_then(Value::as_i64)
                && val > 1_000_000_000
                && !object_name(v).starts_with("system-")
            {
                causes.push(Cause::new(
                    "FieldValueForbidden",
                    "value",
                    "Forbidden: maximum allowed value of a user defined priority is 1000000000",
                ));
            }
            if let Some(p) = v.get("preemptionPolicy").and_then(Value::as_str)
                && p != "Never"
                && p != "PreemptLowerPriority"
            {
                causes.push(Cause::new(
                    "FieldValueNotSupported",
                    "preemptionPolicy",
                    format!("Unsupported value: \"{p}\": supported values: \"Never\", \"PreemptLowerPriority\""),
                ));
            }
        }
        _ => {}
    }
    causes
}

fn object_name(v: &Value) -> &str {
    crate::object::name(v)
}

fn validate_requests(c: &Value, path: &str, causes: &mut Vec<Cause>) {
    let empty = Map::new();
    let req = c
        .pointer("/resources/requests")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let lim = c
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (k, rq) in req {
        let (Some(rqs), Some(lms)) = (rq.as_str(), lim.get(k).and_then(Value::as_str)) else {
            continue;
        };
        if let (Some(a), Some(b)) = (
            crate::quantity::parse_milli(rqs),
            crate::quantity::parse_milli(lms),
        ) && a > b
        {
            causes.push(Cause::new(
                "FieldValueInvalid",
                format!("{path}.resources.requests"),
                format!(
                    "Invalid value: \"{rqs}\": must be less than or equal to {k} limit of {lms}"
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prunes_and_reports_unknown_fields() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}], "extra": true}});
        let (out, unknown) = canonicalize_builtin(Res::Pod, pod).unwrap();
        assert!(out.pointer("/spec/extra").is_none());
        assert_eq!(
            unknown,
            vec![
                "spec.containers[0].bogus".to_string(),
                "spec.extra".to_string()
            ]
        );
    }

    #[test]
    fn type_errors_are_bad_requests() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": "nope"}});
        let err = canonicalize_builtin(Res::Pod, pod).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message
                .starts_with("Pod in version \"v1\" cannot be handled as a Pod"),
            "{}",
            err.message
        );
    }
}
