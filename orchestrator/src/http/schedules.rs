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
use serde_json::Value;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::extract::{Authed, JsonBody, PathParam, QueryParams};
use super::jobs::truncate;
use super::state::ApiState;

/// Most fire times one answer lists.
const MAX_FIRES: usize = 100;
/// Default number of fire times listed.
const DEFAULT_FIRES: usize = 5;
/// Recent fires shown by `GET /v1/schedules/{name}`.
const RECENT_FIRES: usize = 20;

fn invalid(problems: Vec<Problem>) -> ApiError {
    let n = problems.len();
    let first = problems
        .first()
        .map(ToString::to_string)
        .unwrap_or_default();
    ApiError::bad_request(
        "invalid-schedule",
        format!(
            "the schedule is invalid ({n} problem{}): {first}",
            if n == 1 { "" } else { "s" }
        ),
    )
    .with_problems(problems)
}

/// A fire time.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FireView {
    /// Wall-clock time in the schedule's zone.
    nominal: NaiveDateTime,
    /// The instant.
    at: chrono::DateTime<Utc>,
}

/// A past fire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PastFire {
    nominal: NaiveDateTime,
    job_id: Option<JobId>,
}

/// A schedule with its next fires (none while suspended).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    #[serde(flatten)]
    schedule: Schedule,
    next_fires: Vec<FireView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_fires: Option<Vec<PastFire>>,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FiresQuery {
    namespace: Option<String>,
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
    let schedule = state.store.schedule(name).await?.ok_or_else(|| {
        ApiError::not_found(format!("no schedule named {:?}", truncate(name, 80)))
    })?;
    caller.require(role, Some(&schedule.definition.namespace))?;
    Ok(schedule)
}

/// `GET /v1/schedules?namespace=&fires=`.
pub async fn list(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<FiresQuery>,
) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `GET /v1/schedules/{name}?fires=`: with the recent fires.
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
pub async fn create(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    JsonBody(request): JsonBody<ScheduleRequest>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin, None)?;
    let new = check(request, &state.catalog).map_err(invalid)?;
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
pub async fn update(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
    JsonBody(request): JsonBody<ScheduleRequest>,
) -> Result<Json<ScheduleView>, ApiError> {
    caller.require(Role::Admin, None)?;
    find(&state, &caller, Role::Admin, &name).await?;
    let new = check(request, &state.catalog).map_err(invalid)?;
    caller.require(Role::Admin, Some(&new.namespace))?;
    let schedule = state.store.update_schedule(&name, &new).await?;
    tracing::info!(schedule = %schedule.definition.name, "schedule replaced");
    Ok(Json(view(schedule, DEFAULT_FIRES)))
}

/// `DELETE /v1/schedules/{name}` → 204 (its jobs stay).
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
pub async fn pause(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    set_suspended(state, caller, name, true).await
}

/// `POST /v1/schedules/{name}/resume`: fires resume at the next nominal time (what fell due
/// while paused is not caught up).
pub async fn resume(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    PathParam(name): PathParam<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    set_suspended(state, caller, name, false).await
}
