//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand next to the handlers.
//! A test holds it to [`super::routes`]: every route is documented and every documented
//! operation is served.

use serde_json::{Value, json};

pub(super) fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn resp(name: &str) -> Value {
    json!({ "$ref": format!("#/components/responses/{name}") })
}

pub(super) fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn path(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

/// An operation with the usual refusals added.
pub(super) fn op(
    id: &str,
    tag: &str,
    summary: &str,
    role: &str,
    parameters: Vec<Value>,
    request: Option<Value>,
    mut responses: serde_json::Map<String, Value>,
) -> Value {
    responses.insert("401".into(), resp("Unauthorized"));
    responses.insert("403".into(), resp("Forbidden"));
    responses.insert("503".into(), resp("Unavailable"));
    responses.entry("400").or_insert_with(|| resp("BadRequest"));
    let mut o = json!({
        "operationId": id,
        "tags": [tag],
        "summary": summary,
        "description": format!("Requires the `{role}` role (admin implies every role, submit implies read) and access to the namespace concerned."),
        "parameters": parameters,
        "responses": responses,
    });
    if let (Some(b), Some(map)) = (request, o.as_object_mut()) {
        map.insert("requestBody".into(), b);
    }
    o
}

pub(super) fn responses(pairs: Vec<(&str, Value)>) -> serde_json::Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn page_params() -> Vec<Value> {
    vec![
        query(
            "limit",
            "Page size, 1–1000 (default 50).",
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
        ),
        query(
            "cursor",
            "The `next` of the previous page.",
            json!({"type": "string"}),
        ),
    ]
}

fn fires_param() -> Value {
    query(
        "fires",
        "How many next fire times to list, 0–100 (default 5).",
        json!({"type": "integer", "minimum": 0, "maximum": 100}),
    )
}

fn name_param() -> Value {
    path("name", "Schedule name.", json!({"type": "string"}))
}

fn paths() -> Value {
    let job_id = path(
        "id",
        "Job id (UUID).",
        json!({"type": "string", "format": "uuid"}),
    );
    let mut job_list_params = vec![
        query(
            "namespace",
            "Only this namespace (default: every namespace the token may see).",
            json!({"type": "string"}),
        ),
        query("state", "Only this state.", r("JobState")),
        query("priority", "Only this priority.", r("Priority")),
        query(
            "name",
            "Only jobs whose name starts with this (a whole name matches itself).",
            json!({"type": "string", "pattern": "^[a-z0-9-]*$", "maxLength": 53}),
        ),
    ];
    job_list_params.extend(page_params());
    let mut dlq_params = vec![
        query(
            "namespace",
            "Only this namespace.",
            json!({"type": "string"}),
        ),
        query("reason", "Only this reason.", r("DeadReason")),
        query(
            "includeRequeued",
            "Include records already requeued.",
            json!({"type": "boolean"}),
        ),
    ];
    dlq_params.extend(page_params());
    json!({
        "/v1/jobs": {
            "post": op("submitJob", "jobs", "Submit a job", "submit", vec![], Some(body(r("JobMessage"))), responses(vec![
                ("202", ok("Accepted and queued.", r("JobAccepted"))),
                ("200", ok("The same job (same id, same content) was already accepted: nothing new stored.", r("JobAccepted"))),
                ("400", ok("The job is invalid; every problem is listed.", r("Error"))),
                ("409", resp("Conflict")),
                ("413", ok("The body is larger than the limit.", r("Error"))),
                ("415", ok("The body is not declared as JSON.", r("Error"))),
            ])),
            "get": op("listJobs", "jobs", "List jobs, newest first", "read", job_list_params, None, responses(vec![
                ("200", ok("A page of jobs.", r("JobPage"))),
            ])),
        },
        "/v1/jobs/{id}": {
            "get": op("getJob", "jobs", "A job: state, reason, attempts, queue position, history", "read", vec![job_id.clone()], None, responses(vec![
                ("200", ok("The job.", r("JobDetail"))),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/jobs/{id}/cancel": {
            "post": op("cancelJob", "jobs", "Cancel a job that has not finished", "submit", vec![job_id], None, responses(vec![
                ("200", ok("Cancelled; a submitted or running job's SparkApplication is deleted.", r("Cancelled"))),
                ("404", resp("NotFound")),
                ("409", resp("Conflict")),
            ])),
        },
        "/v1/queues": {
            "get": op("listQueues", "queues", "Depth, oldest wait and first jobs of every queue", "read", vec![
                query("namespace", "Only this namespace.", json!({"type": "string"})),
                query("heads", "Jobs listed per queue, 0–100 (default 5).", json!({"type": "integer", "minimum": 0, "maximum": 100})),
            ], None, responses(vec![
                ("200", ok("Every served queue in scope, high first.", r("QueueList"))),
            ])),
        },
        "/v1/dlq": {
            "get": op("listDeadLetters", "dlq", "List dead letters, oldest first", "read", dlq_params, None, responses(vec![
                ("200", ok("A page of dead letters.", r("DeadLetterPage"))),
            ])),
        },
        "/v1/dlq/{id}": {
            "get": op("getDeadLetter", "dlq", "A dead letter with its stored body", "read", vec![
                path("id", "Dead-letter record id.", json!({"type": "integer", "format": "int64"})),
            ], None, responses(vec![
                ("200", ok("The record; `body` is the stored message as text (null when not UTF-8).", r("DeadLetterDetail"))),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/dlq/requeue": {
            "post": op("requeueDeadLetters", "dlq", "Requeue dead letters", "admin", vec![], Some(body(r("RequeueRequest"))), responses(vec![
                ("200", ok("What was requeued.", r("RequeueReport"))),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/dlq/purge": {
            "post": op("purgeDeadLetters", "dlq", "Delete dead-letter records", "admin", vec![], Some(body(r("PurgeRequest"))), responses(vec![
                ("200", ok("How many records were deleted.", json!({"type": "object", "required": ["purged"], "properties": {"purged": {"type": "integer"}}}))),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/schedules": {
            "get": op("listSchedules", "schedules", "List schedules with their next fire times", "read", vec![
                query("namespace", "Only this namespace.", json!({"type": "string"})),
                fires_param(),
            ], None, responses(vec![
                ("200", ok("Every schedule in scope, by name.", json!({"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": r("Schedule")}}}))),
            ])),
            "post": op("createSchedule", "schedules", "Create a schedule", "admin", vec![], Some(body(r("ScheduleRequest"))), responses(vec![
                ("201", ok("Created.", r("Schedule"))),
                ("400", ok("The schedule is invalid; every problem is listed (template problems under `$.jobTemplate`).", r("Error"))),
                ("409", resp("Conflict")),
                ("413", ok("The body is larger than the limit.", r("Error"))),
                ("415", ok("The body is not declared as JSON.", r("Error"))),
            ])),
        },
        "/v1/schedules/{name}": {
            "get": op("getSchedule", "schedules", "A schedule, its next and recent fires", "read", vec![name_param(), fires_param()], None, responses(vec![
                ("200", ok("The schedule.", r("Schedule"))),
                ("404", resp("NotFound")),
            ])),
            "put": op("replaceSchedule", "schedules", "Replace a schedule's definition", "admin", vec![name_param()], Some(body(r("ScheduleRequest"))), responses(vec![
                ("200", ok("Replaced.", r("Schedule"))),
                ("404", resp("NotFound")),
                ("409", resp("Conflict")),
            ])),
            "delete": op("deleteSchedule", "schedules", "Delete a schedule (its jobs stay)", "admin", vec![name_param()], None, responses(vec![
                ("204", json!({"description": "Deleted."})),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/schedules/{name}/pause": {
            "post": op("pauseSchedule", "schedules", "Suspend a schedule", "admin", vec![name_param()], None, responses(vec![
                ("200", ok("Suspended.", r("Schedule"))),
                ("404", resp("NotFound")),
            ])),
        },
        "/v1/schedules/{name}/resume": {
            "post": op("resumeSchedule", "schedules", "Resume a schedule (what fell due while suspended is not caught up)", "admin", vec![name_param()], None, responses(vec![
                ("200", ok("Resumed.", r("Schedule"))),
                ("404", resp("NotFound")),
            ])),
        },
        "/metrics": {
            "get": {
                "operationId": "metrics", "tags": ["operations"], "security": [],
                "summary": "Prometheus metrics (OpenMetrics text); open unless configured otherwise",
                "responses": { "200": { "description": "Metrics.", "content": { "application/openmetrics-text": { "schema": { "type": "string" } } } } }
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz", "tags": ["operations"], "security": [],
                "summary": "The process is alive",
                "responses": { "200": ok("Alive.", json!({"type": "object", "properties": {"status": {"const": "ok"}}})) }
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz", "tags": ["operations"], "security": [],
                "summary": "The broker, database and Kubernetes answer",
                "responses": {
                    "200": ok("Ready.", r("Readiness")),
                    "503": ok("Not ready; the failing components say why.", r("Readiness"))
                }
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi", "tags": ["operations"], "security": [],
                "summary": "This document",
                "responses": { "200": ok("The OpenAPI document.", json!({"type": "object"})) }
            }
        }
    })
}

fn schemas() -> Value {
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
                                "waitingMessage": opt_str.clone()
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

/// The document.
pub fn document() -> Value {
    let error = |d: &str| ok(d, r("Error"));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Spark job orchestrator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Submit and follow Spark jobs, inspect queues, manage dead letters and cron schedules. Every error is `{error, message, problems?}`."
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "jobs"}, {"name": "queues"}, {"name": "dlq"}, {"name": "schedules"}, {"name": "cluster"}, {"name": "operations"}
        ],
        "paths": super::openapi_cluster::extend(paths(), super::openapi_cluster::paths()),
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "A token from the `[auth]` section of the config, with roles and namespaces."}
            },
            "responses": {
                "BadRequest": error("A malformed body, path or query (the problems say where)."),
                "Unauthorized": error("No token, or an unknown one (`WWW-Authenticate: Bearer`)."),
                "Forbidden": error("The token lacks the role or the namespace."),
                "NotFound": error("No such object."),
                "Conflict": error("The object's state forbids it, or the name or id is taken."),
                "Unavailable": error("The job store is unreachable; try again.")
            },
            "schemas": super::openapi_cluster::extend(schemas(), super::openapi_cluster::schemas())
        }
    })
}
