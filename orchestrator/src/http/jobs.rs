//! `/v1/jobs`: submit, list (filters, cursor pagination), show (state, reason, attempts,
//! queue position, history), cancel.
//!
//! Submitting is idempotent on the job id: the same job again answers `200` with the stored
//! state (a client retrying after a timeout is safe); a *different* job under an id already
//! used answers `409`.

use std::collections::BTreeSet;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jobs::{Job, JobId, JobState, Priority, ProblemCode};
use queues::store::{CancelOutcome, JobFilter, JobSource, JobSummary, Note, Page, PageRequest};
use serde::{Deserialize, Serialize};

use super::auth::{Caller, Role};
use super::contract::{self, Contract};
use super::error::{ApiError, Body as ErrorBody};
use super::extract::{Authed, JsonBytes, PathParam, QueryParams, page_cursor, page_limit};
use super::job_view::{JobView, PodsView};
use super::state::ApiState;

/// `POST /v1/jobs`: validate against the catalog, store, `202 {id}`.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs", operation_id = "submitJob",
    summary = "Submit a job",
    description = "Requires the `submit` role for the job's namespace. The same id with the same content again answers 200 (`duplicate: true`); with other content 409.",
    request_body(content = jobs::model::JobMessage, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted and queued.", body = Accepted,
            headers(("Location" = String, description = "The job's URL.")),
            links(
                ("GetJob" = (operation_id = "getJob", parameters(("id" = "$response.body#/id")))),
                ("CancelJob" = (operation_id = "cancelJob", parameters(("id" = "$response.body#/id"))))
            )),
        (status = 200, description = "The same job (same id, same content) was already accepted: nothing new stored.", body = Accepted),
        (status = 400, description = "The body is not JSON or breaks the job schema (`GET /v1/schema/job`); every problem is listed.", body = ErrorBody),
        (status = 409, description = "The id is taken by a different job.", body = ErrorBody),
        (status = 422, description = "The job conforms to the schema but the config's rules refuse it (unknown namespace or node type, limits, reserved keys, fields that exclude each other); every problem is listed.", body = ErrorBody),
    )
)]
pub async fn submit(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Authed(caller): Authed,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Submit, None)?;
    // Counted like the AMQP intake's messages, so one panel shows every way jobs arrive.
    let count = |namespace: &str, priority, outcome| {
        state
            .store
            .metrics()
            .intake(JobSource::Http, namespace, priority, outcome);
    };
    let job = jobs::parse_job(&body, &state.catalog).map_err(|rejection| {
        count("", None, "invalid");
        let status = if rejection.has(ProblemCode::TooLarge) {
            StatusCode::PAYLOAD_TOO_LARGE
        } else if [
            ProblemCode::NotUtf8,
            ProblemCode::MalformedJson,
            ProblemCode::DuplicateKey,
        ]
        .into_iter()
        .any(|c| rejection.has(c))
        {
            StatusCode::BAD_REQUEST
        } else {
            contract::refusal_status(Contract::Job, &body)
        };
        let n = rejection.problems.len();
        ApiError::new(
            status,
            "invalid-job",
            format!(
                "the job is invalid ({n} problem{}): {}",
                if n == 1 { "" } else { "s" },
                rejection.summary()
            ),
        )
        .with_problems(rejection.problems)
    })?;
    caller.require(Role::Submit, Some(&job.namespace))?;
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).ok();
    let counted = |outcome| count(&job.namespace, Some(job.priority), outcome);
    if state.store.enqueue(&job, JobSource::Http).await? {
        counted("accepted");
        tracing::info!(job = %job.id, namespace = %job.namespace, priority = %job.priority.as_str(), "job accepted");
        let mut response = (
            StatusCode::ACCEPTED,
            Json(accepted(&job, JobState::Queued, false)),
        )
            .into_response();
        if let Some(l) = location {
            response.headers_mut().insert(header::LOCATION, l);
        }
        return Ok(response);
    }
    // The id is taken: the same job again is a retry; anything else is a conflict.
    match state.store.job(job.id).await? {
        Some(stored) if stored.job == job => {
            counted("duplicate");
            Ok((StatusCode::OK, Json(accepted(&job, stored.state, true))).into_response())
        }
        _ => Err({
            counted("conflict");
            ApiError::conflict(format!(
                "job id {} is already used by a different job; omit \"id\" to get a fresh one",
                job.id
            ))
        }),
    }
}

/// The answer to a submission.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted<'a> {
    /// The job's id (generated when the message had none).
    id: JobId,
    /// Its name.
    name: &'a str,
    /// Its namespace.
    namespace: &'a str,
    /// Its queue level.
    priority: Priority,
    /// Its state now (`queued` when new).
    state: JobState,
    /// Whether this was a retry of a job already accepted.
    duplicate: bool,
}

fn accepted(job: &Job, state: JobState, duplicate: bool) -> Accepted<'_> {
    Accepted {
        id: job.id,
        name: &job.name,
        namespace: &job.namespace,
        priority: job.priority,
        state,
        duplicate,
    }
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this namespace (default: every namespace the token may see); `422` when it is not
    /// served.
    #[param(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    namespace: Option<String>,
    /// Only this state.
    #[param(inline)]
    state: Option<JobState>,
    /// Only this priority.
    #[param(inline)]
    priority: Option<Priority>,
    /// Only jobs whose name starts with this (a whole name matches itself).
    #[param(pattern = "^[-a-z0-9]*$", max_length = 53)]
    name: Option<String>,
    /// Page size, 1–1000 (default 50).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next` of the previous page.
    #[param(format = Uuid)]
    cursor: Option<String>,
}

/// Checks a `name` filter: what a job name may start with (`[a-z0-9-]`, at most 53).
fn name_prefix(name: Option<String>) -> Result<Option<String>, ApiError> {
    match name {
        Some(n) if n.is_empty() => Ok(None),
        Some(n)
            if n.len() <= 53
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(Some(n))
        }
        Some(n) => Err(ApiError::bad_request(
            "invalid-query",
            format!(
                "name ({} characters) cannot start a job name: use at most 53 of a-z, 0-9 and -",
                n.chars().count()
            ),
        )),
        None => Ok(None),
    }
}

/// A page of job summaries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    /// The jobs.
    items: Vec<JobSummary>,
    /// Cursor of the next page; null on the last.
    #[schema(required)]
    next: Option<String>,
}

/// The namespaces a listing covers: the one asked for (checked), or every namespace the
/// caller may see (`None`: all, unfiltered).
pub fn listing_scope(
    state: &ApiState,
    caller: &Caller,
    asked: Option<&str>,
) -> Result<Option<Vec<String>>, ApiError> {
    if let Some(ns) = asked {
        if jobs::names::check_dns_label(ns).is_err() {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!(
                    "namespace {:?} is not a namespace name (a DNS label)",
                    truncate(ns, 80)
                ),
            ));
        }
        if state.catalog.namespace(ns).is_none() {
            return Err(ApiError::unprocessable(
                "unknown-namespace",
                format!(
                    "namespace {:?} is not served; served: {}",
                    truncate(ns, 80),
                    state
                        .catalog
                        .namespace_names()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        caller.require(Role::Read, Some(ns))?;
        return Ok(Some(vec![ns.to_owned()]));
    }
    Ok(caller.namespaces().map(|set: &BTreeSet<String>| {
        set.iter()
            .filter(|ns| state.catalog.namespace(ns).is_some())
            .cloned()
            .collect()
    }))
}

/// `GET /v1/jobs?namespace=&state=&priority=&name=&limit=&cursor=`.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs", operation_id = "listJobs",
    summary = "List jobs, newest first",
    description = "Requires the `read` role; a token limited to namespaces sees only theirs.",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of jobs.", body = JobPage),
        (status = 422, description = "The namespace is not served.", body = ErrorBody),
    )
)]
pub async fn list(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<JobPage>, ApiError> {
    caller.require(Role::Read, None)?;
    let limit = page_limit(q.limit)?;
    let after = page_cursor::<JobId>(q.cursor.as_deref(), "a job id")?;
    let page = PageRequest { after, limit };
    let scope = listing_scope(&state, &caller, q.namespace.as_deref())?;
    let name = name_prefix(q.name)?;
    let filter = |namespace: Option<String>| JobFilter {
        namespace,
        state: q.state,
        priority: q.priority,
        name_prefix: name.clone(),
    };
    let result = match scope {
        None => state.store.list_jobs(&filter(None), page).await?,
        Some(namespaces) => {
            let mut pages = Vec::new();
            for ns in namespaces {
                pages.push(state.store.list_jobs(&filter(Some(ns)), page).await?);
            }
            // Ids order the listing (newest first): the first `limit` of the merged pages are
            // the first `limit` over all these namespaces.
            merge_pages(
                pages,
                limit,
                |j: &JobSummary| std::cmp::Reverse(j.id),
                |j| j.id,
            )
        }
    };
    Ok(Json(JobPage {
        items: result.items,
        next: result.next.map(|id| id.to_string()),
    }))
}

/// Merges keyset pages of disjoint listings that share one order and cursor into the page
/// the union would have given.
pub fn merge_pages<T, C, K: Ord>(
    pages: Vec<Page<T, C>>,
    limit: u32,
    order: impl Fn(&T) -> K,
    cursor: impl Fn(&T) -> C,
) -> Page<T, C> {
    let any_next = pages.iter().any(|p| p.next.is_some());
    let mut items: Vec<T> = pages.into_iter().flat_map(|p| p.items).collect();
    items.sort_by_key(|i| order(i));
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit || any_next;
    items.truncate(limit);
    let next = if more {
        items.last().map(&cursor)
    } else {
        None
    };
    Page { items, next }
}

/// `GET /v1/jobs/{id}`.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "getJob",
    summary = "A job: state, reason, attempts, queue position, history",
    description = "Requires the `read` role for the job's namespace.",
    params(("id" = JobId, Path, description = "Job id (UUID).")),
    responses(
        (status = 200, description = "The job.", body = JobView),
        (status = 404, description = "No such job.", body = ErrorBody),
    )
)]
pub async fn show(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Authed(caller): Authed,
    PathParam(id): PathParam<JobId>,
) -> Result<Json<JobView>, ApiError> {
    caller.require(Role::Read, None)?;
    let detail = state
        .store
        .job_detail(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} does not exist")))?;
    caller.require(Role::Read, Some(&detail.job.job.namespace))?;
    let required = detail.job.job.executor.scaling.required();
    let mut view = JobView::from(detail);
    if view.state.is_pending() {
        view.estimated_start_at = state.store.estimates(&[id]).await?.remove(&id);
    }
    if matches!(view.state, JobState::Submitted | JobState::Running)
        && let (Some(app), Some(cluster)) = (&view.spark_application, &state.cluster)
    {
        let progress = cluster.app_pods(&view.namespace, app);
        view.pods = Some(PodsView {
            driver: progress.driver,
            executors_running: progress.executors_running,
            executors_required: required,
        });
    }
    Ok(Json(view))
}

/// The answer to a cancellation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cancelled {
    /// The job.
    id: JobId,
    /// Always `cancelled`.
    state: JobState,
    /// The state it left.
    previous_state: JobState,
    /// What happens next.
    message: &'static str,
}

/// `POST /v1/jobs/{id}/cancel`: a job not yet finished becomes `cancelled` (409 when it has
/// ended). A submitted or running job's SparkApplication is then deleted by the tracker.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancelJob",
    summary = "Cancel a job that has not finished",
    description = "Requires the `submit` role for the job's namespace.",
    params(("id" = JobId, Path, description = "Job id (UUID).")),
    responses(
        (status = 200, description = "Cancelled; a submitted or running job's SparkApplication is deleted.", body = Cancelled),
        (status = 404, description = "No such job.", body = ErrorBody),
        (status = 409, description = "The job has already ended.", body = ErrorBody),
    )
)]
pub async fn cancel(
    axum::extract::State(state): axum::extract::State<ApiState>,
    Authed(caller): Authed,
    PathParam(id): PathParam<JobId>,
) -> Result<Json<Cancelled>, ApiError> {
    caller.require(Role::Submit, None)?;
    let stored = state
        .store
        .job(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id} does not exist")))?;
    caller.require(Role::Submit, Some(&stored.job.namespace))?;
    let note = Note::new(
        "cancelled",
        format!("cancelled through the API by {}", caller.name),
    );
    match state.store.cancel_job(id, note).await? {
        CancelOutcome::Cancelled(from) => {
            tracing::info!(job = %id, from = %from, "job cancelled");
            Ok(Json(Cancelled {
                id,
                state: JobState::Cancelled,
                previous_state: from,
                message: if from.is_active() {
                    "cancelled; its SparkApplication is being deleted"
                } else {
                    "cancelled"
                },
            }))
        }
        CancelOutcome::AlreadyEnded(now) => Err(ApiError::conflict(format!(
            "job {id} is {now}; only queued, waiting, submitted, running or retrying jobs can be cancelled"
        ))),
    }
}

/// At most `n` characters of an untrusted string, for messages.
pub fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(items: &[i64], next: bool) -> Page<i64, i64> {
        Page {
            items: items.to_vec(),
            next: next.then(|| *items.last().unwrap()),
        }
    }

    /// Pages of each namespace, the merged items, the merged cursor.
    type Case<'a> = (&'a [Page<i64, i64>], &'a [i64], Option<i64>);

    #[test]
    fn merged_pages_equal_the_union_listing() {
        // Three namespaces' ids, listed ascending with limit 3 after cursor 0.
        let cases: [Case<'_>; 4] = [
            (
                &[
                    page(&[1, 4, 7], true),
                    page(&[2, 5], false),
                    page(&[3], false),
                ],
                &[1, 2, 3],
                Some(3),
            ),
            (&[page(&[1], false), page(&[2], false)], &[1, 2], None),
            (
                &[page(&[1, 2, 3], false), page(&[], false)],
                &[1, 2, 3],
                None,
            ),
            (
                &[page(&[5, 6, 7], true), page(&[1, 2, 3], false)],
                &[1, 2, 3],
                Some(3),
            ),
        ];
        for (pages, items, next) in cases {
            let merged = merge_pages(pages.to_vec(), 3, |i| *i, |i| *i);
            assert_eq!(merged.items, items);
            assert_eq!(merged.next, next);
        }
        let desc = merge_pages(
            vec![page(&[9, 3], false), page(&[8, 7], false)],
            3,
            |i| std::cmp::Reverse(*i),
            |i| *i,
        );
        assert_eq!((desc.items, desc.next), (vec![9, 8, 7], Some(7)));
    }
}
