//! One delivery → one [`IntakeItem`]: a job to store or a dead letter to record. Pure: the
//! rules are unit-tested here without a broker.
//!
//! The rules (documented in the README):
//! - the content type must be absent or `application/json` (parameters such as `charset`
//!   allowed), and there must be no content encoding;
//! - the body is validated with [`parse_job_with`]; the AMQP `message_id` supplies the job id
//!   when the body has none (a UUID is used as is; any other string is mapped to a stable
//!   UUID v5, so redeliveries still collapse into one job), and the queue supplies the
//!   priority when the body has none;
//! - if the body has an `id` **and** `message_id` is a different UUID, the message is
//!   invalid (`conflicting-fields` at `$.id`): its identity is ambiguous, and guessing could
//!   run a job twice or drop one. A non-UUID `message_id` is just a tracing tag then;
//! - a body whose namespace or priority contradicts the queue it arrived on is invalid
//!   (`conflicting-fields`): routing decides the window, fairness and permissions;
//! - anything from `{p}.unroutable` is dead-lettered (its routing key names no served queue);
//! - the reason is `unknown-namespace` when any problem is about an unknown namespace,
//!   otherwise `invalid`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::store::{IntakeItem, JobSource, NewDeadLetter, NewJob, ReplyTo};
use crate::topology::Names;
use jobs::catalog::Catalog;
use jobs::model::{JobId, Priority};
use jobs::state::DeadReason;
use jobs::validate::{MessageDefaults, Problem, ProblemCode, Rejection, parse_job_with};

/// Bytes of an oversized body kept in the dead-letter record and copy.
pub const TRUNCATED_BODY_BYTES: usize = 64 * 1024;

/// Namespace for UUID v5 ids derived from non-UUID `message_id`s (fixed forever: changing it
/// would let a redelivery become a second job).
const MESSAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2d0e_8a4b_4c1e_9a57_3b2e_0d4f_7a10);

/// Where a message was consumed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueueKind {
    /// `{p}.{ns}.{priority}`.
    Work {
        /// Namespace of the queue.
        namespace: String,
        /// Priority of the queue.
        priority: Priority,
    },
    /// `{p}.unroutable`.
    Unroutable,
}

/// The parts of a delivery classification needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Incoming<'a> {
    pub(crate) body: &'a [u8],
    pub(crate) routing_key: &'a str,
    pub(crate) redelivered: bool,
    pub(crate) message_id: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) content_encoding: Option<String>,
    pub(crate) reply_to: Option<String>,
    pub(crate) correlation_id: Option<String>,
    pub(crate) published_at: Option<DateTime<Utc>>,
    /// `cron` when the daemon's scheduler sent it (header [`crate::amqp::SOURCE_HEADER`]).
    pub(crate) source: JobSource,
}

/// The job id a `message_id` stands for.
pub(crate) fn id_from_message_id(message_id: &str) -> Option<JobId> {
    let trimmed = message_id.trim();
    if trimmed.is_empty() {
        return None;
    }
    match trimmed.parse::<Uuid>() {
        Ok(u) if !u.is_nil() => Some(JobId(u)),
        Ok(_) => None,
        Err(_) => Some(JobId(Uuid::new_v5(
            &MESSAGE_ID_NAMESPACE,
            trimmed.as_bytes(),
        ))),
    }
}

/// Classifies one message.
pub(crate) fn classify(
    msg: &Incoming<'_>,
    queue: &QueueKind,
    catalog: &Catalog,
    names: &Names,
) -> IntakeItem {
    let mut problems: Vec<Problem> = Vec::new();
    let whole = |code, message: String| Problem {
        code,
        path: "$".into(),
        message,
    };

    if let Some(ct) = msg.content_type.as_deref() {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if !media.eq_ignore_ascii_case("application/json") {
            problems.push(whole(
                ProblemCode::InvalidValue,
                format!("content type {ct:?} is not application/json; publish the job as JSON"),
            ));
        }
    }
    if let Some(enc) = msg
        .content_encoding
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        problems.push(whole(
            ProblemCode::InvalidValue,
            format!("content encoding {enc:?} is not supported; publish plain JSON"),
        ));
    }

    let claimed_namespace = match queue {
        QueueKind::Work { namespace, .. } => Some(namespace.clone()),
        QueueKind::Unroutable => msg
            .routing_key
            .split('.')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    };
    if let QueueKind::Unroutable = queue {
        let ns = claimed_namespace.as_deref().unwrap_or_default();
        let served: Vec<&str> = catalog.namespace_names().collect();
        if catalog.namespace(ns).is_none() {
            problems.push(whole(
                ProblemCode::UnknownNamespace,
                format!(
                    "routing key {:?} names namespace {ns:?}, which is not served here; served namespaces: {}",
                    msg.routing_key,
                    served.join(", ")
                ),
            ));
        } else {
            problems.push(whole(
                ProblemCode::InvalidValue,
                format!(
                    "routing key {:?} matches no queue; route jobs by {{namespace}}.{{priority}} with priority high or normal",
                    msg.routing_key
                ),
            ));
        }
    }

    let message_id_job = msg.message_id.as_deref().and_then(id_from_message_id);
    let defaults = MessageDefaults {
        id: message_id_job,
        priority: match queue {
            QueueKind::Work { priority, .. } => Some(*priority),
            QueueKind::Unroutable => None,
        },
    };
    let parsed = parse_job_with(msg.body, catalog, defaults);
    let mut job = None;
    match parsed {
        Ok(j) => {
            let message_id_uuid = msg
                .message_id
                .as_deref()
                .and_then(|m| m.trim().parse::<Uuid>().ok());
            if let Some(mid) = message_id_uuid
                && mid != j.id.0
            {
                problems.push(Problem {
                    code: ProblemCode::ConflictingFields,
                    path: "$.id".into(),
                    message: format!(
                        "the body's id {} differs from the message_id {mid}; send one id (or the same in both)",
                        j.id
                    ),
                });
            }
            if let QueueKind::Work {
                namespace,
                priority,
            } = queue
            {
                if &j.namespace != namespace {
                    problems.push(Problem {
                        code: ProblemCode::ConflictingFields,
                        path: "$.namespace".into(),
                        message: format!(
                            "the job is for namespace {:?} but was published to {namespace:?}'s queue; route it by {}",
                            j.namespace,
                            Names::routing_key(&j.namespace, j.priority)
                        ),
                    });
                }
                if j.priority != *priority {
                    problems.push(Problem {
                        code: ProblemCode::ConflictingFields,
                        path: "$.priority".into(),
                        message: format!(
                            "the job says priority {} but was published to the {priority} queue; route it by {}",
                            j.priority,
                            Names::routing_key(&j.namespace, j.priority)
                        ),
                    });
                }
            }
            job = Some(j);
        }
        Err(Rejection { problems: found }) => problems.extend(found),
    }

    let reply_to = msg
        .reply_to
        .clone()
        .filter(|q| !q.is_empty())
        .map(|queue| ReplyTo {
            queue,
            correlation_id: msg.correlation_id.clone(),
        });

    if problems.is_empty()
        && let Some(job) = job
    {
        return IntakeItem::Job(Box::new(NewJob {
            job,
            source: msg.source,
            published_at: msg.published_at,
            reply_to,
        }));
    }

    let reason = if problems
        .iter()
        .any(|p| p.code == ProblemCode::UnknownNamespace)
    {
        DeadReason::UnknownNamespace
    } else {
        DeadReason::Invalid
    };
    let served_namespace = claimed_namespace
        .as_deref()
        .filter(|ns| catalog.namespace(ns).is_some());
    let dead_queue = match served_namespace {
        Some(ns) => names.dead_queue(ns),
        None => names.global_dead_queue(),
    };
    let claimed_id = job
        .as_ref()
        .map(|j| j.id)
        .or_else(|| body_id(msg.body))
        .or(message_id_job);
    let limit = catalog.limits().max_message_bytes;
    let truncated = msg.body.len() > limit;
    let kept = if truncated {
        &msg.body[..TRUNCATED_BODY_BYTES.min(msg.body.len())]
    } else {
        msg.body
    };
    let dedup_key = match &msg.message_id {
        Some(mid) if !mid.is_empty() => format!("message-id:{mid}"),
        _ => format!("body:{}", Uuid::new_v5(&MESSAGE_ID_NAMESPACE, msg.body)),
    };
    let summary = Rejection {
        problems: problems.clone(),
    }
    .summary();
    IntakeItem::Dead(Box::new(NewDeadLetter {
        reason,
        message: summary,
        problems,
        claimed_id,
        namespace: claimed_namespace,
        priority: match queue {
            QueueKind::Work { priority, .. } => Some(priority.as_str().to_owned()),
            QueueKind::Unroutable => msg.routing_key.split('.').nth(1).map(str::to_owned),
        },
        body: kept.to_vec(),
        body_bytes: msg.body.len() as u64,
        truncated,
        message_id: msg.message_id.clone(),
        routing_key: Some(msg.routing_key.to_owned()),
        content_type: msg.content_type.clone(),
        dedup_key: Some(dedup_key),
        redelivered: msg.redelivered,
        dead_queue,
        reply_to,
    }))
}

/// The body's `id`, if it is JSON with a UUID there (for dead letters of invalid jobs).
fn body_id(body: &[u8]) -> Option<JobId> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("id")?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs::catalog::CatalogConfig;
    use serde_json::json;

    fn catalog() -> Catalog {
        let config: CatalogConfig = toml::from_str(
            r#"
            [namespaces.team-a]
            [namespaces.team-b]
            [node_types.small]
            cpu = "1"
            memory = "4Gi"
            [defaults]
            image = "apache/spark:3.5.3"
            spark_version = "3.5.3"
            driver_node_type = "small"
            [limits]
            max_message_bytes = 4096
            "#,
        )
        .unwrap();
        Catalog::new(config).unwrap()
    }

    fn body(extra: Value) -> Vec<u8> {
        let mut v = json!({
            "apiVersion": "v1",
            "name": "etl",
            "namespace": "team-a",
            "mainApplicationFile": "local:///app.jar",
            "mainClass": "Main",
            "executor": {"nodeType": "small", "instances": 1}
        });
        if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
            obj.extend(extra);
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn work(ns: &str, priority: Priority) -> QueueKind {
        QueueKind::Work {
            namespace: ns.into(),
            priority,
        }
    }

    fn run(msg: &Incoming<'_>, queue: &QueueKind) -> IntakeItem {
        classify(msg, queue, &catalog(), &Names::new("p").unwrap())
    }

    fn dead(item: IntakeItem) -> NewDeadLetter {
        match item {
            IntakeItem::Dead(d) => *d,
            IntakeItem::Job(j) => panic!("expected a dead letter, got job {:?}", j.job.id),
        }
    }

    fn accepted(item: IntakeItem) -> NewJob {
        match item {
            IntakeItem::Job(j) => *j,
            IntakeItem::Dead(d) => panic!("expected a job, got {:?}", d.problems),
        }
    }

    #[test]
    fn a_valid_message_becomes_a_job_with_the_queue_priority() {
        let b = body(json!({}));
        let msg = Incoming {
            body: &b,
            routing_key: "team-a.high",
            content_type: Some("application/json; charset=utf-8".into()),
            ..Incoming::default()
        };
        let j = accepted(run(&msg, &work("team-a", Priority::High)));
        assert_eq!(
            j.job.priority,
            Priority::High,
            "the body is silent: the queue decides"
        );
        assert_eq!(j.source, JobSource::Amqp);
    }

    #[test]
    fn message_id_supplies_the_id_and_non_uuids_map_stably() {
        let b = body(json!({}));
        let id = JobId::generate();
        let msg = Incoming {
            body: &b,
            message_id: Some(id.to_string()),
            ..Incoming::default()
        };
        let j = accepted(run(&msg, &work("team-a", Priority::Normal)));
        assert_eq!(j.job.id, id);

        let msg = Incoming {
            body: &b,
            message_id: Some("order-42".into()),
            ..Incoming::default()
        };
        let a = accepted(run(&msg, &work("team-a", Priority::Normal)));
        let b2 = accepted(run(&msg, &work("team-a", Priority::Normal)));
        assert_eq!(a.job.id, b2.job.id, "a redelivery maps to the same id");
        assert_eq!(a.job.id.0.get_version_num(), 5);
    }

    #[test]
    fn body_id_and_a_different_uuid_message_id_conflict() {
        let id = JobId::generate();
        let b = body(json!({"id": id.to_string()}));
        let msg = Incoming {
            body: &b,
            message_id: Some(JobId::generate().to_string()),
            ..Incoming::default()
        };
        let d = dead(run(&msg, &work("team-a", Priority::Normal)));
        assert_eq!(d.reason, DeadReason::Invalid);
        assert_eq!(d.problems[0].code, ProblemCode::ConflictingFields);
        assert_eq!(d.problems[0].path, "$.id");
        assert_eq!(d.claimed_id, Some(id));
        // The same id in both, or a non-UUID tag, is fine.
        let same = Incoming {
            body: &b,
            message_id: Some(id.to_string()),
            ..Incoming::default()
        };
        assert_eq!(
            accepted(run(&same, &work("team-a", Priority::Normal)))
                .job
                .id,
            id
        );
        let tag = Incoming {
            body: &b,
            message_id: Some("trace-7".into()),
            ..Incoming::default()
        };
        assert_eq!(
            accepted(run(&tag, &work("team-a", Priority::Normal)))
                .job
                .id,
            id
        );
    }

    #[test]
    fn namespace_or_priority_contradicting_the_queue_is_invalid() {
        let b = body(json!({"namespace": "team-b"}));
        let d = dead(run(
            &Incoming {
                body: &b,
                ..Incoming::default()
            },
            &work("team-a", Priority::Normal),
        ));
        assert_eq!(d.problems[0].path, "$.namespace");
        assert_eq!(d.dead_queue, "p.team-a.dead");

        let b = body(json!({"priority": "normal"}));
        let d = dead(run(
            &Incoming {
                body: &b,
                ..Incoming::default()
            },
            &work("team-a", Priority::High),
        ));
        assert_eq!(d.problems[0].path, "$.priority");
    }

    #[test]
    fn wrong_content_type_or_encoding_is_invalid_with_all_problems() {
        let b = b"name=etl".to_vec();
        let d = dead(run(
            &Incoming {
                body: &b,
                content_type: Some("text/plain".into()),
                content_encoding: Some("gzip".into()),
                ..Incoming::default()
            },
            &work("team-a", Priority::Normal),
        ));
        assert_eq!(d.reason, DeadReason::Invalid);
        let codes: Vec<_> = d.problems.iter().map(|p| p.code).collect();
        assert_eq!(
            codes,
            [
                ProblemCode::InvalidValue,
                ProblemCode::InvalidValue,
                ProblemCode::MalformedJson
            ]
        );
    }

    #[test]
    fn unroutable_messages_are_dead_lettered_by_routing_key() {
        let b = body(json!({"namespace": "ghost"}));
        let d = dead(run(
            &Incoming {
                body: &b,
                routing_key: "ghost.high",
                ..Incoming::default()
            },
            &QueueKind::Unroutable,
        ));
        assert_eq!(d.reason, DeadReason::UnknownNamespace);
        assert_eq!(d.dead_queue, "p.dead");
        assert_eq!(d.namespace.as_deref(), Some("ghost"));
        assert_eq!(d.priority.as_deref(), Some("high"));

        // A served namespace with a bad priority segment: invalid, in that namespace's DLQ.
        let b = body(json!({}));
        let d = dead(run(
            &Incoming {
                body: &b,
                routing_key: "team-a.urgent",
                ..Incoming::default()
            },
            &QueueKind::Unroutable,
        ));
        assert_eq!(d.reason, DeadReason::Invalid);
        assert_eq!(d.dead_queue, "p.team-a.dead");
    }

    #[test]
    fn oversized_bodies_are_kept_truncated_and_redeliveries_recognisable() {
        let b = vec![b'x'; 200_000];
        let msg = Incoming {
            body: &b,
            redelivered: true,
            ..Incoming::default()
        };
        let d = dead(run(&msg, &work("team-a", Priority::Normal)));
        assert!(d.truncated);
        assert_eq!(d.body.len(), TRUNCATED_BODY_BYTES);
        assert_eq!(d.body_bytes, 200_000);
        assert_eq!(d.problems[0].code, ProblemCode::TooLarge);
        let again = dead(run(&msg, &work("team-a", Priority::Normal)));
        assert_eq!(d.dedup_key, again.dedup_key);
        assert!(d.dedup_key.unwrap().starts_with("body:"));
    }

    #[test]
    fn reply_to_is_carried_on_both_outcomes() {
        let b = b"".to_vec();
        let d = dead(run(
            &Incoming {
                body: &b,
                reply_to: Some("replies".into()),
                correlation_id: Some("c1".into()),
                ..Incoming::default()
            },
            &work("team-a", Priority::Normal),
        ));
        assert_eq!(
            d.reply_to,
            Some(ReplyTo {
                queue: "replies".into(),
                correlation_id: Some("c1".into())
            })
        );
    }
}
