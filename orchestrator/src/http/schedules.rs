//! `/v1/schedules`: create, list, show, replace, delete, pause, resume — each answer with the
//! next fire times.
//!
//! A schedule is checked whole before it is stored, every problem reported at once with its
//! path: the name, the cron expression and time zone ([`CronSpec::parse`]), the policies, and
//! the job template, validated against the catalog as a job (it must not carry an `id`: each
//! fire gets its own). The template is stored as given, so catalog defaults apply at each fire.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDateTime, Utc};
use jobs::{JobId, Problem, ProblemCode};
use queues::store::{NewSchedule, Schedule};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{Caller, Role};
use super::error::ApiError;
use super::extract::{Authed, JsonBody, PathParam, QueryParams};
use super::jobs::truncate;
use super::state::ApiState;
use crate::cron::CronSpec;
use crate::cron::runner::{parse_concurrency, parse_missed};

/// Most fire times one answer lists.
const MAX_FIRES: usize = 100;
/// Default number of fire times listed.
const DEFAULT_FIRES: usize = 5;
/// Recent fires shown by `GET /v1/schedules/{name}`.
const RECENT_FIRES: usize = 20;

/// Body of `POST /v1/schedules` and `PUT /v1/schedules/{name}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Unique name (the job-name rule).
    pub name: String,
    /// Optional; must equal the template's namespace when given.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cron expression, 5 or 6 fields or a nickname.
    pub cron: String,
    /// IANA zone (default `UTC`).
    #[serde(default = "utc")]
    pub time_zone: String,
    /// The job each fire enqueues, without `id`.
    pub job_template: Value,
    /// `skip` (default), `run-latest`, `catch-up`.
    #[serde(default = "skip")]
    pub missed_run_policy: String,
    /// With `catch-up`: most missed runs fired at once (1–1000, default 1).
    #[serde(default)]
    pub catch_up_limit: Option<u32>,
    /// How late a fire may still start (1 s – 7 days, default 300).
    #[serde(default)]
    pub starting_deadline_seconds: Option<u32>,
    /// `allow` (default), `forbid`, `replace`.
    #[serde(default = "allow")]
    pub concurrency_policy: String,
    /// Create suspended.
    #[serde(default)]
    pub suspended: bool,
}

fn utc() -> String {
    "UTC".into()
}
fn skip() -> String {
    "skip".into()
}
fn allow() -> String {
    "allow".into()
}

fn problem(code: ProblemCode, path: &str, message: impl Into<String>) -> Problem {
    Problem {
        code,
        path: path.into(),
        message: message.into(),
    }
}

/// Checks a request against the catalog: the schedule to store, or every problem.
pub fn check(
    request: ScheduleRequest,
    catalog: &jobs::Catalog,
) -> Result<NewSchedule, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Err(m) = jobs::names::check_job_name(&request.name) {
        problems.push(problem(
            ProblemCode::InvalidName,
            "$.name",
            format!(
                "schedule name {:?} is invalid: {m}",
                truncate(&request.name, 80)
            ),
        ));
    }
    match request.time_zone.parse::<chrono_tz::Tz>() {
        Err(_) => problems.push(problem(
            ProblemCode::InvalidValue,
            "$.timeZone",
            format!(
                "time zone {:?} is not an IANA zone name like \"Europe/Berlin\" or \"UTC\"",
                truncate(&request.time_zone, 80)
            ),
        )),
        Ok(_) => {
            if let Err(e) = CronSpec::parse(&request.cron, &request.time_zone) {
                problems.push(problem(ProblemCode::InvalidValue, "$.cron", e.0));
            }
        }
    }
    let catch_up_limit = request.catch_up_limit.unwrap_or(1);
    if !(1..=1000).contains(&catch_up_limit) {
        problems.push(problem(
            ProblemCode::OutOfRange,
            "$.catchUpLimit",
            format!("catchUpLimit {catch_up_limit} must be between 1 and 1000"),
        ));
    }
    if let Err(m) = parse_missed(&request.missed_run_policy, catch_up_limit) {
        problems.push(problem(ProblemCode::InvalidValue, "$.missedRunPolicy", m));
    }
    if let Err(m) = parse_concurrency(&request.concurrency_policy) {
        problems.push(problem(ProblemCode::InvalidValue, "$.concurrencyPolicy", m));
    }
    let deadline = request.starting_deadline_seconds.unwrap_or(300);
    if !(1..=7 * 24 * 3600).contains(&deadline) {
        problems.push(problem(
            ProblemCode::OutOfRange,
            "$.startingDeadlineSeconds",
            format!("startingDeadlineSeconds {deadline} must be between 1 and 604800 (7 days)"),
        ));
    }
    let namespace = check_template(&request.job_template, catalog, &mut problems);
    if let (Some(given), Some(ns)) = (&request.namespace, &namespace)
        && given != ns
    {
        problems.push(problem(
            ProblemCode::ConflictingFields,
            "$.namespace",
            format!(
                "namespace {:?} differs from the job template's {ns:?}; omit it or make them equal",
                truncate(given, 80)
            ),
        ));
    }
    match namespace {
        Some(namespace) if problems.is_empty() => Ok(NewSchedule {
            name: request.name,
            namespace,
            cron: request.cron.trim().to_owned(),
            time_zone: request.time_zone,
            job_template: request.job_template,
            missed_run_policy: request.missed_run_policy,
            catch_up_limit,
            starting_deadline_seconds: deadline,
            concurrency_policy: request.concurrency_policy,
            suspended: request.suspended,
        }),
        _ => Err(problems),
    }
}

/// Validates the template as a job; returns its namespace when it is valid.
fn check_template(
    template: &Value,
    catalog: &jobs::Catalog,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let Some(map) = template.as_object() else {
        problems.push(problem(
            ProblemCode::WrongType,
            "$.jobTemplate",
            "jobTemplate must be a job message (a JSON object)",
        ));
        return None;
    };
    if map.contains_key("id") {
        problems.push(problem(
            ProblemCode::Forbidden,
            "$.jobTemplate.id",
            "a job template has no id: every fire gets its own",
        ));
    }
    // A fire adds its id: leave room for it within the message limit.
    let size = serde_json::to_vec(template).map_or(usize::MAX, |v| v.len()) + 64;
    let limit = catalog.limits().max_message_bytes;
    if size > limit {
        problems.push(problem(
            ProblemCode::TooLarge,
            "$.jobTemplate",
            format!(
                "the job template has about {size} bytes; a job message may have at most {limit}"
            ),
        ));
        return None;
    }
    match jobs::validate::validate_value(template, catalog) {
        Ok(job) => Some(job.namespace),
        Err(rejection) => {
            problems.extend(rejection.problems.into_iter().map(|mut p| {
                p.path = match p.path.strip_prefix('$') {
                    Some(rest) => format!("$.jobTemplate{rest}"),
                    None => format!("$.jobTemplate.{}", p.path),
                };
                p
            }));
            None
        }
    }
}

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
    let next_fires = if schedule.suspended {
        Vec::new()
    } else {
        CronSpec::parse(&schedule.cron, &schedule.time_zone)
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
    caller.require(role, Some(&schedule.namespace))?;
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
        .filter(|s| caller.may_access(&s.namespace))
        .filter(|s| q.namespace.as_ref().is_none_or(|ns| *ns == s.namespace))
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
    tracing::info!(schedule = %schedule.name, namespace = %schedule.namespace, "schedule created");
    let location = HeaderValue::from_str(&format!("/v1/schedules/{}", schedule.name)).ok();
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
    tracing::info!(schedule = %schedule.name, "schedule replaced");
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> jobs::Catalog {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/orchestrator.toml");
        crate::config::Config::from_file(&path).unwrap().catalog
    }

    fn request(edit: impl FnOnce(&mut Value)) -> ScheduleRequest {
        let mut v = json!({
            "name": "nightly",
            "cron": "0 2 * * *",
            "jobTemplate": {
                "apiVersion": "v1", "name": "etl", "namespace": "team-a", "mainApplicationFile": "local:///app.jar",
                "mainClass": "Main", "driver": {"nodeType": "small"},
                "executor": {"nodeType": "small", "instances": 1}
            }
        });
        edit(&mut v);
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_apply_and_the_namespace_comes_from_the_template() {
        let s = check(request(|_| {}), &catalog()).unwrap();
        assert_eq!(s.namespace, "team-a");
        assert_eq!(s.time_zone, "UTC");
        assert_eq!(
            (s.missed_run_policy.as_str(), s.concurrency_policy.as_str()),
            ("skip", "allow")
        );
        assert_eq!((s.catch_up_limit, s.starting_deadline_seconds), (1, 300));
    }

    #[test]
    fn each_mistake_is_one_problem_at_its_path() {
        type Edit = fn(&mut Value);
        let cases: [(Edit, &str); 8] = [
            (|v| v["name"] = json!("UPPER"), "$.name"),
            (|v| v["cron"] = json!("0 2 * *"), "$.cron"),
            (|v| v["timeZone"] = json!("Nowhere/Town"), "$.timeZone"),
            (
                |v| v["missedRunPolicy"] = json!("later"),
                "$.missedRunPolicy",
            ),
            (|v| v["catchUpLimit"] = json!(5000), "$.catchUpLimit"),
            (
                |v| v["concurrencyPolicy"] = json!("never"),
                "$.concurrencyPolicy",
            ),
            (
                |v| v["jobTemplate"]["id"] = json!("0190d3c4-0000-7000-8000-000000000001"),
                "$.jobTemplate.id",
            ),
            (
                |v| v["jobTemplate"]["driver"] = json!({"nodeType": "nope"}),
                "$.jobTemplate.driver.nodeType",
            ),
        ];
        for (edit, path) in cases {
            let problems = check(request(edit), &catalog()).unwrap_err();
            assert_eq!(problems.len(), 1, "{path}: {problems:?}");
            assert_eq!(problems[0].path, path);
        }
    }
}
