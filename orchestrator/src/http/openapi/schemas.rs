//! The component schemas of the OpenAPI document.

use serde_json::{Value, json};

use super::r;

pub(super) fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let opt_time = json!({"type": ["string", "null"], "format": "date-time"});
    let opt_str = json!({"type": ["string", "null"]});
    let mut m = serde_json::Map::new();
    m.insert("Error".into(), json!({
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {"type": "string", "description": "Stable code: unauthenticated, forbidden, not-found, conflict, invalid-job, invalid-schedule, invalid-request, invalid-query, invalid-path, payload-too-large, unsupported-media-type, method-not-allowed, unavailable, internal."},
                "message": {"type": "string"},
                "problems": {"type": "array", "items": r("Problem")}
            }
        }));
    m.insert("Problem".into(), json!({
            "type": "object",
            "required": ["code", "path", "message"],
            "properties": {
                "code": {"type": "string", "description": "Machine-readable kind (unknown-field, invalid-name, unknown-namespace, …)."},
                "path": {"type": "string", "description": "JSON path of the field, `$` for the whole body."},
                "message": {"type": "string"}
            }
        }));
    m.insert("JobState".into(), json!({"type": "string", "enum": ["queued", "waiting", "submitted", "running", "succeeded", "failed", "retrying", "dead", "cancelled"]}));
    m.insert(
        "Priority".into(),
        json!({"type": "string", "enum": ["high", "normal"]}),
    );
    m.insert("DeadReason".into(), json!({"type": "string", "enum": ["invalid", "unknown-namespace", "never-fits", "expired", "retries-exhausted", "cancelled", "rejected", "unrecoverable"]}));
    m.insert("JobMessage".into(), json!({
            "type": "object",
            "description": "The job message (camelCase, unknown fields refused), as on AMQP: see the README's \"The job message\". `id` is the idempotency key (generated when absent).",
            "required": ["name", "namespace"],
            "properties": {
                "apiVersion": {"const": "v1"},
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 53},
                "namespace": {"type": "string"},
                "priority": r("Priority"),
                "type": {"type": "string", "enum": ["Scala", "Java", "Python", "R"]},
                "image": {"type": "string"},
                "mainApplicationFile": {"type": "string"},
                "mainClass": {"type": "string"},
                "arguments": {"type": "array", "items": {"type": "string"}},
                "sparkVersion": {"type": "string"},
                "sparkConf": {"type": "object", "additionalProperties": {"type": "string"}},
                "hadoopConf": {"type": "object", "additionalProperties": {"type": "string"}},
                "env": {"type": "object", "additionalProperties": {"type": "string"}},
                "javaOptions": {"type": "string"},
                "deps": {"type": "object"},
                "driver": {"type": "object", "description": "`{nodeType}` or `{cores, memory, memoryOverhead}`."},
                "executor": {"type": "object", "description": "`{nodeType}` or explicit resources, with `instances` or `dynamicAllocation`."},
                "spot": {"type": "boolean"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "volumes": {"type": "array", "items": {"type": "object"}},
                "retry": {"type": "object"},
                "ttl": {"type": "string", "description": "Duration such as `2h`."},
                "deadline": time.clone(),
                "timeout": {"type": "string"}
            }
        }));
    m.insert("JobAccepted".into(), json!({
            "type": "object",
            "required": ["id", "name", "namespace", "priority", "state", "duplicate"],
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "priority": r("Priority"),
                "state": r("JobState"),
                "duplicate": {"type": "boolean", "description": "True when this id was already accepted with the same content."}
            }
        }));
    m.insert(
        "JobSummary".into(),
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "priority": r("Priority"),
                "state": r("JobState"),
                "stateReason": opt_str.clone(),
                "attempt": {"type": "integer"},
                "enqueuedAt": time.clone(),
                "updatedAt": time.clone()
            }
        }),
    );
    m.insert("JobPage".into(), json!({
            "type": "object",
            "required": ["items", "next"],
            "properties": {
                "items": {"type": "array", "items": r("JobSummary")},
                "next": {"type": ["string", "null"], "description": "Cursor of the next page; null on the last."}
            }
        }));
    m.insert(
        "Transition".into(),
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "from": {"oneOf": [r("JobState"), {"type": "null"}]},
                "to": r("JobState"),
                "attempt": {"type": "integer"},
                "reason": opt_str.clone(),
                "message": opt_str.clone(),
                "details": {},
                "at": time.clone()
            }
        }),
    );
    m.insert("JobDetail".into(), json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "priority": r("Priority"),
                "state": r("JobState"),
                "reason": opt_str.clone(),
                "message": opt_str.clone(),
                "attempt": {"type": "integer"},
                "maxAttempts": {"type": "integer"},
                "retriesLeft": {"type": "integer"},
                "queuePosition": {"type": ["integer", "null"], "description": "1 = head of its queue; null when not pending."},
                "waiting": {"type": ["object", "null"], "description": "Why it waits: code, message, since, position."},
                "estimatedStartAt": {"type": ["string", "null"], "format": "date-time", "description": "Queued or waiting: when the leader's replay of the queue (same ordering, backfill and holds, runtimes learned from history) expects it to start; null otherwise or when the replay never starts it."},
                "sparkApplication": opt_str.clone(),
                "source": {"type": "string", "enum": ["amqp", "http", "cron"]},
                "enqueuedAt": time.clone(),
                "queuedAt": time.clone(),
                "updatedAt": time.clone(),
                "finishedAt": opt_time.clone(),
                "nextAttemptAt": opt_time.clone(),
                "expiresAt": opt_time.clone(),
                "history": {"type": "array", "items": r("Transition")},
                "job": r("JobMessage")
            }
        }));
    m.insert(
        "Cancelled".into(),
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "state": {"const": "cancelled"},
                "previousState": r("JobState"),
                "message": {"type": "string"}
            }
        }),
    );
    m.insert(
        "QueueList".into(),
        json!({
            "type": "object",
            "properties": {
                "queues": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "namespace": {"type": "string"},
                        "priority": r("Priority"),
                        "depth": {"type": "integer"},
                        "queued": {"type": "integer"},
                        "waiting": {"type": "integer"},
                        "oldestQueuedAt": opt_time.clone(),
                        "oldestWaitSeconds": {"type": ["number", "null"]},
                        "heads": {"type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "format": "uuid"},
                                "name": {"type": "string"},
                                "state": r("JobState"),
                                "position": {"type": "integer"},
                                "attempt": {"type": "integer"},
                                "queuedAt": time.clone(),
                                "waitingReason": opt_str.clone(),
                                "waitingMessage": opt_str.clone(),
                                "estimatedStartAt": opt_time.clone()
                            }
                        }}
                    }
                }}
            }
        }),
    );
    m.insert(
        "DeadLetter".into(),
        json!({
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "jobId": {"type": ["string", "null"], "format": "uuid"},
                "claimedId": {"type": ["string", "null"], "format": "uuid"},
                "namespace": opt_str.clone(),
                "priority": opt_str.clone(),
                "reason": r("DeadReason"),
                "message": {"type": "string"},
                "problems": {"type": "array", "items": r("Problem")},
                "bodyBytes": {"type": "integer"},
                "bodyTruncated": {"type": "boolean"},
                "messageId": opt_str.clone(),
                "routingKey": opt_str.clone(),
                "contentType": opt_str.clone(),
                "attempt": {"type": ["integer", "null"]},
                "createdAt": time.clone(),
                "requeuedAt": opt_time.clone()
            }
        }),
    );
    m.insert(
        "DeadLetterDetail".into(),
        json!({
            "allOf": [r("DeadLetter"), {"type": "object", "properties": {"body": opt_str.clone()}}]
        }),
    );
    m.insert(
        "DeadLetterPage".into(),
        json!({
            "type": "object",
            "required": ["items", "next"],
            "properties": {
                "items": {"type": "array", "items": r("DeadLetter")},
                "next": {"type": ["string", "null"]}
            }
        }),
    );
    m.insert("RequeueRequest".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "description": "One selector: `id`, or `namespace` and/or `reason`, or `all: true`.",
            "properties": {
                "id": {"type": "integer"},
                "namespace": {"type": "string"},
                "reason": r("DeadReason"),
                "all": {"type": "boolean"},
                "resetAttempts": {"type": "boolean", "description": "Give jobs their full retry policy again (default false)."}
            }
        }));
    m.insert(
        "PurgeRequest".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "description": "One selector: `id`, or `namespace` and/or `reason`, or `all: true`.",
            "properties": {
                "id": {"type": "integer"},
                "namespace": {"type": "string"},
                "reason": r("DeadReason"),
                "all": {"type": "boolean"},
                "includeRequeued": {"type": "boolean"}
            }
        }),
    );
    m.insert("RequeueReport".into(), json!({
            "type": "object",
            "properties": {
                "jobs": {"type": "integer", "description": "Dead jobs back to queued."},
                "messages": {"type": "integer", "description": "Invalid messages re-published for validation."},
                "skipped": {"type": "integer"}
            }
        }));
    m.insert("ScheduleRequest".into(), json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["name", "cron", "jobTemplate"],
            "properties": {
                "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 53},
                "namespace": {"type": "string", "description": "Optional; must equal the template's."},
                "cron": {"type": "string", "description": "5 fields (minute hour day-of-month month day-of-week), 6 with seconds first, or @hourly-style nicknames."},
                "timeZone": {"type": "string", "default": "UTC"},
                "jobTemplate": {"allOf": [r("JobMessage")], "description": "A job message without `id`."},
                "missedRunPolicy": {"type": "string", "enum": ["skip", "run-latest", "catch-up"], "default": "skip"},
                "catchUpLimit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                "startingDeadlineSeconds": {"type": "integer", "minimum": 1, "maximum": 604800, "default": 300},
                "concurrencyPolicy": {"type": "string", "enum": ["allow", "forbid", "replace"], "default": "allow"},
                "suspended": {"type": "boolean", "default": false}
            }
        }));
    m.insert("Schedule".into(), json!({
            "type": "object",
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "cron": {"type": "string"},
                "timeZone": {"type": "string"},
                "jobTemplate": {"type": "object"},
                "missedRunPolicy": {"type": "string"},
                "catchUpLimit": {"type": "integer"},
                "startingDeadlineSeconds": {"type": "integer"},
                "concurrencyPolicy": {"type": "string"},
                "suspended": {"type": "boolean"},
                "lastScheduledAt": {"type": ["string", "null"], "description": "Latest nominal time handled (local wall clock)."},
                "missedTotal": {"type": "integer"},
                "createdAt": time.clone(),
                "updatedAt": time.clone(),
                "nextFires": {"type": "array", "description": "Empty while suspended.", "items": {
                    "type": "object",
                    "properties": {
                        "nominal": {"type": "string", "description": "Local wall-clock time in the schedule's zone."},
                        "at": time.clone()
                    }
                }},
                "recentFires": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"nominal": {"type": "string"}, "jobId": {"type": ["string", "null"], "format": "uuid"}}
                }}
            }
        }));
    m.insert(
        "Readiness".into(),
        json!({
            "type": "object",
            "properties": {
                "ready": {"type": "boolean"},
                "components": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}, "error": {"type": "string"}}
                }}
            }
        }),
    );
    Value::Object(m)
}
