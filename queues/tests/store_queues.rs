//! The job store's queues and operations against a real PostgreSQL (a fresh database per
//! test): pending heads (order, positions, listings, and the plan at 100,000 pending jobs),
//! dead-letter list/inspect/requeue/purge, retention, cron fires, the intake's window count.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use fixtures::{job, job_with, store, submission};
use jobs::{DeadReason, Job, JobId, JobState, Priority, ProblemCode};
use queues::Error;
use queues::metrics::Metrics;
use queues::store::{
    DeadLetterFilter, DeadLetterSelector, IntakeItem, JobFilter, JobSource, JobStore,
    NewDeadLetter, Note, PageRequest, RequeueOptions, Target,
};
use serde_json::{Value, json};
use support::unique;

fn dead_message(reason: DeadReason, namespace: &str, body: &[u8], prefix: &str) -> IntakeItem {
    IntakeItem::Dead(Box::new(NewDeadLetter {
        reason,
        message: "bad".into(),
        problems: vec![jobs::Problem {
            code: ProblemCode::MalformedJson,
            path: "$".into(),
            message: "bad".into(),
        }],
        claimed_id: None,
        namespace: Some(namespace.into()),
        priority: Some("normal".into()),
        body: body.to_vec(),
        body_bytes: body.len() as u64,
        truncated: false,
        message_id: Some(unique("m")),
        routing_key: Some(format!("{namespace}.normal")),
        content_type: Some("application/json".into()),
        dedup_key: None,
        redelivered: false,
        dead_queue: format!("{prefix}.{namespace}.dead"),
        reply_to: None,
    }))
}

#[tokio::test]
async fn dead_letters_can_be_listed_requeued_and_purged() {
    let (db, store) = store().await;
    let prefix = store.names().prefix().to_owned();
    // Three dead jobs: one never submitted, one that reached the cluster, one in team-b.
    let never = job("team-a", "never");
    let submitted = job("team-a", "submitted");
    let other = job("team-b", "other");
    for j in [&never, &submitted, &other, &job("team-a", "behind")] {
        store.enqueue(j, JobSource::Amqp).await.unwrap();
    }
    store
        .dead_letter(
            never.id,
            JobState::Queued,
            DeadReason::NeverFits,
            "no node has 64 cores",
        )
        .await
        .unwrap();
    store
        .transition(
            submitted.id,
            JobState::Queued,
            submission(&submitted, 1, 100, 1),
            Note::default(),
        )
        .await
        .unwrap();
    store
        .dead_letter(
            submitted.id,
            JobState::Submitted,
            DeadReason::Rejected,
            "operator",
        )
        .await
        .unwrap();
    store
        .dead_letter(
            other.id,
            JobState::Queued,
            DeadReason::Cancelled,
            "operator",
        )
        .await
        .unwrap();
    // And a message that never became a job.
    store
        .take_in(&[dead_message(
            DeadReason::Invalid,
            "team-a",
            b"{\"oops\"",
            &prefix,
        )])
        .await
        .unwrap();
    let err = store
        .dead_letter(never.id, JobState::Dead, DeadReason::Expired, "again")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IllegalTransition { .. }),
        "dead → dead is illegal: {err}"
    );
    let err = store
        .dead_letter(never.id, JobState::Queued, DeadReason::Expired, "stale")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StateConflict {
                actual: JobState::Dead,
                ..
            }
        ),
        "{err}"
    );

    let all = store
        .list_dead_letters(&DeadLetterFilter::default(), PageRequest::first(2))
        .await
        .unwrap();
    assert_eq!(all.items.len(), 2);
    let rest = store
        .list_dead_letters(
            &DeadLetterFilter::default(),
            PageRequest {
                after: all.next,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next.is_none());
    let (record, body) = store
        .dead_letter_record(all.items[0].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.reason, DeadReason::NeverFits);
    let as_job: Job = serde_json::from_slice(&body).unwrap();
    assert_eq!(as_job.id, never.id, "a dead job's record body is the job");

    // Requeue one: back to queued, same id, at the back of its queue, history kept.
    let report = store
        .requeue_dead_letters(
            &DeadLetterSelector::One(all.items[0].id),
            RequeueOptions {
                reset_attempts: false,
            },
        )
        .await
        .unwrap();
    assert_eq!((report.jobs, report.messages), (1, 0));
    let heads = store.pending_heads(10).await.unwrap();
    let names: Vec<&str> = heads.iter().map(|h| h.job.name.as_str()).collect();
    assert_eq!(
        names,
        ["behind", "never"],
        "requeued jobs queue at the back"
    );
    assert_eq!(
        heads[1].attempt, 1,
        "never submitted: the attempt number stays"
    );
    let history = store.history(never.id).await.unwrap();
    assert_eq!(
        history.iter().map(|t| t.to).collect::<Vec<_>>(),
        [JobState::Queued, JobState::Dead, JobState::Queued]
    );

    // Requeue by filter (team-a, rejected): the submitted attempt is not reused.
    let report = store
        .requeue_dead_letters(
            &DeadLetterSelector::Matching(DeadLetterFilter {
                namespace: Some("team-a".into()),
                reason: Some(DeadReason::Rejected),
                include_requeued: false,
            }),
            RequeueOptions {
                reset_attempts: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(report.jobs, 1);
    let s = store.job(submitted.id).await.unwrap().unwrap();
    assert_eq!((s.state, s.attempt, s.retry_base), (JobState::Queued, 2, 2));
    assert_eq!(s.retries_left(), 2, "reset: the full policy again");

    // Requeue all: the team-b job, and the invalid message is re-published via the outbox.
    let report = store
        .requeue_dead_letters(
            &DeadLetterSelector::All,
            RequeueOptions {
                reset_attempts: false,
            },
        )
        .await
        .unwrap();
    assert_eq!((report.jobs, report.messages, report.skipped), (1, 1, 0));
    let republished: (String, String, Vec<u8>) =
        sqlx::query_as("SELECT exchange, routing_key, body FROM outbox WHERE kind = 'job'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(republished.0, format!("{prefix}.jobs"));
    assert_eq!(republished.1, "team-a.normal");
    assert_eq!(republished.2, b"{\"oops\"");

    // Requeued records stay visible on request; purge removes them.
    let open = store
        .list_dead_letters(&DeadLetterFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert!(open.items.is_empty());
    let with_requeued = DeadLetterFilter {
        include_requeued: true,
        ..DeadLetterFilter::default()
    };
    let kept = store
        .list_dead_letters(&with_requeued, PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(kept.items.len(), 4);
    assert!(kept.items.iter().all(|d| d.requeued_at.is_some()));
    assert_eq!(
        store
            .purge_dead_letters(&DeadLetterSelector::Matching(DeadLetterFilter {
                namespace: Some("team-b".into()),
                include_requeued: true,
                ..DeadLetterFilter::default()
            }))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .purge_dead_letters(&DeadLetterSelector::All)
            .await
            .unwrap(),
        3
    );
    assert!(
        store.job(never.id).await.unwrap().is_some(),
        "purge keeps jobs and history"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn pending_heads_are_ordered_high_first_then_fifo_per_queue() {
    let (db, store) = store().await;
    let mut expected_a_normal = Vec::new();
    for i in 0..5 {
        let j = job("team-a", &format!("an{i}"));
        expected_a_normal.push(j.id);
        store.enqueue(&j, JobSource::Amqp).await.unwrap();
        let mut h = job_with("team-b", json!({"priority": "high"}));
        h.name = format!("bh{i}");
        store.enqueue(&h, JobSource::Amqp).await.unwrap();
    }
    let heads = store.pending_heads(3).await.unwrap();
    let got: Vec<(String, Priority, u64)> = heads
        .iter()
        .map(|h| (h.job.namespace.clone(), h.job.priority, h.position))
        .collect();
    assert_eq!(
        got,
        [
            ("team-b".into(), Priority::High, 1),
            ("team-b".into(), Priority::High, 2),
            ("team-b".into(), Priority::High, 3),
            ("team-a".into(), Priority::Normal, 1),
            ("team-a".into(), Priority::Normal, 2),
            ("team-a".into(), Priority::Normal, 3),
        ]
    );
    let a_ids: Vec<JobId> = heads[3..].iter().map(|h| h.job.id).collect();
    assert_eq!(a_ids, expected_a_normal[..3], "FIFO within the queue");
    assert_eq!(
        store.queue_position(expected_a_normal[4]).await.unwrap(),
        Some(5)
    );

    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.len(), 2);
    assert_eq!(
        (
            stats[0].namespace.as_str(),
            stats[0].priority,
            stats[0].queued
        ),
        ("team-b", Priority::High, 5)
    );

    // Listing: filters and cursor pagination, newest first.
    let filter = JobFilter {
        namespace: Some("team-a".into()),
        state: Some(JobState::Queued),
        priority: None,
        name_prefix: None,
    };
    let p1 = store
        .list_jobs(&filter, PageRequest::first(2))
        .await
        .unwrap();
    let p2 = store
        .list_jobs(
            &filter,
            PageRequest {
                after: p1.next,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let p3 = store
        .list_jobs(
            &filter,
            PageRequest {
                after: p2.next,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let listed: Vec<JobId> = [p1.items, p2.items, p3.items]
        .concat()
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut newest_first = expected_a_normal.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    assert!(p3.next.is_none());
    db.drop_database().await;
}

/// Walks an EXPLAIN JSON plan, collecting (node type, relation, index) triples.
fn plan_nodes(plan: &Value, out: &mut Vec<(String, String, String)>) {
    if let Some(obj) = plan.as_object() {
        if let Some(t) = obj.get("Node Type").and_then(Value::as_str) {
            out.push((
                t.to_owned(),
                obj.get("Relation Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                obj.get("Index Name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        for v in obj.values() {
            plan_nodes(v, out);
        }
    } else if let Some(arr) = plan.as_array() {
        for v in arr {
            plan_nodes(v, out);
        }
    }
}

#[tokio::test]
async fn pending_heads_walk_the_index_at_100k_pending_jobs() {
    let (db, store) = store().await;
    // 100,000 pending jobs over 20 namespaces × 2 priorities (plus 20,000 finished ones),
    // generated in SQL from one template job.
    let template = serde_json::to_string(&job("team-a", "bulk")).unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, namespace, priority, name, spec, state, max_attempts, source) \
         SELECT id, ns, prio, 'bulk', $1::jsonb || jsonb_build_object('id', id, 'namespace', ns, \
         'priority', prio), CASE WHEN g <= 100000 THEN 'queued' ELSE 'succeeded' END, 3, 'amqp' \
         FROM (SELECT g, gen_random_uuid() AS id, 'ns-' || (g % 20) AS ns, \
         CASE WHEN g % 7 = 0 THEN 'high' ELSE 'normal' END AS prio \
         FROM generate_series(1, 120000) g) t",
    )
    .bind(&template)
    .execute(&db.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE jobs").execute(&db.pool).await.unwrap();

    let plan = store.explain_pending_heads(10).await.unwrap();
    let mut nodes = Vec::new();
    plan_nodes(&plan, &mut nodes);
    assert!(
        nodes
            .iter()
            .any(|(t, _, i)| t.starts_with("Index") && i == "jobs_pending"),
        "pending heads must use jobs_pending: {nodes:?}"
    );
    assert!(
        !nodes.iter().any(|(t, r, _)| t == "Seq Scan" && r == "jobs"),
        "no sequential scan of jobs: {nodes:?}"
    );
    let execution_ms = plan[0]["Execution Time"].as_f64().unwrap_or_default();

    // A measurement, not an assertion: printed for the README.
    let started = Instant::now();
    let rounds = 20;
    let mut heads = Vec::new();
    for _ in 0..rounds {
        heads = store.pending_heads(10).await.unwrap();
    }
    let per_call = started.elapsed() / rounds;
    assert_eq!(heads.len(), 40 * 10, "10 heads of each of 40 queues");
    assert!(
        heads[..200]
            .iter()
            .all(|h| h.job.priority == Priority::High)
            && heads[200..]
                .iter()
                .all(|h| h.job.priority == Priority::Normal),
        "high queues first"
    );
    println!(
        "pending_heads(10) over 100,000 pending jobs: {per_call:?} per call (server execution {execution_ms:.2} ms); plan nodes: {nodes:?}"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn retention_deletes_old_finished_jobs_in_batches() {
    let (db, store) = store().await;
    let mut finished = Vec::new();
    for i in 0..7 {
        let j = job("team-a", &format!("old{i}"));
        store.enqueue(&j, JobSource::Amqp).await.unwrap();
        store
            .transition(
                j.id,
                JobState::Queued,
                Target::Cancelled,
                Note::new("user", "stop"),
            )
            .await
            .unwrap();
        finished.push(j.id);
    }
    let recent = job("team-a", "recent");
    store.enqueue(&recent, JobSource::Amqp).await.unwrap();
    store
        .transition(
            recent.id,
            JobState::Queued,
            Target::Cancelled,
            Note::default(),
        )
        .await
        .unwrap();
    let pending = job("team-a", "pending");
    store.enqueue(&pending, JobSource::Amqp).await.unwrap();
    sqlx::query("UPDATE jobs SET finished_at = now() - interval '40 days' WHERE id = ANY($1)")
        .bind(finished.iter().map(|i| i.0).collect::<Vec<_>>())
        .execute(&db.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET sent_at = now() - interval '40 days'")
        .execute(&db.pool)
        .await
        .unwrap();
    // An attempt row for one old and the recent job (no foreign key deletes it for retention).
    sqlx::query(
        "INSERT INTO job_attempts (job_id, attempt, spark_app_name, cpu_millis, memory_bytes) \
         SELECT id, 1, name || '-1', 1000, 1 FROM jobs WHERE id = ANY($1)",
    )
    .bind(vec![finished[0].0, recent.id.0])
    .execute(&db.pool)
    .await
    .unwrap();
    let report = store
        .delete_finished_before(Utc::now() - chrono::Duration::days(30), 3)
        .await
        .unwrap();
    assert_eq!(report.jobs, 7, "in batches of 3: 3 + 3 + 1");
    assert!(report.outbox > 0);
    assert!(store.job(recent.id).await.unwrap().is_some());
    assert!(store.job(pending.id).await.unwrap().is_some());
    assert!(
        store.history(finished[0]).await.unwrap().is_empty(),
        "history goes with the job"
    );
    let orphans: (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM job_transitions WHERE job_id NOT IN (SELECT id FROM jobs)), \
                (SELECT count(*) FROM job_attempts WHERE job_id NOT IN (SELECT id FROM jobs)), \
                (SELECT count(*) FROM job_attempts)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        orphans,
        (0, 0, 1),
        "no history or attempt outlives its job; the recent job keeps its attempt"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_cron_fire_happens_exactly_once() {
    let (db, store) = store().await;
    let schedule = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO schedules (id, name, namespace, cron, job_template) VALUES ($1, 'nightly', 'team-a', '0 0 2 * * *', '{}')",
    )
    .bind(schedule)
    .execute(&db.pool)
    .await
    .unwrap();
    let nominal = Utc::now().naive_utc();
    let other = JobStore::new(
        db.pool.clone(),
        store.names().clone(),
        Arc::new(Metrics::default()),
    );
    let (j1, j2) = (job("team-a", "nightly"), job("team-a", "nightly"));
    let (a, b) = tokio::join!(
        store.record_cron_fire(schedule, nominal, &j1),
        other.record_cron_fire(schedule, nominal, &j2)
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one replica fires");
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'job'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(jobs, 1);
    assert!(
        store
            .record_cron_fire(
                schedule,
                nominal + chrono::Duration::days(1),
                &job("team-a", "nightly")
            )
            .await
            .unwrap(),
        "the next nominal time fires"
    );
    db.drop_database().await;
}

#[tokio::test]
async fn a_catalog_window_is_readable_for_the_intake() {
    // pending_count is bounded by its cap, whatever the queue length.
    let (db, store) = store().await;
    for i in 0..12 {
        store
            .enqueue(&job("team-a", &format!("w{i}")), JobSource::Amqp)
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .pending_count("team-a", Priority::Normal, 10)
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        store
            .pending_count("team-a", Priority::Normal, 100)
            .await
            .unwrap(),
        12
    );
    assert_eq!(
        store
            .pending_count("team-a", Priority::High, 100)
            .await
            .unwrap(),
        0
    );
    db.drop_database().await;
}
