//! `/v1/schedules`: create, list, show, replace, delete, pause, resume — each answer with the
//! next fire times.
//!
//! A schedule is checked whole by [`schedules::check`] before it is stored, every problem
//! reported at once with its path.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};
use jobs::{JobId, Problem};
use queues::store::Schedule;
use schedules::{CronSpec, ScheduleRequest, check};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Caller, Role};
use super::contract::{self, Contract};
use super::error::{ApiError, Body as ErrorBody};
use super::extract::{Authed, JsonBytes, PathParam, QueryParams, parse_json};
use super::jobs::truncate;
use super::state::ApiState;

/// Most fire times one answer lists.
const MAX_FIRES: usize = 100;
/// Default number of fire times listed.
const DEFAULT_FIRES: usize = 5;
/// Recent fires shown by `GET /v1/schedules/{name}`.
const RECENT_FIRES: usize = 20;

/// A refused schedule: `400` when the body breaks the schedule schema, `422` when it conforms
/// but the checks refuse it (cron, zone, the template against the config).
fn invalid(problems: Vec<Problem>, body: &[u8]) -> ApiError {
    let n = problems.len();
    let first = problems
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    ApiError::new(
        contract::refusal_status(Contract::Schedule, body),
        "invalid-schedule",
        format!(
            "the schedule is invalid ({n} problem{}): {first}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_problems(problems)
}

/// A fire time.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FireView {
    /// Wall-clock time in the schedule's zone (no offset).
    #[schema(value_type = String)]
    nominal: NaiveDateTime,
    /// The instant.
    at: chrono::DateTime<Utc>,
}

/// A past fire.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PastFire {
    /// Wall-clock time in the schedule's zone (no offset).
    #[schema(value_type = String)]
    nominal: NaiveDateTime,
    /// The job it enqueued (null when it enqueued none).
    #[schema(required)]
    job_id: Option<JobId>,
}

/// A schedule with its next fires (none while suspended).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Schedule)]
pub struct ScheduleView {
    #[serde(flatten)]
    schedule: Schedule,
    /// The next fire times; empty while suspended.
    next_fires: Vec<FireView>,
    /// The latest fires, newest first (`GET /v1/schedules/{name}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_fires: Option<Vec<PastFire>>,
}

/// Every schedule in scope, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    /// The schedules.
    items: Vec<ScheduleView>,
}

fn view(schedule: Schedule, fires: usize) -> ScheduleView {
    let next_fires = if schedule.definition.suspended {
        Vec::new()
    } else {
        CronSpec::parse(&schedule.definition.cron, &schedule.definition.time_zone)
            .map(|spec| {
                spec.fires_after(Utc::now())
                    .take(fires)
                    .map(|f| FireView {
                        nominal: f.nominal,
                        at: f.at,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    ScheduleView {
        schedule,
        next_fires,
        recent_fires: None,
    }
}

/// Query of the reading endpoints: how many fire times to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FiresQuery {
    /// Only this namespace (listing; ignored when showing one schedule).
    namespace: Option<String>,
    /// How many next fire times to list, 0–100 (default 5).
    #[param(minimum = 0, maximum = 100)]
    fires: Option<usize>,
}

fn fires(q: &FiresQuery) -> Result<usize, ApiError> {
    match q.fires {
        None => Ok(DEFAULT_FIRES),
        Some(n) if n <= MAX_FIRES => Ok(n),
        Some(n) => Err(ApiError::bad_request(
            "invalid-query",
            format!("fires {n} is out of range; use 0 to {MAX_FIRES}"),
        )),
    }
}

/// A schedule the caller may act on with `role` (404 if absent, 403 if out of scope).
async fn find(
    state: &ApiState,
    caller: &Caller,
    role: Role,
    name: &str,
) -> Result<Schedule, ApiError> {
    let missing = || ApiError::not_found(format!("no schedule named {:?}", truncate(name, 80)));
    // A name no schedule can have is not looked up (and a NUL never reaches PostgreSQL).
    if jobs::names::check_job_name(name).is_err() {
        return Err(missing());
    }
    let schedule = state.store.schedule(name).await?.ok_or_else(missing)?;
    caller.require(role, Some(&schedule.definition.namespace))?;
    Ok(schedule)
}

/// `GET /v1/schedules?namespace=&fires=`.
#[utoipa::path(
    get, path = "/v1/schedules", tag = "schedules", operation_id = "listSchedules",
    summary = "List schedules with their next fire times",
    description = "Requires the `read` role; a token limited to namespaces sees only theirs.",
    params(FiresQuery),
    responses((status = 200, description = "Every schedule in scope, by name.", body = ScheduleList))
)]
pub async fn list(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<FiresQuery>,
) -> Result<Json<ScheduleList>, ApiError> {
    caller.require(Role::Read, None)?;
    let n = fires(&q)?;
    if let Some(ns) = &q.namespace {
        caller.require(Role::Read, Some(ns))?;
    }
    let items: Vec<ScheduleView> = state
        .store
        .schedules()
        .await?
        .into_iter()
        .filter(|s| caller.may_access(&s.definition.namespace))
        .filter(|s| {
            q.namespace
                .as_ref()
                .is_none_or(|ns| *ns == s.definition.namespace)
        })
        .map(|s| view(s, n))
        .collect();
    Ok(Json(ScheduleList { items }))
}

/// `GET /v1/schedules/{name}?fires=`: with the recent fires.
#[utoipa::path(
    get, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "getSchedule",
    summary = "A schedule, its next and recent fires",
    description = "Requires the `read` role for the schedule's namespace.",
    params(("name" = String, Path, description = "Schedule name."), FiresQuery),
    responses(
        (status = 200, description = "The schedule.", body = ScheduleView),
        (status = 404, description = "No such schedule.", body = ErrorBody),
    )
)]
pub async fn show(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
    QueryParams(q): QueryParams<FiresQuery>,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Role::Read, None)?;
    let n = fires(&q)?;
    let schedule = find(&state, &caller, Role::Read, &name).await?;
    let past = state.store.cron_fires(schedule.id).await?;
    let recent = past
        .iter()
        .rev()
        .take(RECENT_FIRES)
        .map(|(nominal, job)| PastFire {
            nominal: *nominal,
            job_id: *job,
        })
        .collect();
    let mut v = view(schedule, n);
    v.recent_fires = Some(recent);
    Ok(Json(v))
}

/// `POST /v1/schedules` → 201.
#[utoipa::path(
    post, path = "/v1/schedules", tag = "schedules", operation_id = "createSchedule",
    summary = "Create a schedule",
    description = "Requires the `admin` role for the template's namespace.",
    request_body(content = ScheduleRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created.", body = ScheduleView,
            headers(("Location" = String, description = "The schedule's URL.")),
            links(
                ("GetSchedule" = (operation_id = "getSchedule", parameters(("name" = "$response.body#/name")))),
                ("ReplaceSchedule" = (operation_id = "replaceSchedule", parameters(("name" = "$response.body#/name")))),
                ("PauseSchedule" = (operation_id = "pauseSchedule", parameters(("name" = "$response.body#/name")))),
                ("ResumeSchedule" = (operation_id = "resumeSchedule", parameters(("name" = "$response.body#/name")))),
                ("DeleteSchedule" = (operation_id = "deleteSchedule", parameters(("name" = "$response.body#/name"))))
            )),
        (status = 400, description = "The body is not JSON or breaks the schedule schema; every problem is listed (template problems under `$.jobTemplate`).", body = ErrorBody),
        (status = 409, description = "The name is taken.", body = ErrorBody),
        (status = 422, description = "The schedule conforms to the schema but is refused (cron expression, time zone, the template against the config); every problem is listed.", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let request: ScheduleRequest = parse_json(&body)?;
    caller.require(Role::Admin, None)?;
    let new = check(request, &state.catalog).map_err(|p| invalid(p, &body))?;
    caller.require(Role::Admin, Some(&new.namespace))?;
    let schedule = state.store.create_schedule(&new).await?;
    tracing::info!(schedule = %schedule.definition.name, namespace = %schedule.definition.namespace, "schedule created");
    let location =
        HeaderValue::from_str(&format!("/v1/schedules/{}", schedule.definition.name)).ok();
    let mut response = (StatusCode::CREATED, Json(view(schedule, DEFAULT_FIRES))).into_response();
    if let Some(l) = location {
        response.headers_mut().insert(header::LOCATION, l);
    }
    Ok(response)
}

/// `PUT /v1/schedules/{name}`: replaces the definition (what it fired stays).
#[utoipa::path(
    put, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "replaceSchedule",
    summary = "Replace a schedule's definition",
    description = "Requires the `admin` role for the schedule's and the template's namespace.",
    params(("name" = String, Path, description = "Schedule name.")),
    request_body(content = ScheduleRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced.", body = ScheduleView),
        (status = 400, description = "The body is not JSON or breaks the schedule schema; every problem is listed.", body = ErrorBody),
        (status = 404, description = "No such schedule.", body = ErrorBody),
        (status = 409, description = "The new name is taken.", body = ErrorBody),
        (status = 422, description = "The schedule conforms to the schema but is refused; every problem is listed.", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
    JsonBytes(body): JsonBytes,
) -> Result<Json<ScheduleView>, ApiError> {
    let request: ScheduleRequest = parse_json(&body)?;
    caller.require(Role::Admin, None)?;
    find(&state, &caller, Role::Admin, &name).await?;
    let new = check(request, &state.catalog).map_err(|p| invalid(p, &body))?;
    caller.require(Role::Admin, Some(&new.namespace))?;
    let schedule = state.store.update_schedule(&name, &new).await?;
    tracing::info!(schedule = %schedule.definition.name, "schedule replaced");
    Ok(Json(view(schedule, DEFAULT_FIRES)))
}

/// `DELETE /v1/schedules/{name}` → 204 (its jobs stay).
#[utoipa::path(
    delete, path = "/v1/schedules/{name}", tag = "schedules", operation_id = "deleteSchedule",
    summary = "Delete a schedule (its jobs stay)",
    description = "Requires the `admin` role for the schedule's namespace.",
    params(("name" = String, Path, description = "Schedule name.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such schedule.", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(Role::Admin, None)?;
    find(&state, &caller, Role::Admin, &name).await?;
    if state.store.delete_schedule(&name).await? {
        tracing::info!(schedule = %name, "schedule deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no schedule named {:?}",
            truncate(&name, 80)
        )))
    }
}

async fn set_suspended(
    state: ApiState,
    caller: Caller,
    name: String,
    suspended: bool,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Role::Admin, None)?;
    find(&state, &caller, Role::Admin, &name).await?;
    let schedule = state.store.set_schedule_suspended(&name, suspended).await?;
    tracing::info!(schedule = %name, suspended, "schedule suspension changed");
    Ok(Json(view(schedule, DEFAULT_FIRES)))
}

/// `POST /v1/schedules/{name}/pause`.
#[utoipa::path(
    post, path = "/v1/schedules/{name}/pause", tag = "schedules", operation_id = "pauseSchedule",
    summary = "Suspend a schedule",
    description = "Requires the `admin` role for the schedule's namespace.",
    params(("name" = String, Path, description = "Schedule name.")),
    responses(
        (status = 200, description = "Suspended.", body = ScheduleView),
        (status = 404, description = "No such schedule.", body = ErrorBody),
    )
)]
pub async fn pause(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    set_suspended(state, caller, name, true).await
}

/// `POST /v1/schedules/{name}/resume`: fires resume at the next nominal time (what fell due
/// while paused is not caught up).
#[utoipa::path(
    post, path = "/v1/schedules/{name}/resume", tag = "schedules", operation_id = "resumeSchedule",
    summary = "Resume a schedule (what fell due while suspended is not caught up)",
    description = "Requires the `admin` role for the schedule's namespace.",
    params(("name" = String, Path, description = "Schedule name.")),
    responses(
        (status = 200, description = "Resumed.", body = ScheduleView),
        (status = 404, description = "No such schedule.", body = ErrorBody),
    )
)]
pub async fn resume(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    set_suspended(state, caller, name, false).await
}
