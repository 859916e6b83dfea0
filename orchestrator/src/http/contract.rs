//! The request bodies' JSON Schemas, compiled once from the types that generate the OpenAPI
//! document, to tell a structural refusal from a semantic one: a refused body the published
//! schema already refuses answers `400`; one that conforms but breaks a rule the schema
//! cannot state (the config's namespaces, node types and limits, reserved keys, fields that
//! exclude each other) answers `422`. So a client that validates against the schema sees
//! `400` only for its own mistakes of form, and schema-driven tests can tell them apart.

use std::sync::LazyLock;

use axum::http::StatusCode;
use serde_json::{Value, json};
use utoipa::OpenApi;

/// The bodies checked this way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `POST /v1/jobs`: the job message (`GET /v1/schema/job`).
    Job,
    /// `POST`/`PUT /v1/schedules`: the schedule request.
    Schedule,
}

static JOB: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(jobs::model::job_schema()));

static SCHEDULE: LazyLock<Option<jsonschema::Validator>> =
    LazyLock::new(|| compile(component_schema("ScheduleRequest")));

fn compile(schema: Value) -> Option<jsonschema::Validator> {
    jsonschema::validator_for(&schema)
        .map_err(|e| tracing::error!(error = %e, "a request schema does not compile"))
        .ok()
}

/// A component of the OpenAPI document as a standalone JSON Schema (2020-12): the component
/// at the root, every component under `$defs`.
pub fn component_schema(name: &str) -> Value {
    let doc = serde_json::to_value(super::openapi::ApiDoc::openapi()).unwrap_or(Value::Null);
    let mut defs = doc["components"]["schemas"].clone();
    jobs::model::message::rewrite_refs(&mut defs);
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/$defs/{name}"),
        "$defs": defs,
    })
}

/// Whether a JSON value conforms to the body's schema (`false` when the schema is unusable,
/// which the tests rule out).
pub fn conforms(contract: Contract, value: &Value) -> bool {
    let validator = match contract {
        Contract::Job => &*JOB,
        Contract::Schedule => &*SCHEDULE,
    };
    validator.as_ref().is_some_and(|v| v.is_valid(value))
}

/// The status of a refused body: `400` when it is not JSON or the schema refuses it, `422`
/// when it conforms.
pub fn refusal_status(contract: Contract, body: &[u8]) -> StatusCode {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if conforms(contract, &value) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::BAD_REQUEST,
    }
}
