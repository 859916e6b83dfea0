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
use serde_json::{Value, json};

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::extract::{Authed, JsonBody, PathParam, QueryParams, page_limit};
use super::jobs::merge_pages;
use super::state::ApiState;

/// Query of `GET /v1/dlq`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    namespace: Option<String>,
    reason: Option<DeadReason>,
    #[serde(default)]
    include_requeued: bool,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// A page of dead letters, oldest first.
#[derive(Debug, Serialize)]
pub struct DeadLetterPage {
    items: Vec<DeadLetter>,
    next: Option<String>,
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
        caller.require(role, Some(ns))?;
        return Ok(Some(vec![ns.to_owned()]));
    }
    Ok(caller.namespaces().map(|s| s.iter().cloned().collect()))
}

/// `GET /v1/dlq?namespace=&reason=&includeRequeued=&limit=&cursor=`.
pub async fn list(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<DeadLetterPage>, ApiError> {
    caller.require(Role::Read, None)?;
    let limit = page_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "invalid-query",
                    "cursor is not one this API returned (a dead-letter id)",
                )
            })
        })
        .transpose()?;
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
pub async fn show(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(id): PathParam<i64>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Read, None)?;
    let (record, body) = state
        .store
        .dead_letter_record(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no dead letter with id {id}")))?;
    check_record_scope(&caller, Role::Read, &record)?;
    let text = String::from_utf8(body).ok();
    let mut value =
        serde_json::to_value(&record).map_err(|e| ApiError::from(queues::Error::Json(e)))?;
    if let Some(map) = value.as_object_mut() {
        map.insert("body".into(), text.map_or(Value::Null, Value::String));
    }
    Ok(Json(value))
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

/// `POST /v1/dlq/requeue` → `{jobs, messages, skipped}`.
pub async fn requeue(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody<RequeueBody>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({
        "jobs": total.jobs,
        "messages": total.messages,
        "skipped": total.skipped,
    })))
}

/// `POST /v1/dlq/purge` → `{purged}`.
pub async fn purge(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBody(body): JsonBody<PurgeBody>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "purged": purged })))
}
