//! Patch application: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and the
//! strategic merge patch of built-in types (lists merged by their patch merge keys).
//! Server-side apply lives in [`crate::fields`].

use serde_json::Value;

use crate::error::ApiError;

/// The patch types of the `Content-Type` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// From a `Content-Type` header value.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml"
            | "application/apply-patch+json"
            | "application/apply-patch+cbor" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// The media types a resource accepts for PATCH (custom resources: no strategic merge).
pub fn supported(custom: bool) -> &'static [&'static str] {
    if custom {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/apply-patch+yaml",
        ]
    } else {
        &[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ]
    }
}

fn rejected(msg: String) -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    e.details = Some(
        serde_json::json!({"causes": [{"reason": "UnexpectedServerResponse", "message": msg}]}),
    );
    e
}

/// Apply a JSON merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// Apply a JSON patch; a malformed patch is 400, a failing operation (e.g. `test`) 422.
pub fn json(target: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let ops: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    json_patch::patch(target, &ops).map_err(|e| rejected(e.to_string()))
}

fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "volumeMounts"
        | "imagePullSecrets"
        | "resourceClaims"
        | "volumeDevices" => Some("name"),
        "conditions" => Some("type"),
        "ownerReferences" => Some("uid"),
        "ports" => Some("containerPort"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        _ => None,
    }
}

fn is_primitive_set(field: &str) -> bool {
    field == "finalizers"
}

/// Apply a strategic merge patch of a built-in object.
pub fn strategic(target: &mut Value, patch: &Value) {
    sm(target, patch);
}

fn sm(dst: &mut Value, patch: &Value) {
    let (Some(d), Some(p)) = (dst.as_object_mut(), patch.as_object()) else {
        *dst = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        if let Some(m) = clean.as_object_mut() {
            m.remove("$patch");
        }
        *dst = clean;
        return;
    }
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            d.remove(k);
            continue;
        }
        match (d.get_mut(k), v) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) => sm(existing, v),
            (Some(Value::Array(existing)), Value::Array(items)) => {
                if let Some(key) = merge_key(k) {
                    merge_list(existing, items, key);
                } else if is_primitive_set(k) {
                    for it in items {
                        if !existing.contains(it) {
                            existing.push(it.clone());
                        }
                    }
                } else {
                    *existing = items.clone();
                }
            }
            _ => {
                let mut clean = v.clone();
                strip_directives(&mut clean);
                d.insert(k.clone(), clean);
            }
        }
    }
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for it in items {
        let id = it.get(key).cloned();
        let delete = it.get("$patch").and_then(Value::as_str) == Some("delete");
        let pos = id
            .as_ref()
            .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (Some(i), false) => sm(&mut existing[i], it),
            (None, true) => {}
            (None, false) => {
                let mut clean = it.clone();
                strip_directives(&mut clean);
                existing.push(clean);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
            "metadata": {"finalizers": ["f1"]}});
        strategic(
            &mut pod,
            &json!({"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}]},
            "metadata": {"finalizers": ["f2"]}}),
        );
        assert_eq!(pod["spec"]["containers"][0]["image"], "x");
        assert_eq!(pod["spec"]["containers"][1]["image"], "z");
        assert_eq!(pod["spec"]["containers"][2]["name"], "c");
        assert_eq!(pod["metadata"]["finalizers"], json!(["f1", "f2"]));
        strategic(
            &mut pod,
            &json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        );
        assert_eq!(pod["spec"]["containers"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn json_patch_test_failure_is_422() {
        let mut v = json!({"a": 1});
        let err = json(&mut v, &json!([{"op": "test", "path": "/a", "value": 2}])).unwrap_err();
        assert_eq!(err.code, 422);
        assert!(json(&mut v, &json!({"op": "bogus"})).unwrap_err().code == 400);
    }
}
