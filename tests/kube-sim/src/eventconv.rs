//! `events.k8s.io/v1` is a second view of the core/v1 Events store, as in the real
//! API server: the two shapes convert into each other (`regarding` ↔ `involvedObject`,
//! `note` ↔ `message`, `deprecated*` ↔ `count`/`firstTimestamp`/`lastTimestamp`/`source`).

use serde_json::{Map, Value, json};

fn copy(from: &Value, to: &mut Map<String, Value>, src: &str, dst: &str) {
    if let Some(v) = from.get(src).filter(|v| !v.is_null()) {
        to.insert(dst.to_string(), v.clone());
    }
}

/// core/v1 Event → events.k8s.io/v1 Event.
pub fn core_to_v1(core: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    m.insert("kind".into(), json!("Event"));
    copy(core, &mut m, "metadata", "metadata");
    copy(core, &mut m, "eventTime", "eventTime");
    copy(core, &mut m, "series", "series");
    copy(core, &mut m, "reportingComponent", "reportingController");
    copy(core, &mut m, "reportingInstance", "reportingInstance");
    copy(core, &mut m, "action", "action");
    copy(core, &mut m, "reason", "reason");
    copy(core, &mut m, "involvedObject", "regarding");
    copy(core, &mut m, "related", "related");
    copy(core, &mut m, "message", "note");
    copy(core, &mut m, "type", "type");
    copy(core, &mut m, "source", "deprecatedSource");
    copy(core, &mut m, "firstTimestamp", "deprecatedFirstTimestamp");
    copy(core, &mut m, "lastTimestamp", "deprecatedLastTimestamp");
    copy(core, &mut m, "count", "deprecatedCount");
    if !m.contains_key("eventTime") {
        // Old-style events have no eventTime; derive one so the required field is set.
        let t = core
            .get("firstTimestamp")
            .and_then(Value::as_str)
            .unwrap_or("1970-01-01T00:00:00Z");
        m.insert("eventTime".into(), json!(t.replace('Z', ".000000Z")));
    }
    Value::Object(m)
}

/// events.k8s.io/v1 Event → core/v1 Event.
pub fn v1_to_core(v1: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Event"));
    copy(v1, &mut m, "metadata", "metadata");
    copy(v1, &mut m, "eventTime", "eventTime");
    copy(v1, &mut m, "series", "series");
    copy(v1, &mut m, "reportingController", "reportingComponent");
    copy(v1, &mut m, "reportingInstance", "reportingInstance");
    copy(v1, &mut m, "action", "action");
    copy(v1, &mut m, "reason", "reason");
    copy(v1, &mut m, "regarding", "involvedObject");
    copy(v1, &mut m, "related", "related");
    copy(v1, &mut m, "note", "message");
    copy(v1, &mut m, "type", "type");
    copy(v1, &mut m, "deprecatedSource", "source");
    copy(v1, &mut m, "deprecatedFirstTimestamp", "firstTimestamp");
    copy(v1, &mut m, "deprecatedLastTimestamp", "lastTimestamp");
    copy(v1, &mut m, "deprecatedCount", "count");
    if !m.contains_key("involvedObject") {
        m.insert("involvedObject".into(), json!({}));
    }
    Value::Object(m)
}

/// Translate an events.k8s.io field selector field to the core field.
pub fn field_to_core(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("regarding.") {
        format!("involvedObject.{rest}")
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let core = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "R", "message": "m", "type": "Normal", "count": 2, "firstTimestamp": "2025-01-01T00:00:00Z",
            "eventTime": "2025-01-01T00:00:00.000000Z", "reportingComponent": "x", "reportingInstance": "y", "source": {"component": "x"}});
        assert_eq!(v1_to_core(&core_to_v1(&core)), core);
    }
}
