//! Taking messages into the store: a batch of accepted jobs and dead letters in one
//! transaction, idempotent on job id, with their history rows, `queued` events, dead-letter
//! copies and reply_to verdicts in the outbox.
//!
//! One round trip per kind of row (`INSERT … SELECT FROM UNNEST(…)`), so a batch of 500
//! costs about what a single job does; the intake acks the batch's messages after `commit`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sqlx::Row;
use uuid::Uuid;

use super::{JobSource, JobStore, insert_events_from, insert_transitions_from};
use crate::error::Result;
use jobs::model::{Job, JobId};
use jobs::state::DeadReason;
use jobs::validate::Problem;

/// Where a verdict goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    /// Queue name (published through the default exchange).
    pub queue: String,
    /// Echoed as `correlation_id`.
    pub correlation_id: Option<String>,
}

/// A valid job to store.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The job.
    pub job: Job,
    /// Where it came from.
    pub source: JobSource,
    /// When its publisher published it.
    pub published_at: Option<DateTime<Utc>>,
    /// Who wants the verdict.
    pub reply_to: Option<ReplyTo>,
}

/// A message that will never be a job.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// `invalid` or `unknown-namespace`.
    pub reason: DeadReason,
    /// One sentence.
    pub message: String,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// The id it claimed, when one could be read (body `id` or `message_id`); it never
    /// became a job, so this id is free.
    pub claimed_id: Option<JobId>,
    /// Namespace as claimed.
    pub namespace: Option<String>,
    /// Priority as claimed.
    pub priority: Option<String>,
    /// The body (possibly cut short, see `truncated`).
    pub body: Vec<u8>,
    /// Original body size.
    pub body_bytes: u64,
    /// Whether `body` is a prefix only.
    pub truncated: bool,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// Original routing key.
    pub routing_key: Option<String>,
    /// AMQP content type.
    pub content_type: Option<String>,
    /// Set for redeliveries: recognises a copy already recorded.
    pub dedup_key: Option<String>,
    /// Whether the broker marked it redelivered (only then is `dedup_key` checked).
    pub redelivered: bool,
    /// The AMQP dead-letter queue that receives the copy.
    pub dead_queue: String,
    /// Who wants the verdict.
    pub reply_to: Option<ReplyTo>,
}

/// One message's fate, in batch order.
#[derive(Debug, Clone)]
pub enum IntakeItem {
    /// Store this job.
    Job(Box<NewJob>),
    /// Record this dead letter.
    Dead(Box<NewDeadLetter>),
}

/// What happened to each item of a batch, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeResult {
    /// A new job row.
    Accepted,
    /// The id was already stored: nothing written (but the verdict is sent again).
    Duplicate,
    /// A dead-letter record (and its AMQP copy).
    DeadLettered,
    /// A redelivered copy of a dead letter already recorded: nothing written.
    DeadLetterDuplicate,
}

const INSERT_JOBS: &str = concat!(
    "WITH input AS (SELECT * FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], ",
    "$6::text[], $7::int4[], $8::float8[], $9::timestamptz[], $10::text[]) WITH ORDINALITY ",
    "AS t(id, namespace, priority, name, spec, max_attempts, ttl_seconds, published_at, source, ord)), ",
    "ins AS (INSERT INTO jobs (id, namespace, priority, name, spec, state, state_reason, ",
    "state_message, max_attempts, ttl_seconds, expires_at, published_at, source) ",
    "SELECT id, namespace, priority, name, spec::jsonb, 'queued', 'accepted', 'accepted from ' || source, ",
    "max_attempts, ttl_seconds, now() + make_interval(secs => ttl_seconds), published_at, source ",
    "FROM input ORDER BY ord ON CONFLICT (id) DO NOTHING ",
    "RETURNING id, namespace, priority, name, attempt, source), ",
    "e AS (SELECT id, namespace, priority, name, attempt, NULL::text AS from_state, ",
    "'queued'::text AS to_state, 'accepted'::text AS reason, ('accepted from ' || source) AS message, ",
    "NULL::jsonb AS details FROM ins), ",
    "tr AS (",
    insert_transitions_from!("e"),
    "), ev AS (",
    insert_events_from!("$1", "e"),
    ") SELECT id FROM ins"
);

const INSERT_DEAD_LETTERS: &str = concat!(
    "WITH input AS (SELECT nextval(pg_get_serial_sequence('dead_letters', 'id')) AS dl_id, t.* ",
    "FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], ",
    "$7::bytea[], $8::int8[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::text[], ",
    "$14::bool[], $15::text[], $16::text[]) WITH ORDINALITY AS t(claimed_id, namespace, priority, ",
    "reason, message, problems, body, body_bytes, truncated, message_id, routing_key, ",
    "content_type, dedup_key, redelivered, dead_queue, headers, ord) ",
    "WHERE NOT (t.redelivered AND t.dedup_key IS NOT NULL AND EXISTS ",
    "(SELECT 1 FROM dead_letters d WHERE d.dedup_key = t.dedup_key))), ",
    "dl AS (INSERT INTO dead_letters (id, claimed_id, namespace, priority, reason, message, problems, ",
    "body, body_bytes, body_truncated, message_id, routing_key, content_type, dedup_key) ",
    "OVERRIDING SYSTEM VALUE SELECT dl_id, claimed_id, namespace, priority, reason, message, ",
    "problems::jsonb, body, body_bytes, truncated, message_id, routing_key, content_type, dedup_key ",
    "FROM input), ",
    "ob AS (INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, content_type, ",
    "headers, body) SELECT 'dead-letter', '', dead_queue, true, message_id, ",
    "coalesce(content_type, 'application/octet-stream'), ",
    "headers::jsonb || jsonb_build_object('x-orchestrator-dead-letter-id', dl_id), body FROM input) ",
    "SELECT ord FROM input"
);

const INSERT_VERDICTS: &str = concat!(
    "INSERT INTO outbox (kind, exchange, routing_key, mandatory, message_id, correlation_id, body) ",
    "SELECT 'verdict', '', reply_to, true, message_id, correlation_id, body ",
    "FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bytea[]) ",
    "AS t(reply_to, message_id, correlation_id, body)"
);

impl JobStore {
    /// Stores a batch in one transaction and reports each item's fate, in order. Jobs whose
    /// id is already stored are left untouched ([`IntakeResult::Duplicate`]): the same message
    /// delivered twice (a crash between commit and ack) is one job.
    pub async fn take_in(&self, items: &[IntakeItem]) -> Result<Vec<IntakeResult>> {
        let mut tx = self.begin_batch().await?;
        let mut results = vec![IntakeResult::Accepted; items.len()];

        let jobs: Vec<(usize, &NewJob)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match it {
                IntakeItem::Job(j) => Some((i, &**j)),
                IntakeItem::Dead(_) => None,
            })
            .collect();
        let mut inserted: HashSet<Uuid> = HashSet::new();
        if !jobs.is_empty() {
            // The same id twice in one batch: the first wins, like across batches.
            let mut seen = HashSet::new();
            let mut ids = Vec::new();
            let mut namespaces = Vec::new();
            let mut priorities = Vec::new();
            let mut names = Vec::new();
            let mut specs = Vec::new();
            let mut max_attempts = Vec::new();
            let mut ttls: Vec<Option<f64>> = Vec::new();
            let mut published: Vec<Option<DateTime<Utc>>> = Vec::new();
            let mut sources = Vec::new();
            for (_, j) in &jobs {
                if !seen.insert(j.job.id) {
                    continue;
                }
                ids.push(j.job.id.0);
                namespaces.push(j.job.namespace.clone());
                priorities.push(j.job.priority.as_str());
                names.push(j.job.name.clone());
                specs.push(serde_json::to_string(&j.job)?);
                max_attempts.push(i32::try_from(j.job.retry.max_attempts).unwrap_or(i32::MAX));
                ttls.push(j.job.ttl.map(|t| t.0.as_secs_f64()));
                published.push(j.published_at);
                sources.push(j.source.as_str());
            }
            let rows = sqlx::query(INSERT_JOBS)
                .bind(self.names.events_exchange())
                .bind(&ids)
                .bind(&namespaces)
                .bind(&priorities)
                .bind(&names)
                .bind(&specs)
                .bind(&max_attempts)
                .bind(&ttls)
                .bind(&published)
                .bind(&sources)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                inserted.insert(row.try_get("id")?);
            }
            let mut first = HashSet::new();
            for (i, j) in &jobs {
                let new = inserted.contains(&j.job.id.0) && first.insert(j.job.id);
                results[*i] = if new {
                    IntakeResult::Accepted
                } else {
                    IntakeResult::Duplicate
                };
            }
        }

        let dead: Vec<(usize, &NewDeadLetter)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match it {
                IntakeItem::Dead(d) => Some((i, &**d)),
                IntakeItem::Job(_) => None,
            })
            .collect();
        if !dead.is_empty() {
            let mut problems = Vec::new();
            let mut headers = Vec::new();
            for (_, d) in &dead {
                problems.push(serde_json::to_string(&d.problems)?);
                headers.push(dead_letter_headers(d).to_string());
            }
            let recorded = sqlx::query(INSERT_DEAD_LETTERS)
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.claimed_id.map(|j| j.0))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.namespace.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.priority.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.reason.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.message.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(&problems)
                .bind(dead.iter().map(|(_, d)| d.body.clone()).collect::<Vec<_>>())
                .bind(
                    dead.iter()
                        .map(|(_, d)| i64::try_from(d.body_bytes).unwrap_or(i64::MAX))
                        .collect::<Vec<_>>(),
                )
                .bind(dead.iter().map(|(_, d)| d.truncated).collect::<Vec<_>>())
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.message_id.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.routing_key.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.content_type.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.dedup_key.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(dead.iter().map(|(_, d)| d.redelivered).collect::<Vec<_>>())
                .bind(
                    dead.iter()
                        .map(|(_, d)| d.dead_queue.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(&headers)
                .fetch_all(&mut *tx)
                .await?;
            let mut fresh = HashSet::new();
            for row in recorded {
                let ord: i64 = row.try_get("ord")?;
                fresh.insert(ord);
            }
            for (k, (i, _)) in dead.iter().enumerate() {
                let ord = i64::try_from(k + 1).unwrap_or(i64::MAX);
                results[*i] = if fresh.contains(&ord) {
                    IntakeResult::DeadLettered
                } else {
                    IntakeResult::DeadLetterDuplicate
                };
            }
        }

        let mut verdicts = Vec::new();
        for (item, result) in items.iter().zip(&results) {
            if let Some((reply, message_id, body)) = verdict(item, *result) {
                verdicts.push((reply, message_id, body));
            }
        }
        if !verdicts.is_empty() {
            sqlx::query(INSERT_VERDICTS)
                .bind(
                    verdicts
                        .iter()
                        .map(|(r, _, _)| r.queue.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    verdicts
                        .iter()
                        .map(|(_, m, _)| m.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    verdicts
                        .iter()
                        .map(|(r, _, _)| r.correlation_id.clone())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    verdicts
                        .iter()
                        .map(|(_, _, b)| b.clone())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
        }

        tx.commit().await?;
        let wrote_outbox = results
            .iter()
            .any(|r| matches!(r, IntakeResult::Accepted | IntakeResult::DeadLettered))
            || !verdicts.is_empty();
        if wrote_outbox {
            self.outbox_written();
        }
        for (item, result) in items.iter().zip(&results) {
            if let (IntakeItem::Dead(d), IntakeResult::DeadLettered) = (item, result) {
                self.metrics
                    .dead_letter(d.namespace.as_deref(), d.reason.as_str());
            }
        }
        Ok(results)
    }

    /// Stores one validated job (the HTTP API's `POST /v1/jobs`, cron). Idempotent on id:
    /// returns `false` when the id was already stored.
    pub async fn enqueue(&self, job: &Job, source: JobSource) -> Result<bool> {
        let results = self
            .take_in(&[IntakeItem::Job(Box::new(NewJob {
                job: job.clone(),
                source,
                published_at: None,
                reply_to: None,
            }))])
            .await?;
        Ok(results.first() == Some(&IntakeResult::Accepted))
    }
}

/// The AMQP headers of a dead letter's copy (the record id is added in SQL).
fn dead_letter_headers(d: &NewDeadLetter) -> Value {
    use crate::amqp::*;
    let codes: Vec<&str> = d.problems.iter().map(|p| p.code.as_str()).collect();
    let mut h = json!({
        REASON_HEADER: d.reason.as_str(),
        MESSAGE_HEADER: d.message,
        PROBLEM_CODES_HEADER: codes.join(","),
        PROBLEMS_HEADER: d.problems.iter().map(|p| json!({
            "code": p.code.as_str(), "path": p.path, "message": p.message,
        })).collect::<Vec<_>>(),
    });
    if let Some(map) = h.as_object_mut() {
        if let Some(id) = d.claimed_id {
            map.insert(JOB_ID_HEADER.into(), Value::String(id.to_string()));
        }
        if let Some(rk) = &d.routing_key {
            map.insert(
                ORIGINAL_ROUTING_KEY_HEADER.into(),
                Value::String(rk.clone()),
            );
        }
        if d.truncated {
            map.insert(BODY_TRUNCATED_HEADER.into(), Value::Bool(true));
        }
    }
    h
}

/// The verdict `{jobId, accepted, reason, message, problems}` for an item with a reply_to.
fn verdict(item: &IntakeItem, result: IntakeResult) -> Option<(ReplyTo, Option<String>, Vec<u8>)> {
    let (reply, body) = match item {
        IntakeItem::Job(j) => {
            let reply = j.reply_to.clone()?;
            let (reason, message) = match result {
                IntakeResult::Duplicate => (
                    "duplicate",
                    format!(
                        "job {} was already accepted; this copy changed nothing",
                        j.job.id
                    ),
                ),
                _ => ("accepted", format!("job {} is queued", j.job.id)),
            };
            (
                reply,
                json!({
                    "jobId": j.job.id,
                    "accepted": true,
                    "reason": reason,
                    "message": message,
                    "problems": [],
                }),
            )
        }
        IntakeItem::Dead(d) => {
            let reply = d.reply_to.clone()?;
            (
                reply,
                json!({
                    "jobId": d.claimed_id,
                    "accepted": false,
                    "reason": d.reason.as_str(),
                    "message": d.message,
                    "problems": d.problems,
                }),
            )
        }
    };
    let message_id = match item {
        IntakeItem::Job(j) => Some(j.job.id.to_string()),
        IntakeItem::Dead(d) => d
            .claimed_id
            .map(|j| j.to_string())
            .or_else(|| d.message_id.clone()),
    };
    Some((reply, message_id, body.to_string().into_bytes()))
}
