//! A schedule's definition: the request users send (`POST`/`PUT /v1/schedules`, `orchestrator
//! schedules create`), and [`check`], the one place that turns it into a typed
//! [`ScheduleDefinition`] or reports every problem at once with its JSON path — the name, the
//! cron expression and time zone, the policies, and the job template, validated against the
//! catalog as a job (without `id`: each fire gets its own). The template is kept as given, so
//! catalog defaults apply at each fire.

use jobs::{Problem, ProblemCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::policy::{ConcurrencyPolicy, MissedRunPolicy};
use crate::spec::CronSpec;

/// Body of `POST /v1/schedules` and `PUT /v1/schedules/{name}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({
    "name": "nightly-pi",
    "cron": "0 2 * * *",
    "timeZone": "Europe/Berlin",
    "jobTemplate": {
        "apiVersion": "v1",
        "name": "nightly-pi",
        "namespace": "team-a",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
        "executor": {"nodeType": "small", "instances": 1}
    },
    "concurrencyPolicy": "forbid"
})))]
pub struct ScheduleRequest {
    /// Unique name (the job-name rule).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 53
    )]
    pub name: String,
    /// Optional; must equal the template's namespace when given.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Cron expression: 5 fields (minute hour day-of-month month day-of-week), 6 with seconds
    /// first, or a nickname (`@hourly`, `@daily`, …).
    #[schema(min_length = 1)]
    pub cron: String,
    /// IANA zone (default `UTC`).
    #[serde(default = "utc")]
    #[schema(default = "UTC", min_length = 1)]
    pub time_zone: String,
    /// The job each fire enqueues: a job message without `id` (each fire gets its own).
    #[schema(value_type = jobs::model::JobMessage)]
    pub job_template: Value,
    /// `skip` (default), `run-latest`, `catch-up`.
    #[serde(default = "skip")]
    #[schema(schema_with = missed_run_policy_schema)]
    pub missed_run_policy: String,
    /// Most missed runs fired at once (1–1000, default 1); checked whatever the policy.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub catch_up_limit: Option<u32>,
    /// How late a fire may still start, in seconds (1 s – 7 days, default 300).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 604800)]
    pub starting_deadline_seconds: Option<u32>,
    /// `allow` (default), `forbid`, `replace`.
    #[serde(default = "allow")]
    #[schema(value_type = ConcurrencyPolicy, default = "allow")]
    pub concurrency_policy: String,
    /// Create suspended.
    #[serde(default)]
    pub suspended: bool,
}

/// `missedRunPolicy` as the request writes it (the typed [`MissedRunPolicy`] is two fields).
fn missed_run_policy_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["skip", "run-latest", "catch-up"]))
        .default(Some("skip".into()))
        .build()
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

/// At most `max` characters of `s`, for quoting user input in messages.
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A checked schedule definition, as the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleDefinition {
    /// Unique name.
    pub name: String,
    /// The namespace its jobs run in (the template's).
    pub namespace: String,
    /// Cron expression, 5 or 6 fields or a nickname.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub time_zone: String,
    /// The job each fire enqueues (a job message without `id`).
    pub job_template: Value,
    /// What happens to fires whose time has passed.
    #[serde(flatten)]
    #[schema(value_type = crate::policy::MissedWire)]
    pub missed: MissedRunPolicy,
    /// How late a fire may still start, in seconds.
    pub starting_deadline_seconds: u32,
    /// What a fire does while earlier runs are active.
    pub concurrency_policy: ConcurrencyPolicy,
    /// Suspended schedules fire nothing.
    pub suspended: bool,
}

/// Checks a request against the catalog: the schedule to store, or every problem.
pub fn check(
    request: ScheduleRequest,
    catalog: &jobs::Catalog,
) -> Result<ScheduleDefinition, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Err(m) = jobs::names::check_job_name(&request.name) {
        problems.push(problem(
            ProblemCode::InvalidName,
            "$.name",
            format!(
                "schedule name {:?} is invalid: {m}",
                truncate_chars(&request.name, 80)
            ),
        ));
    }
    match request.time_zone.parse::<chrono_tz::Tz>() {
        Err(_) => problems.push(problem(
            ProblemCode::InvalidValue,
            "$.timeZone",
            format!(
                "time zone {:?} is not an IANA zone name like \"Europe/Berlin\" or \"UTC\"",
                truncate_chars(&request.time_zone, 80)
            ),
        )),
        Ok(_) => {
            if let Err(e) = CronSpec::parse(&request.cron, &request.time_zone) {
                problems.push(problem(ProblemCode::InvalidValue, "$.cron", e.0));
            }
        }
    }
    // The limit is checked whatever the policy, so a mistake is not silently ignored.
    let catch_up = MissedRunPolicy::parse("catch-up", request.catch_up_limit)
        .map_err(|(_, why)| problems.push(problem(ProblemCode::OutOfRange, "$.catchUpLimit", why)))
        .ok();
    let missed = match MissedRunPolicy::parse(&request.missed_run_policy, request.catch_up_limit) {
        Ok(p) => Some(p),
        Err(("missedRunPolicy", why)) => {
            problems.push(problem(ProblemCode::InvalidValue, "$.missedRunPolicy", why));
            None
        }
        Err(_) => catch_up,
    };
    let concurrency = ConcurrencyPolicy::parse(&request.concurrency_policy)
        .map_err(|why| {
            problems.push(problem(
                ProblemCode::InvalidValue,
                "$.concurrencyPolicy",
                why,
            ))
        })
        .ok();
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
                truncate_chars(given, 80)
            ),
        ));
    }
    match (namespace, missed, concurrency) {
        (Some(namespace), Some(missed), Some(concurrency)) if problems.is_empty() => {
            Ok(ScheduleDefinition {
                name: request.name,
                namespace,
                cron: request.cron.trim().to_owned(),
                time_zone: request.time_zone,
                job_template: request.job_template,
                missed,
                starting_deadline_seconds: deadline,
                concurrency_policy: concurrency,
                suspended: request.suspended,
            })
        }
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

#[cfg(test)]
mod tests {
    use jobs::Catalog;
    use serde_json::json;

    use super::*;

    fn catalog() -> Catalog {
        let text = r#"
            [namespaces.team-a]
            [node_types.small]
            cpu = "1"
            memory = "4Gi"
            [defaults]
            image = "apache/spark:3.5.3"
            spark_version = "3.5.3"
            driver_node_type = "small"
            executor_node_type = "small"
        "#;
        Catalog::new(toml::from_str(text).unwrap()).unwrap()
    }

    fn request(change: impl FnOnce(&mut Value)) -> Result<ScheduleRequest, serde_json::Error> {
        let mut v = json!({
            "name": "nightly",
            "cron": "30 2 * * *",
            "timeZone": "Europe/Berlin",
            "jobTemplate": {
                "apiVersion": "v1", "name": "nightly", "namespace": "team-a",
                "mainApplicationFile": "local:///opt/app.jar"
            },
            "missedRunPolicy": "catch-up",
            "catchUpLimit": 3,
            "concurrencyPolicy": "forbid"
        });
        change(&mut v);
        serde_json::from_value(v)
    }

    #[test]
    fn a_valid_request_becomes_a_typed_definition() {
        let d = check(request(|_| {}).unwrap(), &catalog()).unwrap();
        assert_eq!(d.namespace, "team-a", "taken from the template");
        assert_eq!(d.missed, MissedRunPolicy::CatchUp { max: 3 });
        assert_eq!(d.concurrency_policy, ConcurrencyPolicy::Forbid);
        assert_eq!(d.starting_deadline_seconds, 300, "the default deadline");
        let wire = serde_json::to_value(&d).unwrap();
        assert_eq!(wire["missedRunPolicy"], "catch-up");
        assert_eq!(wire["catchUpLimit"], 3);
        assert_eq!(wire["concurrencyPolicy"], "forbid");
    }

    #[test]
    fn defaults_apply_when_the_request_leaves_them_out() {
        let minimal = request(|v| {
            let map = v.as_object_mut().unwrap();
            for key in [
                "timeZone",
                "missedRunPolicy",
                "catchUpLimit",
                "concurrencyPolicy",
            ] {
                map.remove(key);
            }
        });
        let d = check(minimal.unwrap(), &catalog()).unwrap();
        assert_eq!(d.time_zone, "UTC");
        assert_eq!(d.missed, MissedRunPolicy::Skip);
        assert_eq!(d.concurrency_policy, ConcurrencyPolicy::Allow);
        assert!(!d.suspended);
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        type Change = fn(&mut Value);
        type Expected = &'static [(ProblemCode, &'static str)];
        let cases: &[(&str, Change, Expected)] = &[
            (
                "bad name",
                |v| v["name"] = json!("Nightly_ETL"),
                &[(ProblemCode::InvalidName, "$.name")],
            ),
            (
                "bad zone",
                |v| v["timeZone"] = json!("Mars/Olympus"),
                &[(ProblemCode::InvalidValue, "$.timeZone")],
            ),
            (
                "bad cron",
                |v| v["cron"] = json!("61 * * * *"),
                &[(ProblemCode::InvalidValue, "$.cron")],
            ),
            (
                "limit 0",
                |v| v["catchUpLimit"] = json!(0),
                &[(ProblemCode::OutOfRange, "$.catchUpLimit")],
            ),
            (
                "limit with skip",
                |v| {
                    v["missedRunPolicy"] = json!("skip");
                    v["catchUpLimit"] = json!(5000)
                },
                &[(ProblemCode::OutOfRange, "$.catchUpLimit")],
            ),
            (
                "bad missed",
                |v| v["missedRunPolicy"] = json!("later"),
                &[(ProblemCode::InvalidValue, "$.missedRunPolicy")],
            ),
            (
                "bad concurrency",
                |v| v["concurrencyPolicy"] = json!("queue"),
                &[(ProblemCode::InvalidValue, "$.concurrencyPolicy")],
            ),
            (
                "deadline 0",
                |v| v["startingDeadlineSeconds"] = json!(0),
                &[(ProblemCode::OutOfRange, "$.startingDeadlineSeconds")],
            ),
            (
                "template id",
                |v| v["jobTemplate"]["id"] = json!("0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01"),
                &[(ProblemCode::Forbidden, "$.jobTemplate.id")],
            ),
            (
                "template not object",
                |v| v["jobTemplate"] = json!([1]),
                &[(ProblemCode::WrongType, "$.jobTemplate")],
            ),
            (
                "template invalid",
                |v| v["jobTemplate"]["namespace"] = json!("nope"),
                &[(ProblemCode::UnknownNamespace, "$.jobTemplate.namespace")],
            ),
            (
                "namespace differs",
                |v| v["namespace"] = json!("team-b"),
                &[(ProblemCode::ConflictingFields, "$.namespace")],
            ),
            (
                "two at once",
                |v| {
                    v["name"] = json!("-x");
                    v["concurrencyPolicy"] = json!("")
                },
                &[
                    (ProblemCode::InvalidName, "$.name"),
                    (ProblemCode::InvalidValue, "$.concurrencyPolicy"),
                ],
            ),
        ];
        for (case, change, want) in cases {
            let problems = check(request(change).unwrap(), &catalog()).unwrap_err();
            let got: Vec<(ProblemCode, &str)> =
                problems.iter().map(|p| (p.code, p.path.as_str())).collect();
            assert_eq!(&got, want, "{case}: {problems:?}");
        }
    }

    #[test]
    fn hostile_requests_are_refused_by_their_shape() {
        assert!(
            request(|v| v["colour"] = json!("red")).is_err(),
            "unknown fields"
        );
        assert!(
            request(|v| v["catchUpLimit"] = json!(-1)).is_err(),
            "negative limit"
        );
        let long = "x".repeat(100_000);
        let problems = check(
            request(|v| v["timeZone"] = json!(long)).unwrap(),
            &catalog(),
        )
        .unwrap_err();
        assert!(
            problems[0].message.len() < 300,
            "user input is truncated in messages"
        );
    }
}
