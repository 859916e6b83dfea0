//! What start-time estimates read and write, against a real PostgreSQL (a fresh database per
//! test): runtimes of succeeded attempts, the running attempts with their start, and the
//! estimates themselves, shown only while a job is pending.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use chrono::{DateTime, Utc};
use fixtures::{job, store, submission};
use jobs::JobState;
use queues::store::{JobSource, Note, Target};

#[tokio::test]
async fn runtimes_running_attempts_and_estimates_round_trip() {
    let (db, store) = store().await;
    let done = job("team-a", "nightly");
    let running = job("team-a", "hourly");
    let waiting = job("team-b", "adhoc");
    for j in [&done, &running, &waiting] {
        store.enqueue(j, JobSource::Amqp).await.unwrap();
    }
    for j in [&done, &running] {
        store
            .transition(
                j.id,
                JobState::Queued,
                submission(j, 1, 1000, 4),
                Note::default(),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.running_attempts().await.unwrap()[0].started_at,
        None,
        "submitted: not started yet"
    );
    for j in [&done, &running] {
        store
            .transition(j.id, JobState::Submitted, Target::Running, Note::default())
            .await
            .unwrap();
    }
    store
        .transition(
            done.id,
            JobState::Running,
            Target::Succeeded,
            Note::default(),
        )
        .await
        .unwrap();

    let samples = store.runtime_samples(100).await.unwrap();
    assert_eq!(samples.len(), 1, "{samples:?}");
    assert_eq!(
        (samples[0].0.as_str(), samples[0].1.as_str()),
        ("team-a", "nightly")
    );

    let attempts = store.running_attempts().await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].id, running.id);
    assert_eq!(attempts[0].name, "hourly");
    assert!(attempts[0].started_at.is_some());

    let at = DateTime::<Utc>::from_timestamp(1_900_000_000, 0).unwrap();
    store
        .set_estimates(&[(waiting.id, Some(at)), (running.id, Some(at))])
        .await
        .unwrap();
    let shown = store
        .estimates(&[waiting.id, running.id, done.id])
        .await
        .unwrap();
    assert_eq!(shown.len(), 1, "only pending jobs carry an estimate");
    assert_eq!(shown[&waiting.id], at);
    store.set_estimates(&[(waiting.id, None)]).await.unwrap();
    assert!(store.estimates(&[waiting.id]).await.unwrap().is_empty());
    db.drop_database().await;
}

/// At admission the job's last estimate moves to its attempt (the History dashboard's estimate
/// error) and the job's own is cleared, so a later wait (a retry, a preemption) never shows
/// the previous wait's estimate.
#[tokio::test]
async fn admission_moves_the_last_estimate_onto_the_attempt() {
    let (db, store) = store().await;
    let estimated = job("team-a", "estimated");
    let unestimated = job("team-a", "unestimated");
    for j in [&estimated, &unestimated] {
        store.enqueue(j, JobSource::Amqp).await.unwrap();
    }
    let at = DateTime::<Utc>::from_timestamp(1_900_000_000, 0).unwrap();
    store
        .set_estimates(&[(estimated.id, Some(at))])
        .await
        .unwrap();
    for j in [&estimated, &unestimated] {
        store
            .transition(
                j.id,
                JobState::Queued,
                submission(j, 1, 1000, 4),
                Note::default(),
            )
            .await
            .unwrap();
    }
    type Estimates = (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
    let rows: Vec<Estimates> = sqlx::query_as(
        "SELECT j.name, a.estimated_start_at, j.estimated_start_at FROM jobs j \
         JOIN job_attempts a ON a.job_id = j.id ORDER BY j.name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("estimated".to_owned(), Some(at), None),
            ("unestimated".to_owned(), None, None),
        ]
    );
    db.drop_database().await;
}
