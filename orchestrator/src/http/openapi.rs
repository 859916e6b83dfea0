//! The OpenAPI 3.1 document served at `/openapi.json`, written by hand next to the handlers.
//! A test holds it to [`super::routes`]: every route is documented and every documented
//! operation is served.

use serde_json::{Value, json};

mod schemas;
use schemas::schemas;

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
