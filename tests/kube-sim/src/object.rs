//! Small helpers over JSON objects: metadata access, timestamps and random names.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `metadata.<field>` as a string.
pub fn meta_str<'a>(v: &'a Value, field: &str) -> Option<&'a str> {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
}

/// `metadata.name` or `""`.
pub fn name(v: &Value) -> &str {
    meta_str(v, "name").unwrap_or("")
}

/// `metadata.namespace` or `""`.
pub fn namespace(v: &Value) -> &str {
    meta_str(v, "namespace").unwrap_or("")
}

/// A string map under `metadata.<field>` (labels, annotations).
pub fn meta_map(v: &Value, field: &str) -> BTreeMap<String, String> {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Make `v` an object (if it is not one) and return its map.
pub fn as_map(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("the value was just made an object"),
    }
}

/// The `metadata` object, created if missing.
pub fn metadata_mut(v: &mut Value) -> &mut Map<String, Value> {
    obj_field_mut(v, "metadata")
}

/// An object's field as a mutable map, created if missing or not an object.
pub fn obj_field_mut<'a>(v: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    as_map(as_map(v).entry(field).or_insert(Value::Null))
}

/// Owner uids from `metadata.ownerReferences`.
pub fn owner_uids(v: &Value) -> Vec<String> {
    v.get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// RFC 3339 time with seconds, as `metav1.Time` prints.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// RFC 3339 time with microseconds, as `metav1.MicroTime` prints.
pub fn micro_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The wall clock now (object timestamps use wall time; durations use the sim clock).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

const NAME_CHARS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The 5-character suffix `generateName` appends.
pub fn random_suffix(rng: &mut impl rand::Rng) -> String {
    (0..5)
        .map(|_| NAME_CHARS[rng.random_range(0..NAME_CHARS.len())] as char)
        .collect()
}

/// `n` random lowercase hex digits.
pub fn random_hex(rng: &mut impl rand::Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from_digit(rng.random_range(0..16u32), 16).unwrap_or('0'))
        .collect()
}

/// A random RFC 4122 uid.
pub fn random_uid(rng: &mut impl rand::Rng) -> String {
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}
