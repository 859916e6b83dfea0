//! Small RabbitMQ helpers shared by the publisher, the intake and the outbox relay:
//! connecting with lapin's auto-recovery, reading message properties, and turning our JSON
//! header maps into AMQP field tables.

use chrono::{DateTime, Utc};
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::Value;

use crate::error::Result;

/// Header carrying the publish time in milliseconds since the epoch (the AMQP `timestamp`
/// property has whole seconds only); set by our publisher, read by the intake.
pub const PUBLISHED_AT_MS_HEADER: &str = "x-orchestrator-published-at-ms";
/// Dead-letter header: the typed reason (`invalid`, `unknown-namespace`, …).
pub const REASON_HEADER: &str = "x-orchestrator-reason";
/// Dead-letter header: the human sentence.
pub const MESSAGE_HEADER: &str = "x-orchestrator-message";
/// Dead-letter header: every problem, as an array of tables `{code, path, message}`.
pub const PROBLEMS_HEADER: &str = "x-orchestrator-problems";
/// Dead-letter header: the problems' codes, comma-separated (easy to filter on).
pub const PROBLEM_CODES_HEADER: &str = "x-orchestrator-problem-codes";
/// Where a job message comes from when not a plain publisher: `cron` for schedule fires.
pub const SOURCE_HEADER: &str = "x-orchestrator-source";
/// Dead-letter header: the job id, when known.
pub const JOB_ID_HEADER: &str = "x-orchestrator-job-id";
/// Dead-letter header: the id of the store's dead-letter record (for requeue/purge).
pub const DEAD_LETTER_ID_HEADER: &str = "x-orchestrator-dead-letter-id";
/// Dead-letter header: the routing key the message was first published with.
pub const ORIGINAL_ROUTING_KEY_HEADER: &str = "x-orchestrator-original-routing-key";
/// Dead-letter header: `true` when the stored and copied body is cut short (too large).
pub const BODY_TRUNCATED_HEADER: &str = "x-orchestrator-body-truncated";

/// Connects with lapin's automatic recovery on: after a broker restart the connection,
/// channels, declarations, QoS and consumers come back by themselves; callers only wait
/// (`Channel::wait_for_recovery`) and re-publish what was in flight. `name` shows in the
/// broker's connection list (`rabbitmqctl list_connections client_properties`).
pub async fn connect(url: &str, name: &str) -> Result<Connection> {
    let props = ConnectionProperties::default()
        .enable_auto_recover()
        .with_connection_name(LongString::from(name.as_bytes()));
    Ok(Connection::connect(url, props).await?)
}

/// Connects without lapin's recovery: the first loss of the connection fails every consumer
/// and channel call on it, and the owner starts a new session. The intake uses this: after a
/// broker restart under load, lapin's recovery was seen to leave its consumers silent for good
/// (no delivery, no error) while the queues filled; a fresh session redeclares and consumes
/// again, and what was delivered but not acked comes back and is stored once (by job id).
pub async fn connect_without_recovery(url: &str, name: &str) -> Result<Connection> {
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(name.as_bytes()));
    Ok(Connection::connect(url, props).await?)
}

/// A header's value as text (long or short string), if present.
pub fn header_str(props: &BasicProperties, key: &str) -> Option<String> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// A header's value as an integer, if present and integral.
pub fn header_i64(props: &BasicProperties, key: &str) -> Option<i64> {
    let headers = props.headers().as_ref()?;
    match headers.inner().get(key)? {
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// When the publisher says it published: our millisecond header, else the AMQP `timestamp`
/// property (seconds), else unknown.
pub fn published_at(props: &BasicProperties) -> Option<DateTime<Utc>> {
    if let Some(ms) = header_i64(props, PUBLISHED_AT_MS_HEADER) {
        return DateTime::from_timestamp_millis(ms);
    }
    let secs = (*props.timestamp())?;
    DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)
}

/// A property's short string as `String`.
pub fn prop_str(value: &Option<ShortString>) -> Option<String> {
    value.as_ref().map(|s| s.as_str().to_owned())
}

/// JSON → AMQP value: strings become long strings, integers 64-bit, objects tables, arrays
/// arrays, null void.
pub fn json_to_amqp(value: &Value) -> AMQPValue {
    match value {
        Value::Null => AMQPValue::Void,
        Value::Bool(b) => AMQPValue::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => AMQPValue::LongLongInt(i),
            None => AMQPValue::Double(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => AMQPValue::LongString(LongString::from(s.as_bytes())),
        Value::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items.iter().map(json_to_amqp).collect::<Vec<_>>(),
        )),
        Value::Object(_) => AMQPValue::FieldTable(json_to_table(value)),
    }
}

/// A JSON object as a field table (keys longer than 255 bytes are skipped: AMQP cannot carry
/// them). Anything but an object gives an empty table.
pub fn json_to_table(value: &Value) -> FieldTable {
    let mut table = FieldTable::default();
    if let Value::Object(map) = value {
        for (k, v) in map {
            if let Ok(key) = ShortString::try_new(k.as_str()) {
                table.insert(key, json_to_amqp(v));
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_headers_become_amqp_tables() {
        let t = json_to_table(&json!({
            "x-orchestrator-reason": "invalid",
            "n": 3,
            "ok": true,
            "problems": [{"code": "wrong-type", "path": "$.name"}],
            "f": 1.5,
            "none": null
        }));
        let inner = t.inner();
        assert_eq!(
            inner.get("x-orchestrator-reason"),
            Some(&AMQPValue::LongString("invalid".into()))
        );
        assert_eq!(inner.get("n"), Some(&AMQPValue::LongLongInt(3)));
        assert_eq!(inner.get("ok"), Some(&AMQPValue::Boolean(true)));
        assert_eq!(inner.get("f"), Some(&AMQPValue::Double(1.5)));
        assert_eq!(inner.get("none"), Some(&AMQPValue::Void));
        let Some(AMQPValue::FieldArray(arr)) = inner.get("problems") else {
            panic!("problems is an array")
        };
        assert_eq!(arr.as_slice().len(), 1);
    }

    #[test]
    fn published_at_prefers_the_millisecond_header() {
        let mut headers = FieldTable::default();
        headers.insert(
            PUBLISHED_AT_MS_HEADER.into(),
            AMQPValue::LongLongInt(1_700_000_000_123),
        );
        let props = BasicProperties::default()
            .with_timestamp(1_600_000_000)
            .with_headers(headers);
        assert_eq!(
            published_at(&props).unwrap().timestamp_millis(),
            1_700_000_000_123
        );
        let props = BasicProperties::default().with_timestamp(1_600_000_000);
        assert_eq!(published_at(&props).unwrap().timestamp(), 1_600_000_000);
        assert!(published_at(&BasicProperties::default()).is_none());
    }
}
