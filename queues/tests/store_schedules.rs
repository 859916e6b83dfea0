//! Cron schedules in the job store against a real PostgreSQL (a fresh database per test):
//! definitions (CRUD, unique names, policy checks), the forward-only handled mark, skipped
//! fires recorded once, and a schedule's active jobs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use chrono::NaiveDate;
use fixtures::{job, store};
use jobs::JobState;
use queues::Error;
use queues::store::{JobSource, Note, Target};
use schedules::{ConcurrencyPolicy, MissedRunPolicy, ScheduleDefinition};
use serde_json::json;

fn nightly(name: &str) -> ScheduleDefinition {
    ScheduleDefinition {
        name: name.into(),
        namespace: "team-a".into(),
        cron: "0 2 * * *".into(),
        time_zone: "Europe/Berlin".into(),
        job_template: json!({"apiVersion": "v1", "namespace": "team-a", "name": "nightly"}),
        missed: MissedRunPolicy::CatchUp { max: 3 },
        starting_deadline_seconds: 600,
        concurrency_policy: ConcurrencyPolicy::Forbid,
        suspended: false,
    }
}

fn at(h: u32, m: u32) -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 3, 29)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
}

#[tokio::test]
async fn schedules_are_created_listed_updated_suspended_and_deleted() {
    let (db, store) = store().await;
    let created = store.create_schedule(&nightly("nightly")).await.unwrap();
    assert_eq!(created.definition.name, "nightly");
    assert_eq!(
        created.definition.missed,
        MissedRunPolicy::CatchUp { max: 3 }
    );
    assert_eq!(created.last_scheduled_at, None);
    assert!(matches!(
        store.create_schedule(&nightly("nightly")).await,
        Err(Error::ScheduleExists(n)) if n == "nightly"
    ));

    let mut changed = nightly("nightly-v2");
    changed.cron = "30 3 * * 1-5".into();
    let updated = store.update_schedule("nightly", &changed).await.unwrap();
    assert_eq!(
        (updated.id, updated.definition.cron.as_str()),
        (created.id, "30 3 * * 1-5")
    );
    assert!(store.schedule("nightly").await.unwrap().is_none());
    assert!(matches!(
        store.update_schedule("nightly", &changed).await,
        Err(Error::ScheduleNotFound(_))
    ));

    let paused = store
        .set_schedule_suspended("nightly-v2", true)
        .await
        .unwrap();
    assert!(paused.definition.suspended);
    store.create_schedule(&nightly("another")).await.unwrap();
    let names: Vec<String> = store
        .schedules()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.definition.name)
        .collect();
    assert_eq!(names, ["another", "nightly-v2"]);

    assert!(store.delete_schedule("nightly-v2").await.unwrap());
    assert!(!store.delete_schedule("nightly-v2").await.unwrap());
    assert!(matches!(
        store.set_schedule_suspended("nightly-v2", false).await,
        Err(Error::ScheduleNotFound(_))
    ));
    db.drop_database().await;
}

#[tokio::test]
async fn the_database_refuses_unknown_policies() {
    let (db, store) = store().await;
    // Typed values cannot carry an unknown policy; the database refuses one written by hand.
    store.create_schedule(&nightly("bad")).await.unwrap();
    for sql in [
        "UPDATE schedules SET missed_run_policy = 'whenever' WHERE name = 'bad'",
        "UPDATE schedules SET concurrency_policy = 'sometimes' WHERE name = 'bad'",
    ] {
        assert!(sqlx::query(sql).execute(&db.pool).await.is_err(), "{sql}");
    }
    db.drop_database().await;
}

#[tokio::test]
async fn the_handled_mark_only_moves_forward_and_counts_missed_runs() {
    let (db, store) = store().await;
    let s = store.create_schedule(&nightly("nightly")).await.unwrap();
    assert!(store.advance_schedule(s.id, at(2, 0), 4).await.unwrap());
    assert!(
        !store.advance_schedule(s.id, at(2, 0), 4).await.unwrap(),
        "a second replica reporting the same window does not count it again"
    );
    assert!(
        !store.advance_schedule(s.id, at(1, 0), 9).await.unwrap(),
        "a replica that looked earlier cannot rewind the mark"
    );
    // A fire moves the mark; missed runs before a later window still count once.
    store
        .record_cron_fire(s.id, at(3, 0), &job("team-a", "nightly"))
        .await
        .unwrap();
    assert!(store.advance_schedule(s.id, at(3, 0), 2).await.unwrap());
    let now = store.schedule("nightly").await.unwrap().unwrap();
    assert_eq!(
        (now.last_scheduled_at, now.missed_total),
        (Some(at(3, 0)), 6)
    );
    db.drop_database().await;
}

#[tokio::test]
async fn fires_and_skips_claim_a_nominal_time_once_and_active_jobs_are_listed() {
    let (db, store) = store().await;
    let s = store.create_schedule(&nightly("nightly")).await.unwrap();
    let first = job("team-a", "nightly");
    assert!(
        store
            .record_cron_fire(s.id, at(2, 0), &first)
            .await
            .unwrap()
    );
    assert!(
        !store.record_cron_skip(s.id, at(2, 0)).await.unwrap(),
        "a fired nominal time cannot also be skipped"
    );
    assert!(store.record_cron_skip(s.id, at(3, 0)).await.unwrap());
    assert!(!store.record_cron_skip(s.id, at(3, 0)).await.unwrap());
    let fires = store.cron_fires(s.id).await.unwrap();
    assert_eq!(fires, vec![(at(2, 0), Some(first.id)), (at(3, 0), None)]);
    assert_eq!(
        store
            .schedule("nightly")
            .await
            .unwrap()
            .unwrap()
            .last_scheduled_at,
        Some(at(3, 0))
    );

    // The fired job is active once stored, and no longer once it finished.
    assert!(
        store.schedule_active_jobs(s.id).await.unwrap().is_empty(),
        "not stored yet"
    );
    store.enqueue(&first, JobSource::Cron).await.unwrap();
    assert_eq!(
        store.schedule_active_jobs(s.id).await.unwrap(),
        vec![first.id]
    );
    store
        .transition(
            first.id,
            JobState::Queued,
            Target::Cancelled,
            Note::new("cancelled", "by test"),
        )
        .await
        .unwrap();
    assert!(store.schedule_active_jobs(s.id).await.unwrap().is_empty());
    db.drop_database().await;
}
