//! The job store against a real PostgreSQL (a fresh database per test): lifecycle and
//! history, waiting reasons, retries and their schedule, dead letters and DLQ operations,
//! ttl expiry, usage, listings, the pending-heads plan at 100,000 jobs, retention, cron fires.
//! Time-dependent steps take an explicit `now` instead of waiting for the clock.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/env.rs"]
mod support;

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use queues::metrics::Metrics;
use queues::quantity::{CpuMillis, MemoryBytes};
use queues::store::{
    DeadLetterFilter, DeadLetterSelector, Footprint, IntakeItem, IntakeResult, JobFilter,
    JobSource, JobStore, NewDeadLetter, NewJob, Note, PageRequest, RequeueOptions, RetryOutcome,
    Submission, Target, WaitingMark,
};
use queues::{DeadReason, Error, Job, JobId, JobState, Names, Priority, ProblemCode, parse_job};
use serde_json::{Value, json};
use support::{TestDb, catalog, job_body, unique};

async fn store() -> (TestDb, JobStore) {
    let db = TestDb::new().await;
    let store = JobStore::new(
        db.pool.clone(),
        Names::new(unique("p")).unwrap(),
        Arc::new(Metrics::default()),
    );
    (db, store)
}

fn job(namespace: &str, name: &str) -> Job {
    parse_job(&job_body(namespace, name, JobId::generate()), &catalog()).unwrap()
}

fn job_with(namespace: &str, extra: Value) -> Job {
    let mut v: Value =
        serde_json::from_slice(&job_body(namespace, "etl", JobId::generate())).unwrap();
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    parse_job(&serde_json::to_vec(&v).unwrap(), &catalog()).unwrap()
}

fn submission(job: &Job, attempt: u32, cpu: u64, gib: u64) -> Target {
    Target::Submitted(Submission {
        spark_app_name: format!("{}-{}-{attempt}", job.name, job.id.short()),
        attempt,
        footprint: Footprint {
            cpu: CpuMillis(cpu),
            memory: MemoryBytes(gib << 30),
        },
    })
}

async fn events(db: &TestDb) -> Vec<(String, Value)> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT routing_key, body FROM outbox WHERE kind = 'event' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(k, b)| (k, serde_json::from_slice(&b).unwrap()))
        .collect()
}

#[tokio::test]
async fn a_job_lifecycle_is_recorded_with_history_and_events() {
    let (db, store) = store().await;
    let j = job("team-a", "etl");
    assert!(store.enqueue(&j, JobSource::Http).await.unwrap());
    assert!(
        !store.enqueue(&j, JobSource::Http).await.unwrap(),
        "same id twice: one job"
    );

    let mark = |code: &str, message: &str| WaitingMark {
        job: j.id,
        code: code.into(),
        message: message.into(),
        position: Some(1),
    };
    assert_eq!(
        store
            .mark_waiting(&[mark("capacity", "no node fits")])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .mark_waiting(&[mark("capacity", "no node fits")])
            .await
            .unwrap(),
        0,
        "same reason: no write"
    );
    assert_eq!(
        store
            .mark_waiting(&[mark("quota", "namespace quota cpu")])
            .await
            .unwrap(),
        1
    );
    let stored = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Waiting);
    let waiting = stored.waiting.unwrap();
    assert_eq!(
        (waiting.code.as_str(), waiting.position),
        ("quota", Some(1))
    );

    // Stale callers and illegal moves are typed errors.
    let err = store
        .transition(j.id, JobState::Queued, Target::Running, Note::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }), "{err}");
    let err = store
        .transition(
            j.id,
            JobState::Queued,
            submission(&j, 1, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::StateConflict {
                actual: JobState::Waiting,
                ..
            }
        ),
        "{err}"
    );
    let err = store
        .transition(
            j.id,
            JobState::Waiting,
            submission(&j, 2, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AttemptMismatch { actual: 1, .. }),
        "{err}"
    );

    store
        .transition(
            j.id,
            JobState::Waiting,
            submission(&j, 1, 3000, 12),
            Note::new("admitted", "fits on node-1"),
        )
        .await
        .unwrap();
    store
        .transition(
            j.id,
            JobState::Submitted,
            Target::Running,
            Note::new("driver-running", "driver up"),
        )
        .await
        .unwrap();
    store
        .transition(
            j.id,
            JobState::Running,
            Target::Succeeded,
            Note::new("completed", "done").with_details(json!({"exitCode": 0})),
        )
        .await
        .unwrap();
    let err = store
        .transition(j.id, JobState::Succeeded, Target::Queued, Note::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::IllegalTransition { .. }));

    let detail = store.job_detail(j.id).await.unwrap().unwrap();
    assert_eq!(detail.job.state, JobState::Succeeded);
    assert!(detail.job.finished_at.is_some());
    assert_eq!(detail.queue_position, None);
    let path: Vec<(Option<JobState>, JobState)> =
        detail.history.iter().map(|t| (t.from, t.to)).collect();
    let (q, w, s, r) = (
        JobState::Queued,
        JobState::Waiting,
        JobState::Submitted,
        JobState::Running,
    );
    assert_eq!(
        path,
        [
            (None, q),
            (Some(q), w),
            (Some(w), w),
            (Some(w), s),
            (Some(s), r),
            (Some(r), JobState::Succeeded),
        ]
    );
    assert_eq!(detail.history[5].details, Some(json!({"exitCode": 0})));

    let evs = events(&db).await;
    let keys: Vec<&str> = evs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "team-a.queued",
            "team-a.waiting",
            "team-a.waiting",
            "team-a.submitted",
            "team-a.running",
            "team-a.succeeded"
        ]
    );
    let last = &evs[5].1;
    assert_eq!(last["jobId"], json!(j.id));
    assert_eq!(last["state"], "succeeded");
    assert_eq!(last["from"], "running");
    assert_eq!(last["attempt"], 1);
    assert_eq!(last["reason"], "completed");

    // One SparkApplication per job and attempt is a database fact.
    assert_eq!(
        store
            .job_by_spark_app(&format!("etl-{}-1", j.id.short()))
            .await
            .unwrap()
            .unwrap()
            .job
            .id,
        j.id
    );
    db.drop_database().await;
}

#[tokio::test]
async fn running_usage_and_active_jobs_come_from_submissions() {
    let (db, store) = store().await;
    let a1 = job("team-a", "a1");
    let a2 = job("team-a", "a2");
    let b1 = job("team-b", "b1");
    for (j, cpu, gib) in [(&a1, 2000, 8), (&a2, 1500, 4), (&b1, 500, 2)] {
        store.enqueue(j, JobSource::Amqp).await.unwrap();
        store
            .transition(
                j.id,
                JobState::Queued,
                submission(j, 1, cpu, gib),
                Note::default(),
            )
            .await
            .unwrap();
    }
    store
        .transition(a2.id, JobState::Submitted, Target::Running, Note::default())
        .await
        .unwrap();
    let usage = store.running_usage().await.unwrap();
    assert_eq!(usage.len(), 2);
    assert_eq!(usage[0].namespace, "team-a");
    assert_eq!(usage[0].jobs, 2);
    assert_eq!(usage[0].footprint.cpu, CpuMillis(3500));
    assert_eq!(usage[0].footprint.memory, MemoryBytes(12 << 30));
    assert_eq!(usage[1].footprint.cpu, CpuMillis(500));

    let active = store.active_jobs().await.unwrap();
    assert_eq!(active.len(), 3);
    let a2_active = active.iter().find(|a| a.id == a2.id).unwrap();
    assert_eq!(a2_active.state, JobState::Running);
    assert_eq!(a2_active.spark_app_name, format!("a2-{}-1", a2.id.short()));

    // Finishing frees the usage.
    store
        .transition(
            a2.id,
            JobState::Running,
            Target::Failed,
            Note::new("driver-failed", "exit 1"),
        )
        .await
        .unwrap();
    let usage = store.running_usage().await.unwrap();
    assert_eq!(usage[0].footprint.cpu, CpuMillis(2000));
    db.drop_database().await;
}

#[tokio::test]
async fn retries_follow_the_policy_survive_restarts_and_end_in_the_dlq() {
    let (db, store) = store().await;
    let j = job_with(
        "team-a",
        json!({"retry": {"maxAttempts": 3, "backoff": {"initial": "10s", "max": "60s", "multiplier": 2}}}),
    );
    store.enqueue(&j, JobSource::Amqp).await.unwrap();
    let t0 = Utc::now();

    // Attempt 1 fails → retry 1 waits [5s, 10s).
    store
        .transition(
            j.id,
            JobState::Queued,
            submission(&j, 1, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    store
        .transition(
            j.id,
            JobState::Submitted,
            Target::Failed,
            Note::new("driver-failed", "exit 1"),
        )
        .await
        .unwrap();
    let RetryOutcome::Scheduled {
        attempt,
        next_attempt_at,
    } = store
        .schedule_retry(
            j.id,
            JobState::Failed,
            Note::new("driver-failed", "exit 1"),
            t0,
        )
        .await
        .unwrap()
    else {
        panic!("a retry is left")
    };
    assert_eq!(attempt, 2);
    let delay = next_attempt_at - t0;
    assert!(
        delay >= chrono::Duration::seconds(5) && delay < chrono::Duration::seconds(10),
        "{delay}"
    );
    assert!(
        store.pending_heads(10).await.unwrap().is_empty(),
        "retrying is not pending"
    );

    // Not due yet; then due. A second store over the same database (a restart) sees it all.
    let restarted = JobStore::new(
        db.pool.clone(),
        store.names().clone(),
        Arc::new(Metrics::default()),
    );
    let early = next_attempt_at - chrono::Duration::milliseconds(1);
    assert_eq!(restarted.promote_due_retries(early, 100).await.unwrap(), 0);
    assert_eq!(
        restarted
            .promote_due_retries(next_attempt_at, 100)
            .await
            .unwrap(),
        1
    );
    let heads = restarted.pending_heads(10).await.unwrap();
    assert_eq!(heads.len(), 1);
    assert_eq!(heads[0].attempt, 2, "the attempt count survives");

    // Attempt 2 runs and fails → retry 2 waits [10s, 20s).
    restarted
        .transition(
            j.id,
            JobState::Queued,
            submission(&j, 2, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    restarted
        .transition(j.id, JobState::Submitted, Target::Running, Note::default())
        .await
        .unwrap();
    let RetryOutcome::Scheduled {
        attempt,
        next_attempt_at,
    } = restarted
        .schedule_retry(
            j.id,
            JobState::Running,
            Note::new("executor-lost", "node gone"),
            t0,
        )
        .await
        .unwrap()
    else {
        panic!("one retry is left")
    };
    assert_eq!(attempt, 3);
    let delay = next_attempt_at - t0;
    assert!(
        delay >= chrono::Duration::seconds(10) && delay < chrono::Duration::seconds(20),
        "{delay}"
    );
    restarted
        .promote_due_retries(next_attempt_at, 100)
        .await
        .unwrap();
    restarted
        .transition(
            j.id,
            JobState::Queued,
            submission(&j, 3, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();

    // Attempt 3 of 3 fails: exhausted → dead letter.
    let outcome = restarted
        .schedule_retry(
            j.id,
            JobState::Submitted,
            Note::new("driver-failed", "exit 2"),
            t0,
        )
        .await
        .unwrap();
    assert_eq!(outcome, RetryOutcome::Exhausted);
    let stored = restarted.job(j.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Dead);
    assert_eq!(stored.state_reason.as_deref(), Some("retries-exhausted"));
    let dlq = restarted
        .list_dead_letters(&DeadLetterFilter::default(), PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(dlq.items.len(), 1);
    assert_eq!(dlq.items[0].reason, DeadReason::RetriesExhausted);
    assert_eq!(dlq.items[0].job_id, Some(j.id));
    assert_eq!(dlq.items[0].attempt, Some(3));
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM job_attempts WHERE job_id = $1")
        .bind(j.id.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 3, "one SparkApplication per attempt");
    db.drop_database().await;
}

#[tokio::test]
async fn ttl_expiry_dead_letters_pending_jobs_only() {
    let (db, store) = store().await;
    let pending = job_with("team-a", json!({"ttl": "1h"}));
    let started = job_with("team-a", json!({"ttl": "1h"}));
    let no_ttl = job("team-a", "forever");
    for j in [&pending, &started, &no_ttl] {
        store.enqueue(j, JobSource::Amqp).await.unwrap();
    }
    store
        .transition(
            started.id,
            JobState::Queued,
            submission(&started, 1, 100, 1),
            Note::default(),
        )
        .await
        .unwrap();
    let now = Utc::now();
    assert_eq!(store.expire_overdue(now, 100).await.unwrap(), 0);
    let later = now + chrono::Duration::hours(2);
    assert_eq!(store.expire_overdue(later, 100).await.unwrap(), 1);
    let p = store.job(pending.id).await.unwrap().unwrap();
    assert_eq!(
        (p.state, p.state_reason.as_deref()),
        (JobState::Dead, Some("expired"))
    );
    assert!(p.state_message.unwrap().contains("ttl 3600s"));
    assert_eq!(
        store.job(started.id).await.unwrap().unwrap().state,
        JobState::Submitted
    );
    assert_eq!(
        store.job(no_ttl.id).await.unwrap().unwrap().state,
        JobState::Queued
    );

    let copies: Vec<(String, Value)> =
        sqlx::query_as("SELECT routing_key, headers FROM outbox WHERE kind = 'dead-letter'")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].0,
        format!("{}.team-a.dead", store.names().prefix())
    );
    assert_eq!(copies[0].1["x-orchestrator-reason"], "expired");
    assert_eq!(
        copies[0].1["x-orchestrator-job-id"],
        json!(pending.id.to_string())
    );
    db.drop_database().await;
}

fn dead_message(reason: DeadReason, namespace: &str, body: &[u8], prefix: &str) -> IntakeItem {
    IntakeItem::Dead(Box::new(NewDeadLetter {
        reason,
        message: "bad".into(),
        problems: vec![queues::Problem {
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
async fn a_batch_is_idempotent_on_job_id() {
    let (db, store) = store().await;
    let a = job("team-a", "a");
    let b = job("team-a", "b");
    let item = |j: &Job| {
        IntakeItem::Job(Box::new(NewJob {
            job: j.clone(),
            source: JobSource::Amqp,
            published_at: Some(Utc::now()),
            reply_to: None,
        }))
    };
    let (new, dup) = (IntakeResult::Accepted, IntakeResult::Duplicate);
    let r = store
        .take_in(&[item(&a), item(&a), item(&b)])
        .await
        .unwrap();
    assert_eq!(r, [new, dup, new]);
    let r = store.take_in(&[item(&b), item(&a)]).await.unwrap();
    assert_eq!(r, [dup, dup]);
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM jobs")
            .fetch_one(&db.pool)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM job_transitions")
            .fetch_one(&db.pool)
            .await
            .unwrap(),
        2,
        "duplicates write no history"
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
    let nominal = Utc::now();
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
