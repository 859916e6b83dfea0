//! Who the job is and where it queues: `apiVersion`, `id`, `name`, `namespace`, `priority`.

use super::fields::{optional_enum, required_str};
use crate::model::{API_VERSION, JobId, Priority};
use crate::names;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, Obj};

/// The identity part of a job.
#[derive(Debug, PartialEq)]
pub(super) struct Identity {
    pub(super) api_version: String,
    pub(super) id: JobId,
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) priority: Priority,
}

/// Every identity field, all checked before any is given up on.
pub(super) fn identity(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Identity> {
    let api_version = api_version(ctx, obj);
    let id = id(ctx, obj);
    let name = name(ctx, obj);
    let namespace = namespace(ctx, obj);
    let priority = priority(ctx, obj);
    Some(Identity {
        api_version: api_version?,
        id: id?,
        name: name?,
        namespace: namespace?,
        priority: priority?,
    })
}

fn api_version(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<String> {
    match obj.get("apiVersion") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("apiVersion"),
                format!("apiVersion is required; this version understands \"{API_VERSION}\""),
            );
            None
        }
        Some((v, at)) => ctx.string(v, &at, 32, false).and_then(|s| {
            if s == API_VERSION {
                Some(s.to_owned())
            } else {
                ctx.push(
                    P::UnsupportedApiVersion,
                    &at,
                    format!("apiVersion {s:?} is not supported; use \"{API_VERSION}\""),
                );
                None
            }
        }),
    }
}

/// The body's id, else the transport's (so a redelivered copy keeps its id), else a new one.
fn id(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<JobId> {
    match obj.get("id") {
        None => Some(ctx.defaults.id.unwrap_or_else(JobId::generate)),
        Some((v, at)) => ctx
            .string(v, &at, 64, false)
            .and_then(|s| match s.parse::<JobId>() {
                Ok(id) if !id.0.is_nil() => Some(id),
                Ok(_) => {
                    ctx.push(P::InvalidId, &at, "the nil UUID is not a job id");
                    None
                }
                Err(e) => {
                    ctx.push(P::InvalidId, &at, format!("{s:?} is not a UUID: {e}"));
                    None
                }
            }),
    }
}

fn name(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<String> {
    let (s, at) = required_str(ctx, obj, "name", names::MAX_JOB_NAME * 4)?;
    match names::check_job_name(s) {
        Ok(()) => Some(s.to_owned()),
        Err(why) => {
            ctx.push(
                P::InvalidName,
                &at,
                format!(
                    "name {s:?} is invalid: {why} (rule: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, at most {} characters)",
                    names::MAX_JOB_NAME
                ),
            );
            None
        }
    }
}

fn namespace(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<String> {
    let (s, at) = required_str(ctx, obj, "namespace", 253)?;
    if ctx.catalog.namespace(s).is_some() {
        return Some(s.to_owned());
    }
    let served: Vec<&str> = ctx.catalog.namespace_names().collect();
    ctx.push(
        P::UnknownNamespace,
        &at,
        format!(
            "namespace {s:?} is not served here; served namespaces: {}",
            served.join(", ")
        ),
    );
    None
}

/// The body's priority, else the queue's, else normal.
fn priority(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Priority> {
    optional_enum(
        ctx,
        obj,
        "priority",
        &[("high", Priority::High), ("normal", Priority::Normal)],
    )
    .unwrap_or(Some(ctx.defaults.priority.unwrap_or(Priority::Normal)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{catalog, problems_at, run_in, table};
    use super::*;
    use crate::validate::MessageDefaults;

    #[test]
    fn api_version_must_be_v1() {
        table(
            vec![
                (json!({"apiVersion": "v1"}), Some("v1".to_owned()), &[]),
                (json!({}), None, &[(P::MissingField, "$.apiVersion")]),
                (
                    json!({"apiVersion": "v2"}),
                    None,
                    &[(P::UnsupportedApiVersion, "$.apiVersion")],
                ),
                (
                    json!({"apiVersion": 1}),
                    None,
                    &[(P::WrongType, "$.apiVersion")],
                ),
                (
                    json!({"apiVersion": "v".repeat(33)}),
                    None,
                    &[(P::ValueTooLong, "$.apiVersion")],
                ),
            ],
            api_version,
        );
    }

    #[test]
    fn ids_are_non_nil_uuids() {
        let given = "0190f2a4-7c8e-7d3a-9b1c-2e4f6a8b0c1d";
        table(
            vec![
                (json!({"id": given}), given.parse().ok(), &[]),
                (
                    json!({"id": "00000000-0000-0000-0000-000000000000"}),
                    None,
                    &[(P::InvalidId, "$.id")],
                ),
                (json!({"id": "not-a-uuid"}), None, &[(P::InvalidId, "$.id")]),
                (json!({"id": 7}), None, &[(P::WrongType, "$.id")]),
                (
                    json!({"id": "a".repeat(65)}),
                    None,
                    &[(P::ValueTooLong, "$.id")],
                ),
            ],
            id,
        );
    }

    #[test]
    fn an_absent_id_comes_from_the_transport_or_is_generated() {
        let transport: JobId = "0190f2a4-7c8e-7d3a-9b1c-2e4f6a8b0c1d".parse().unwrap();
        let defaults = MessageDefaults {
            id: Some(transport),
            priority: None,
        };
        let (got, problems) = run_in(&catalog(), defaults, &json!({}), id);
        assert_eq!((got, problems), (Some(transport), vec![]));
        let (generated, _) = run_in(&catalog(), MessageDefaults::default(), &json!({}), id);
        assert_eq!(generated.unwrap().0.get_version_num(), 7);
    }

    #[test]
    fn names_follow_the_job_name_rule() {
        table(
            vec![
                (
                    json!({"name": "etl-daily"}),
                    Some("etl-daily".to_owned()),
                    &[],
                ),
                (json!({}), None, &[(P::MissingField, "$.name")]),
                (json!({"name": "ETL"}), None, &[(P::InvalidName, "$.name")]),
                (json!({"name": "-etl"}), None, &[(P::InvalidName, "$.name")]),
                (json!({"name": "a_b"}), None, &[(P::InvalidName, "$.name")]),
                (
                    json!({"name": "a".repeat(names::MAX_JOB_NAME + 1)}),
                    None,
                    &[(P::InvalidName, "$.name")],
                ),
                (
                    json!({"name": "a".repeat(names::MAX_JOB_NAME * 4 + 1)}),
                    None,
                    &[(P::ValueTooLong, "$.name")],
                ),
            ],
            name,
        );
    }

    #[test]
    fn namespaces_must_be_served() {
        table(
            vec![
                (
                    json!({"namespace": "team-b"}),
                    Some("team-b".to_owned()),
                    &[],
                ),
                (json!({}), None, &[(P::MissingField, "$.namespace")]),
                (
                    json!({"namespace": "team-c"}),
                    None,
                    &[(P::UnknownNamespace, "$.namespace")],
                ),
                (
                    json!({"namespace": ["team-a"]}),
                    None,
                    &[(P::WrongType, "$.namespace")],
                ),
            ],
            namespace,
        );
    }

    #[test]
    fn priority_comes_from_the_body_then_the_queue() {
        table(
            vec![
                (json!({}), Some(Priority::Normal), &[]),
                (json!({"priority": "high"}), Some(Priority::High), &[]),
                (
                    json!({"priority": "urgent"}),
                    None,
                    &[(P::InvalidValue, "$.priority")],
                ),
            ],
            priority,
        );
        let queue = MessageDefaults {
            id: None,
            priority: Some(Priority::High),
        };
        for (body, want) in [
            (json!({}), Priority::High),
            (json!({"priority": "normal"}), Priority::Normal),
        ] {
            let (got, problems) = run_in(&catalog(), queue, &body, priority);
            assert_eq!((got, problems), (Some(want), vec![]), "{body}");
        }
    }

    #[test]
    fn identity_reports_every_field_before_giving_up() {
        let body = json!({"apiVersion": "v9", "id": "x", "name": "Bad", "namespace": "nope", "priority": "low"});
        let (got, problems) = run_in(&catalog(), MessageDefaults::default(), &body, identity);
        assert_eq!(got, None);
        assert_eq!(
            problems,
            problems_at(&[
                (P::UnsupportedApiVersion, "$.apiVersion"),
                (P::InvalidId, "$.id"),
                (P::InvalidName, "$.name"),
                (P::UnknownNamespace, "$.namespace"),
                (P::InvalidValue, "$.priority"),
            ])
        );
    }
}
