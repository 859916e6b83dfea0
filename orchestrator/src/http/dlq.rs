//! `/v1/dlq`: list and inspect dead letters, requeue them (a dead job goes back to `queued`
//! with its id and history; a dead message is re-published for a fresh validation), purge.
//!
//! Requeue and purge take one selector: `{"id": N}`, `{"namespace": …, "reason": …}` (either
//! or both), or `{"all": true}`. A token limited to namespaces acts only inside them: `all`
//! and a reason-only selector are applied per namespace of the token.

use axum::Json;
use axum::extract::State;
use jobs::DeadReason;
use queues::store::{
    DeadLetter, DeadLetterFilter, DeadLetterSelector, PageRequest, RequeueOptions, RequeueReport,
};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, AllOfBuilder, AnyOfBuilder, KnownFormat, ObjectBuilder, OneOfBuilder,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::auth::{Caller, Role};
use super::error::{ApiError, Body as ErrorBody};
use super::extract::{Authed, JsonBody, PathParam, QueryParams, page_cursor, page_limit};
use super::jobs::merge_pages;
use super::state::ApiState;

/// Query of `GET /v1/dlq`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this namespace (as the message claimed it: possibly one not served).
    #[param(pattern = "^[^\\x00]*$")]
    namespace: Option<String>,
    /// Only this reason.
    #[param(inline)]
    reason: Option<DeadReason>,
    /// Include records already requeued (default false).
    #[serde(default)]
    include_requeued: bool,
    /// Page size, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(pattern = "^-?[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// A page of dead letters, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterPage {
    /// The records.
    items: Vec<DeadLetter>,
    /// Cursor of the next page; null on the last.
    #[schema(required)]
    next: Option<String>,
}

/// A dead letter with its stored body.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDetail {
    #[serde(flatten)]
    record: DeadLetter,
    /// The stored message as text (null when it is not UTF-8).
    #[schema(required)]
    body: Option<String>,
}

/// The namespaces a dead-letter operation covers (`None`: all, including messages whose
/// namespace is unknown or not served). Unlike jobs, a dead letter may name a namespace that
/// is not served (reason `unknown-namespace`), so the catalog is not consulted.
fn scope(
    caller: &Caller,
    role: Role,
    asked: Option<&str>,
) -> Result<Option<Vec<String>>, ApiError> {
    if let Some(ns) = asked {
        // PostgreSQL text cannot hold NUL, so no dead letter has one.
        if ns.contains('\0') {
            return Err(ApiError::bad_request(
                "invalid-request",
                "namespace contains a NUL character",
            ));
        }
        caller.require(role, Some(ns))?;
        return Ok(Some(vec![ns.to_owned()]));
    }
    Ok(caller.namespaces().map(|s| s.iter().cloned().collect()))
}

/// `GET /v1/dlq?namespace=&reason=&includeRequeued=&limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/dlq", tag = "dlq", operation_id = "listDeadLetters",
    summary = "List dead letters, oldest first",
    description = "Requires the `read` role; a token limited to namespaces sees only theirs.",
    params(ListQuery),
    responses((status = 200, description = "A page of dead letters.", body = DeadLetterPage,
        links(("GetDeadLetter" = (operation_id = "getDeadLetter", parameters(("id" = "$response.body#/items/0/id")))))))
)]
pub async fn list(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    caller.require(Role::Read, None)?;
    let limit = page_limit(q.limit)?;
    let after = page_cursor::<i64>(q.cursor.as_deref(), "a dead-letter id")?;
    let page = PageRequest { after, limit };
    let filter = |namespace: Option<String>| DeadLetterFilter {
        namespace,
        reason: q.reason,
        include_requeued: q.include_requeued,
    };
    let result = match scope(&caller, Role::Read, q.namespace.as_deref())? {
        None => state.store.list_dead_letters(&filter(None), page).await?,
        Some(namespaces) => {
            let mut pages = Vec::new();
            for ns in namespaces {
                pages.push(
                    state
                        .store
                        .list_dead_letters(&filter(Some(ns)), page)
                        .await?,
                );
            }
            merge_pages(pages, limit, |d: &DeadLetter| d.id, |d| d.id)
        }
    };
    Ok(Json(DeadLetterPage {
        items: result.items,
        next: result.next.map(|id| id.to_string()),
    }))
}

/// `GET /v1/dlq/{id}`: the record and its stored body (as text when it is UTF-8).
#[utoipa::path(
    get, path = "/v1/dlq/{id}", tag = "dlq", operation_id = "getDeadLetter",
    summary = "A dead letter with its stored body",
    description = "Requires the `read` role for the record's namespace (records without one: a token for every namespace).",
    params(("id" = i64, Path, description = "Dead-letter record id.")),
    responses(
        (status = 200, description = "The record.", body = DeadLetterDetail),
        (status = 404, description = "No such record.", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(id): PathParam<i64>,
) -> Result<Json<DeadLetterDetail>, ApiError> {
    caller.require(Role::Read, None)?;
    let (record, body) = state
        .store
        .dead_letter_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter with id {id}")))?;
    check_record_scope(&caller, Role::Read, &record)?;
    Ok(Json(DeadLetterDetail {
        record,
        body: String::from_utf8(body).ok(),
    }))
}

fn check_record_scope(caller: &Caller, role: Role, record: &DeadLetter) -> Result<(), ApiError> {
    match (&record.namespace, caller.namespaces()) {
        (_, None) => Ok(()),
        (Some(ns), Some(_)) => Ok(caller.require(role, Some(ns))?),
        (None, Some(_)) => Err(ApiError::forbidden(format!(
            "dead letter {} has no namespace; only a token for all namespaces may touch it",
            record.id
        ))),
    }
}

/// Body of `POST /v1/dlq/requeue`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequeueBody {
    id: Option<i64>,
    namespace: Option<String>,
    reason: Option<DeadReason>,
    #[serde(default)]
    all: bool,
    /// Give requeued jobs their full retry policy again (default: keep the budget).
    #[serde(default)]
    reset_attempts: bool,
}

/// Body of `POST /v1/dlq/purge`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PurgeBody {
    id: Option<i64>,
    namespace: Option<String>,
    reason: Option<DeadReason>,
    #[serde(default)]
    all: bool,
    /// Also delete records already requeued (implied by `all` and `id`).
    #[serde(default)]
    include_requeued: bool,
}

/// The selectors to run for a request, after the caller's scope is applied.
async fn selectors(
    state: &ApiState,
    caller: &Caller,
    id: Option<i64>,
    namespace: Option<String>,
    reason: Option<DeadReason>,
    all: bool,
    include_requeued: bool,
) -> Result<Vec<DeadLetterSelector>, ApiError> {
    caller.require(Role::Admin, None)?;
    let filtered = namespace.is_some() || reason.is_some();
    match (id, filtered, all) {
        (Some(id), false, false) => {
            let (record, _) = state
                .store
                .dead_letter_record(id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("no dead letter with id {id}")))?;
            check_record_scope(caller, Role::Admin, &record)?;
            Ok(vec![DeadLetterSelector::One(id)])
        }
        (None, true, false) | (None, false, true) => {
            let include_requeued = include_requeued || all;
            Ok(match scope(caller, Role::Admin, namespace.as_deref())? {
                None if all => vec![DeadLetterSelector::All],
                None => vec![DeadLetterSelector::Matching(DeadLetterFilter {
                    namespace: None,
                    reason,
                    include_requeued,
                })],
                Some(namespaces) => namespaces
                    .into_iter()
                    .map(|ns| {
                        DeadLetterSelector::Matching(DeadLetterFilter {
                            namespace: Some(ns),
                            reason,
                            include_requeued,
                        })
                    })
                    .collect(),
            })
        }
        (None, false, false) => Err(ApiError::bad_request(
            "invalid-request",
            "say which dead letters: {\"id\": N}, {\"namespace\": …, \"reason\": …}, or {\"all\": true}",
        )),
        _ => Err(ApiError::bad_request(
            "invalid-request",
            "give one selector: id, or namespace/reason, or all — not several",
        )),
    }
}

/// The JSON Schema of a selector body: its fields (and `extra`), of which exactly one selector
/// is given — `id`, or `namespace` and/or `reason`, or `all: true` — as [`selectors`] checks.
/// Built by hand: the derive cannot say "exactly one of".
fn selector_schema(extra: &str, extra_doc: &str) -> Schema {
    let nullable = |t| SchemaType::from_iter([t, Type::Null]);
    let int64 = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
    };
    let fields = ObjectBuilder::new()
        .property(
            "id",
            int64()
                .schema_type(nullable(Type::Integer))
                .description(Some("One record, by id.")),
        )
        .property(
            "namespace",
            ObjectBuilder::new()
                .schema_type(nullable(Type::String))
                .pattern(Some(r"^[^\x00]*$"))
                .description(Some("Records of this namespace (with `reason`: both).")),
        )
        .property(
            "reason",
            OneOfBuilder::new()
                .item(DeadReason::schema())
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .description(Some("Records with this reason.")),
        )
        .property(
            "all",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("Every record (requeued ones included).")),
        )
        .property(
            extra,
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some(extra_doc)),
        )
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    let selector = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .title(Some("by id"))
                .required("id")
                .property("id", int64()),
        )
        .item(
            AnyOfBuilder::new()
                .description(Some("by namespace and/or reason"))
                .item(
                    ObjectBuilder::new()
                        .required("namespace")
                        .property("namespace", ObjectBuilder::new().schema_type(Type::String)),
                )
                .item(
                    ObjectBuilder::new()
                        .required("reason")
                        .property("reason", DeadReason::schema()),
                ),
        )
        .item(
            ObjectBuilder::new()
                .title(Some("every record"))
                .required("all")
                .property(
                    "all",
                    ObjectBuilder::new()
                        .schema_type(Type::Boolean)
                        .enum_values(Some([true])),
                ),
        );
    AllOfBuilder::new()
        .item(fields)
        .item(selector)
        .description(Some(
            "One selector: `{\"id\": N}`, `{\"namespace\": …, \"reason\": …}` (either or both), or `{\"all\": true}`.",
        ))
        .into()
}

impl PartialSchema for RequeueBody {
    fn schema() -> RefOr<Schema> {
        selector_schema(
            "resetAttempts",
            "Give requeued jobs their full retry policy again (default false: keep the budget).",
        )
        .into()
    }
}

impl ToSchema for RequeueBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "RequeueRequest".into()
    }
}

impl PartialSchema for PurgeBody {
    fn schema() -> RefOr<Schema> {
        selector_schema(
            "includeRequeued",
            "Also delete records already requeued (implied by `all` and `id`).",
        )
        .into()
    }
}

impl ToSchema for PurgeBody {
    fn name() -> std::borrow::Cow<'static, str> {
        "PurgeRequest".into()
    }
}

/// What a requeue did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Requeued {
    /// Dead jobs back to `queued`.
    jobs: u64,
    /// Invalid messages re-published for a fresh validation.
    messages: u64,
    /// Records skipped (already requeued, or their job is no longer dead).
    skipped: u64,
}

/// What a purge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Purged {
    /// Records deleted.
    purged: u64,
}

/// `POST /v1/dlq/requeue` → `{jobs, messages, skipped}`.
#[utoipa::path(
    post, path = "/v1/dlq/requeue", tag = "dlq", operation_id = "requeueDeadLetters",
    summary = "Requeue dead letters",
    description = "Requires the `admin` role; a token limited to namespaces acts inside them only.",
    request_body(content = RequeueBody, content_type = "application/json"),
    responses(
        (status = 200, description = "What was requeued.", body = Requeued),
        (status = 404, description = "No record with that id.", body = ErrorBody),
    )
)]
pub async fn requeue(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody<RequeueBody>,
) -> Result<Json<Requeued>, ApiError> {
    let selectors = selectors(
        &state,
        &caller,
        body.id,
        body.namespace,
        body.reason,
        body.all,
        false,
    )
    .await?;
    let options = RequeueOptions {
        reset_attempts: body.reset_attempts,
    };
    let mut total = RequeueReport::default();
    for selector in &selectors {
        let r = state.store.requeue_dead_letters(selector, options).await?;
        total.jobs += r.jobs;
        total.messages += r.messages;
        total.skipped += r.skipped;
    }
    tracing::info!(
        jobs = total.jobs,
        messages = total.messages,
        skipped = total.skipped,
        "dead letters requeued"
    );
    Ok(Json(Requeued {
        jobs: total.jobs,
        messages: total.messages,
        skipped: total.skipped,
    }))
}

/// `POST /v1/dlq/purge` → `{purged}`.
#[utoipa::path(
    post, path = "/v1/dlq/purge", tag = "dlq", operation_id = "purgeDeadLetters",
    summary = "Delete dead-letter records",
    description = "Requires the `admin` role; a token limited to namespaces acts inside them only.",
    request_body(content = PurgeBody, content_type = "application/json"),
    responses(
        (status = 200, description = "How many records were deleted.", body = Purged),
        (status = 404, description = "No record with that id.", body = ErrorBody),
    )
)]
pub async fn purge(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody<PurgeBody>,
) -> Result<Json<Purged>, ApiError> {
    let selectors = selectors(
        &state,
        &caller,
        body.id,
        body.namespace,
        body.reason,
        body.all,
        body.include_requeued,
    )
    .await?;
    let mut purged = 0;
    for selector in &selectors {
        purged += state.store.purge_dead_letters(selector).await?;
    }
    tracing::info!(purged, "dead letters purged");
    Ok(Json(Purged { purged }))
}
