//! The job store against a real PostgreSQL (a fresh database per test): lifecycle and
//! history, waiting reasons, optimistic concurrency, usage, retries and their schedule, ttl
//! expiry, idempotent intake batches. Time-dependent steps take an explicit `now` instead of
//! waiting for the clock.

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

use chrono::Utc;
use fixtures::{events, job, job_with, store, submission};
use jobs::quantity::{CpuMillis, MemoryBytes};
use jobs::{DeadReason, Job, JobState};
use queues::Error;
use queues::metrics::Metrics;
use queues::store::{
    DeadLetterFilter, IntakeItem, IntakeResult, JobSource, JobStore, NewJob, Note, PageRequest,
    RetryOutcome, Target, WaitingMark,
};
use serde_json::{Value, json};

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
async fn housekeeping_promotes_expires_and_refreshes_gauges() {
    let (db, store) = store().await;
    let retrying = job("team-a", "retrying");
    store.enqueue(&retrying, JobSource::Amqp).await.unwrap();
    store
        .transition(
            retrying.id,
            JobState::Queued,
            submission(&retrying, 1, 100, 1),
            Note::default(),
        )
        .await
        .unwrap();
    store
        .schedule_retry(
            retrying.id,
            JobState::Submitted,
            Note::new("x", "y"),
            Utc::now() - chrono::Duration::hours(1),
        )
        .await
        .unwrap();
    let expired = job_with("team-b", json!({"ttl": "1s", "priority": "high"}));
    store.enqueue(&expired, JobSource::Amqp).await.unwrap();
    sqlx::query("UPDATE jobs SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(expired.id.0)
        .execute(&db.pool)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .enqueue(&job("team-a", &format!("p{i}")), JobSource::Amqp)
            .await
            .unwrap();
    }
    queues::maintenance::housekeeping(&store, 100)
        .await
        .unwrap();
    assert_eq!(
        store.job(retrying.id).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        store.job(expired.id).await.unwrap().unwrap().state,
        JobState::Dead
    );
    let depth = store
        .metrics()
        .queue_depth
        .get(&queues::metrics::QueueLabels {
            namespace: "team-a".into(),
            priority: "normal".into(),
        })
        .map(|g| g.get());
    assert_eq!(depth, Some(4), "three pending plus the promoted retry");
    db.drop_database().await;
}
