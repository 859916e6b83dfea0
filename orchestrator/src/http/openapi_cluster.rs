//! The OpenAPI entries of `/v1/cluster` and `/v1/whoami` (the routes the console added), kept
//! beside [`super::openapi`] and merged into its document.

use serde_json::{Map, Value, json};

use super::openapi::{ok, op, r, responses};

/// Adds `extra`'s entries to the object `base`.
pub(super) fn extend(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The paths.
pub(super) fn paths() -> Value {
    json!({
        "/v1/cluster": {
            "get": op("getCluster", "cluster", "The cluster per pool: allocatable, requested, reserved by the capacity ledger, placeholders; quotas of the token's namespaces", "read", vec![], None, responses(vec![
                ("200", ok("The summary.", r("ClusterSummary"))),
            ])),
        },
        "/v1/whoami": {
            "get": op("whoami", "operations", "The token's name, roles and namespaces (clients hide what it may not do; the server still checks)", "read", vec![], None, responses(vec![
                ("200", ok("The caller.", r("Identity"))),
            ])),
        },
    })
}

/// The schemas.
pub(super) fn schemas() -> Value {
    let amounts = json!({
        "type": "object",
        "required": ["cpuMillis", "memoryBytes", "pods"],
        "properties": {
            "cpuMillis": {"type": "integer", "description": "CPU in millicores."},
            "memoryBytes": {"type": "integer", "description": "Memory in bytes."},
            "pods": {"type": "integer", "description": "Pod slots."}
        }
    });
    let mut m = Map::new();
    m.insert("Amounts".into(), amounts);
    m.insert(
        "PoolSummary".into(),
        json!({
            "type": "object",
            "properties": {
                "name": {"type": ["string", "null"], "description": "The pool label's value; null for nodes without it."},
                "nodes": {"type": "integer"},
                "maxNodes": {"type": ["integer", "null"], "description": "For autoscaling pools: the most nodes it may have."},
                "unschedulable": {"type": "integer", "description": "Cordoned nodes."},
                "allocatable": r("Amounts"),
                "requested": {"allOf": [r("Amounts")], "description": "Requests of bound, non-terminal pods (placeholders included)."},
                "reserved": {"allOf": [r("Amounts")], "description": "Promised by the ledger to admitted applications, not yet carried by bound pods."},
                "placeholders": {"type": "object", "properties": {"pods": {"type": "integer"}, "requested": r("Amounts")}}
            }
        }),
    );
    m.insert(
        "ClusterSummary".into(),
        json!({
            "type": "object",
            "required": ["ready", "pools", "reservations", "pendingPlaceholders", "quotas"],
            "properties": {
                "ready": {"type": "boolean", "description": "Every watch has synced; before that the figures are partial."},
                "pools": {"type": "array", "items": r("PoolSummary")},
                "reservations": {"type": "integer", "description": "Applications holding a ledger reservation."},
                "pendingPlaceholders": {"type": "integer", "description": "Placeholder pods not bound yet."},
                "quotas": {"type": "object", "description": "By namespace (only those the token may access).", "additionalProperties": {
                    "type": "object",
                    "properties": {"hard": r("Amounts"), "used": r("Amounts")}
                }}
            }
        }),
    );
    m.insert(
        "Identity".into(),
        json!({
            "type": "object",
            "required": ["name", "roles", "namespaces", "allNamespaces", "authDisabled"],
            "properties": {
                "name": {"type": "string", "description": "The token's name (never the token)."},
                "roles": {"type": "array", "items": {"type": "string", "enum": ["read", "submit", "admin"]}, "description": "Implied roles included."},
                "namespaces": {"type": "array", "items": {"type": "string"}, "description": "Served namespaces the token may access."},
                "allNamespaces": {"type": "boolean"},
                "authDisabled": {"type": "boolean"}
            }
        }),
    );
    Value::Object(m)
}
