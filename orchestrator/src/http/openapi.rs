//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the code: each handler
//! carries its `#[utoipa::path]` (method, path, parameters, body, the answers it gives) and
//! every type it reads or writes derives `ToSchema` — the job message's from
//! `jobs::model::JobMessage`, the same types as `GET /v1/schema/job`. [`Refusals`] adds the
//! answers the extractors give on every route (401, 403, 400, 413, 415, 500, 503), so no
//! handler can forget them. The rendered document is committed as `orchestrator/openapi.json`;
//! the `contract` test fails when it drifts, and holds the document to [`super::routes`].

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::Type;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HttpMethod, ObjectBuilder, Ref, RefOr, Response, ResponsesBuilder};
use utoipa::{Modify, OpenApi, PartialSchema};

use super::error::Body as ErrorBody;
use super::{cluster, dlq, jobs, ops, queue_overview, schedules, whoami};

/// The API's document (`ApiDoc::openapi()`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Spark job orchestrator API",
        description = "Submit and follow Spark jobs, inspect queues, manage dead letters and cron schedules. Every error is `{error, message, problems?}`. A refused job or schedule answers 400 when it breaks the published schema (the job message's is also at `GET /v1/schema/job`), 422 when it conforms but the config's rules refuse it."
    ),
    servers((url = "/")),
    security(("bearer" = [])),
    tags(
        (name = "jobs"), (name = "queues"), (name = "dlq"), (name = "schedules"),
        (name = "cluster"), (name = "operations")
    ),
    paths(
        jobs::submit, jobs::list, jobs::show, jobs::cancel,
        queue_overview::list,
        dlq::list, dlq::show, dlq::requeue, dlq::purge,
        schedules::list, schedules::create, schedules::show, schedules::update,
        schedules::remove, schedules::pause, schedules::resume,
        cluster::show, whoami::show,
        ops::metrics, ops::healthz, ops::readyz, ops::openapi, ops::job_schema,
    ),
    modifiers(&Security, &Refusals)
)]
pub struct ApiDoc;

/// The document as JSON.
pub fn document() -> serde_json::Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or_default()
}

/// The bearer token scheme of `[auth]`.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from the `[auth]` section of the config, with roles and namespaces.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The answers every authenticated route can give, whatever its handler does: the
/// authentication and role checks (401, 403), malformed paths, queries and bodies (400), body
/// size and type (413, 415), and a job store that fails (503 when it is unreachable, 500
/// otherwise).
struct Refusals;

/// (name, status, description) of the shared answers.
const SHARED: &[(&str, &str, &str)] = &[
    (
        "BadRequest",
        "400",
        "A malformed path, query or body (the message and problems say where).",
    ),
    (
        "Unauthorized",
        "401",
        "No token, or an unknown one (`WWW-Authenticate: Bearer`).",
    ),
    (
        "Forbidden",
        "403",
        "The token lacks the role or the namespace.",
    ),
    (
        "PayloadTooLarge",
        "413",
        "The body is larger than the limit.",
    ),
    (
        "UnsupportedMediaType",
        "415",
        "The body is not declared as JSON (`Content-Type: application/json`).",
    ),
    (
        "Internal",
        "500",
        "The orchestrator failed; its log says why.",
    ),
    (
        "Unavailable",
        "503",
        "The job store is unreachable; try again shortly.",
    ),
];

fn error_response(description: &str, status: &str) -> Response {
    let mut builder = ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(ErrorBody::schema())));
    if status == "401" {
        builder = builder.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some("`Bearer realm=\"orchestrator\"`"))
                .build(),
        );
    }
    builder.build()
}

impl Modify for Refusals {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, status, description) in SHARED {
            components.responses.insert(
                (*name).to_owned(),
                error_response(description, status).into(),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            let open = !path.starts_with("/v1/") || path == ::jobs::model::JOB_SCHEMA_PATH;
            if open {
                continue;
            }
            for method in [
                HttpMethod::Get,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Delete,
            ] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    _ => item.delete.as_mut(),
                };
                let Some(op) = operation else { continue };
                let has_input = op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let whoami = path == "/v1/whoami";
                let store = !whoami && path != "/v1/cluster";
                let wanted = [
                    ("400", has_input),
                    ("401", true),
                    ("403", !whoami),
                    ("413", op.request_body.is_some()),
                    ("415", op.request_body.is_some()),
                    ("500", store),
                    ("503", store),
                ];
                let mut responses = ResponsesBuilder::new().build();
                std::mem::swap(&mut responses, &mut op.responses);
                for (status, applies) in wanted {
                    let name = SHARED
                        .iter()
                        .find(|(_, s, _)| *s == status)
                        .map_or("BadRequest", |(n, _, _)| n);
                    if applies && !responses.responses.contains_key(status) {
                        responses
                            .responses
                            .insert(status.to_owned(), RefOr::Ref(Ref::from_response_name(name)));
                    }
                }
                op.responses = responses;
            }
        }
    }
}
