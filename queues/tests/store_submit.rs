//! Recording many admissions in one statement (`JobStore::record_submitted`) against a real
//! PostgreSQL: the same rows, history and events as one transition per job; every job the
//! batch cannot record gets the precise outcome a lone transition gives; two batches racing
//! for the same jobs record each exactly once.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use fixtures::{events, job, store, submission};
use jobs::{Job, JobState};
use queues::Error;
use queues::store::{JobSource, JobStore, Note, Submitted, Target, WaitingMark};
use serde_json::{Value, json};
use support::eventually;

/// Generous: only a broken lock order makes a test wait this long.
const LONG: std::time::Duration = std::time::Duration::from_secs(30);

fn submitted(j: &Job, from: JobState, attempt: u32, note: Note) -> Submitted {
    let Target::Submitted(submission) = submission(j, attempt, 2000, 8) else {
        unreachable!("the fixture builds a submission")
    };
    Submitted {
        job: j.id,
        from,
        submission,
        note,
    }
}

fn note() -> Note {
    Note::new("admitted", "driver and 2 executor(s) placed on 1 node(s)")
        .with_details(json!({"placement": ["node-1", "node-1"]}))
}

async fn enqueued(store: &JobStore, namespace: &str, name: &str) -> Job {
    let j = job(namespace, name);
    assert!(store.enqueue(&j, JobSource::Http).await.unwrap());
    j
}

/// What a job's submission left in every table, without ids and times.
/// Marks `j` as waiting for capacity at `position`.
async fn wait_for_capacity(store: &JobStore, j: &Job, position: Option<u64>) {
    store
        .mark_waiting(&[WaitingMark {
            job: j.id,
            code: "capacity".into(),
            message: "no node fits".into(),
            position,
        }])
        .await
        .unwrap();
}

async fn footprint_of(db: &support::TestDb, j: &Job) -> Value {
    let row: (Value,) = sqlx::query_as(
        "SELECT jsonb_build_object( \
           'job', (SELECT jsonb_build_object('state', state, 'reason', state_reason, \
              'message', state_message, 'app', spark_app_name, 'cpu', cpu_millis, \
              'memory', memory_bytes, 'wait', wait_reason, 'expires', expires_at, \
              'estimate', estimated_start_at) FROM jobs WHERE id = $1), \
           'attempts', (SELECT jsonb_agg(jsonb_build_object('attempt', attempt, \
              'app', spark_app_name, 'cpu', cpu_millis, 'memory', memory_bytes)) \
              FROM job_attempts WHERE job_id = $1), \
           'history', (SELECT jsonb_agg(jsonb_build_object('from', from_state, 'to', to_state, \
              'reason', reason, 'message', message, 'details', details) ORDER BY id) \
              FROM job_transitions WHERE job_id = $1))",
    )
    .bind(j.id.0)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let mut v = row.0;
    // The application's name carries the job's own id; the rest must be equal.
    let short = j.id.short();
    let text = v.to_string().replace(&short, "ID");
    v = serde_json::from_str(&text).unwrap();
    v
}

#[tokio::test]
async fn a_batch_writes_what_one_transition_per_job_writes() {
    let (db, store) = store().await;
    let alone = enqueued(&store, "team-a", "etl").await;
    let batched = enqueued(&store, "team-a", "etl").await;
    let waiting = enqueued(&store, "team-b", "etl").await;
    wait_for_capacity(&store, &waiting, Some(1)).await;

    store
        .transition(
            alone.id,
            JobState::Queued,
            submission(&alone, 1, 2000, 8),
            note(),
        )
        .await
        .unwrap();
    let outcomes = store
        .record_submitted(&[
            submitted(&batched, JobState::Queued, 1, note()),
            submitted(&waiting, JobState::Waiting, 1, note()),
        ])
        .await
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");

    let expected = footprint_of(&db, &alone).await;
    assert_eq!(expected["job"]["state"], "submitted");
    assert_eq!(footprint_of(&db, &batched).await, expected);
    let from_waiting = footprint_of(&db, &waiting).await;
    assert_eq!(
        from_waiting["job"], expected["job"],
        "the waiting reason is cleared"
    );
    assert_eq!(from_waiting["history"][2]["from"], "waiting");
    assert_eq!(
        from_waiting["history"][2]["details"],
        note().details.unwrap()
    );

    // One `submitted` event each, shaped alike.
    let submitted_events: Vec<Value> = events(&db)
        .await
        .into_iter()
        .filter(|(k, _)| k.ends_with(".submitted"))
        .map(|(_, mut e)| {
            let o = e.as_object_mut().unwrap();
            o.remove("jobId");
            o.remove("at");
            e
        })
        .collect();
    assert_eq!(submitted_events.len(), 3);
    assert_eq!(submitted_events[1], submitted_events[0]);
    assert_eq!(submitted_events[2]["from"], "waiting");
    assert_eq!(submitted_events[2]["namespace"], "team-b");
    db.drop_database().await;
}

#[tokio::test]
async fn what_a_batch_cannot_record_gets_the_precise_outcome_and_the_rest_is_recorded() {
    let (db, store) = store().await;
    let fine = enqueued(&store, "team-a", "fine").await;
    let stale = enqueued(&store, "team-a", "stale").await;
    let cancelled = enqueued(&store, "team-a", "cancelled").await;
    let wrong_attempt = enqueued(&store, "team-a", "attempt").await;
    let twice = enqueued(&store, "team-a", "twice").await;
    let fine_too = enqueued(&store, "team-b", "fine").await;
    wait_for_capacity(&store, &stale, None).await;
    store
        .cancel_job(cancelled.id, Note::new("cancelled", "by a test"))
        .await
        .unwrap();

    let batch = [
        submitted(&fine, JobState::Queued, 1, note()),
        submitted(&stale, JobState::Queued, 1, note()),
        submitted(&cancelled, JobState::Queued, 1, note()),
        submitted(&wrong_attempt, JobState::Queued, 2, note()),
        submitted(&twice, JobState::Queued, 1, note()),
        submitted(&twice, JobState::Queued, 1, note()),
        submitted(&fine_too, JobState::Running, 1, note()),
        submitted(&fine_too, JobState::Queued, 1, note()),
    ];
    let outcomes = store.record_submitted(&batch).await.unwrap();
    assert_eq!(outcomes.len(), batch.len());
    assert!(outcomes[0].is_ok(), "{:?}", outcomes[0]);
    assert!(
        matches!(
            outcomes[1],
            Err(Error::StateConflict {
                expected: JobState::Queued,
                actual: JobState::Waiting,
                ..
            })
        ),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(
            outcomes[2],
            Err(Error::StateConflict {
                actual: JobState::Cancelled,
                ..
            })
        ),
        "{:?}",
        outcomes[2]
    );
    assert!(
        matches!(outcomes[3], Err(Error::AttemptMismatch { actual: 1, .. })),
        "{:?}",
        outcomes[3]
    );
    assert!(outcomes[4].is_ok(), "{:?}", outcomes[4]);
    assert!(
        matches!(
            outcomes[5],
            Err(Error::StateConflict {
                actual: JobState::Submitted,
                ..
            })
        ),
        "the same job twice is recorded once: {:?}",
        outcomes[5]
    );
    assert!(
        matches!(outcomes[6], Err(Error::IllegalTransition { .. })),
        "{:?}",
        outcomes[6]
    );
    assert!(outcomes[7].is_ok(), "{:?}", outcomes[7]);

    for (j, state) in [
        (&fine, JobState::Submitted),
        (&stale, JobState::Waiting),
        (&cancelled, JobState::Cancelled),
        (&wrong_attempt, JobState::Queued),
        (&twice, JobState::Submitted),
        (&fine_too, JobState::Submitted),
    ] {
        let stored = store.job(j.id).await.unwrap().unwrap();
        assert_eq!(stored.state, state, "{}", j.name);
    }
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM job_attempts")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 3, "one attempt row per recorded job");
    let history = store.history(twice.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|t| t.to == JobState::Submitted)
            .count(),
        1
    );
    assert!(store.record_submitted(&[]).await.unwrap().is_empty());
    db.drop_database().await;
}

#[tokio::test]
async fn two_batches_racing_for_the_same_jobs_record_each_once() {
    let (db, store) = store().await;
    let mut jobs = Vec::new();
    for i in 0..40 {
        let namespace = if i % 2 == 0 { "team-a" } else { "team-b" };
        jobs.push(enqueued(&store, namespace, "race").await);
    }
    let forward: Vec<Submitted> = jobs
        .iter()
        .map(|j| submitted(j, JobState::Queued, 1, note()))
        .collect();
    let backward: Vec<Submitted> = forward.iter().rev().cloned().collect();
    let (a, b) = tokio::join!(
        store.record_submitted(&forward),
        store.record_submitted(&backward)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    for (i, j) in jobs.iter().enumerate() {
        let wins = [&a[i], &b[jobs.len() - 1 - i]]
            .iter()
            .filter(|o| o.is_ok())
            .count();
        assert_eq!(
            wins,
            1,
            "{}: {:?} / {:?}",
            j.id,
            a[i],
            b[jobs.len() - 1 - i]
        );
    }
    let (submitted_rows, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM job_transitions WHERE to_state = 'submitted'), \
                (SELECT count(*) FROM job_attempts)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((submitted_rows, attempts), (40, 40));
    db.drop_database().await;
}

/// Locks waited for by sessions of this test's database.
async fn lock_waits(db: &support::TestDb) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE NOT l.granted AND a.datname = current_database()",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_waiting_mark_queued_behind_an_admission_leaves_the_job_submitted() {
    let (db, store) = store().await;
    let j = enqueued(&store, "team-a", "race").await;
    wait_for_capacity(&store, &j, Some(1)).await;
    // Another session holds the job's row, so the admission and then a new mark queue up for
    // it in that order; the mark's statement starts before the admission commits.
    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE")
        .bind(j.id.0)
        .execute(&mut *holder)
        .await
        .unwrap();
    let admission = tokio::spawn({
        let (store, j) = (store.clone(), j.clone());
        async move {
            store
                .record_submitted(&[submitted(&j, JobState::Waiting, 1, note())])
                .await
        }
    });
    eventually("the admission waits for the row", LONG, || async {
        (lock_waits(&db).await == 1).then_some(())
    })
    .await;
    let mark = tokio::spawn({
        let (store, id) = (store.clone(), j.id);
        async move {
            store
                .mark_waiting(&[WaitingMark {
                    job: id,
                    code: "capacity".into(),
                    message: "still no node fits".into(),
                    position: Some(1),
                }])
                .await
        }
    });
    eventually("the mark waits behind it", LONG, || async {
        (lock_waits(&db).await == 2).then_some(())
    })
    .await;
    holder.commit().await.unwrap();
    let recorded = admission.await.unwrap().unwrap();
    assert!(recorded[0].is_ok(), "{recorded:?}");
    assert_eq!(
        mark.await.unwrap().unwrap(),
        0,
        "a submitted job is not marked"
    );
    let stored = store.job(j.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Submitted);
    db.drop_database().await;
}

/// The hot batch writes (intake's `take_in`, the rounds' `record_submitted`) run on generic
/// plans, made once per connection, instead of a new custom plan per execution; the setting
/// ends with their transaction, so the connection's other statements keep PostgreSQL's
/// default (listings with optional filters need custom plans). Checked on the one connection
/// of the store's pool through `pg_prepared_statements`, which counts each statement's plans.
#[tokio::test]
async fn the_batch_writes_run_on_generic_plans_and_leave_the_connection_as_it_was() {
    let db = support::TestDb::new(&queues::store::MIGRATOR).await;
    let one = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with((*db.pool.connect_options()).clone())
        .await
        .unwrap();
    let store = JobStore::new(
        one.clone(),
        queues::Names::new(support::unique("p")).unwrap(),
        std::sync::Arc::new(queues::metrics::Metrics::default()),
    );
    // More executions than the five custom plans PostgreSQL tries before it may settle on a
    // generic one by itself.
    for round in 0..7 {
        let a = enqueued(&store, "team-a", &format!("a{round}")).await;
        let b = enqueued(&store, "team-b", &format!("b{round}")).await;
        let outcomes = store
            .record_submitted(&[
                submitted(&a, JobState::Queued, 1, note()),
                submitted(&b, JobState::Queued, 1, note()),
            ])
            .await
            .unwrap();
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    }
    let plans: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT CASE WHEN statement LIKE '%INSERT INTO jobs (%' THEN 'take_in' \
         WHEN statement LIKE '%INSERT INTO job_attempts%' THEN 'record_submitted' END, \
         custom_plans, generic_plans FROM pg_prepared_statements \
         WHERE (statement LIKE '%INSERT INTO jobs (%' OR statement LIKE '%INSERT INTO job_attempts%') \
         AND statement NOT LIKE '%pg_prepared_statements%' ORDER BY 1",
    )
    .fetch_all(&one)
    .await
    .unwrap();
    assert_eq!(
        plans,
        [
            ("record_submitted".to_owned(), 0, 7),
            ("take_in".to_owned(), 0, 14)
        ]
    );
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
        .fetch_one(&one)
        .await
        .unwrap();
    assert_eq!(
        mode, "auto",
        "the setting must end with the batch's transaction"
    );
    one.close().await;
    db.drop_database().await;
}
