//! Durability across server restarts, on private servers (so the shared ones, used by tests
//! running in parallel, are never disturbed):
//! - RabbitMQ `stop_app`/`start_app` in the middle of a publish stream: every job the broker
//!   confirmed ends in the store exactly once (lapin recovers the intake's consumers and the
//!   publisher's channel; interrupted publishes are re-sent with the same id).
//! - PostgreSQL stopped while messages keep arriving: nothing is acked or lost, the intake
//!   backs off (a handful of retries, not a hot loop), and after the restart every job is
//!   stored in publish order.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/services.rs"]
mod services;
#[path = "support/env.rs"]
mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobs::{JobId, Priority};
use queues::Outgoing;
use queues::metrics::ErrorLabels;
use services::{PrivateBroker, PrivatePostgres};
use support::{Env, TestDb, catalog, eventually, job_body};
use uuid::Uuid;

async fn stored_ids(env: &Env) -> Vec<JobId> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM jobs ORDER BY seq")
        .fetch_all(&env.db.pool)
        .await
        .unwrap_or_default();
    ids.into_iter().map(JobId).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_job_survives_a_broker_restart() {
    let broker = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .unwrap();
    let catalog = support::catalog_with("[namespaces.team-a]\nmax_pending = 100000\n");
    let mut env = Env::with(catalog, &broker.url(), |c| c).await;
    env.start_intake(env.intake_config());
    env.start_relay();

    // A publisher streaming jobs in small pipelined batches; it records what was confirmed.
    let confirmed: Arc<Mutex<Vec<JobId>>> = Arc::default();
    let failed: Arc<Mutex<usize>> = Arc::default();
    let publisher = env.publisher().await;
    let total = 1500;
    let stream = {
        let confirmed = confirmed.clone();
        let failed = failed.clone();
        tokio::spawn(async move {
            for chunk in 0..total / 20 {
                let batch: Vec<(JobId, Outgoing)> = (0..20)
                    .map(|i| {
                        let id = JobId::generate();
                        let name = format!("job-{chunk}-{i}");
                        let msg = Outgoing::raw(
                            "team-a",
                            Priority::Normal,
                            job_body("team-a", &name, id),
                        )
                        .with_message_id(id.to_string());
                        (id, msg)
                    })
                    .collect();
                let msgs: Vec<Outgoing> = batch.iter().map(|(_, m)| m.clone()).collect();
                for ((id, _), result) in batch.iter().zip(publisher.publish_all(&msgs).await) {
                    match result {
                        Ok(_) => confirmed.lock().unwrap().push(*id),
                        Err(_) => *failed.lock().unwrap() += 1,
                    }
                }
            }
        })
    };

    eventually(
        "a third of the stream confirmed",
        Duration::from_secs(60),
        || async { (confirmed.lock().unwrap().len() >= total / 3).then_some(()) },
    )
    .await;
    let broker = tokio::task::spawn_blocking(move || {
        broker.stop_app();
        broker.start_app();
        broker
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(180), stream)
        .await
        .expect("the publisher finishes after the broker is back")
        .unwrap();

    let confirmed: Vec<JobId> = confirmed.lock().unwrap().clone();
    let failed = *failed.lock().unwrap();
    println!(
        "confirmed {} jobs, {failed} publishes failed for good",
        confirmed.len()
    );
    assert!(confirmed.len() + failed == total);
    let wanted: HashSet<JobId> = confirmed.iter().copied().collect();
    let ids = eventually(
        "every confirmed job stored",
        Duration::from_secs(120),
        || async {
            let ids = stored_ids(&env).await;
            let have: HashSet<JobId> = ids.iter().copied().collect();
            wanted.is_subset(&have).then_some(ids)
        },
    )
    .await;
    let unique: HashSet<JobId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no job stored twice");
    assert!(ids.len() <= total, "nothing invented");
    let transitions = env.count("SELECT count(*) FROM job_transitions").await;
    assert_eq!(
        transitions,
        ids.len() as i64,
        "one intake per job, however many deliveries"
    );
    env.cleanup().await;
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_loses_and_reorders_nothing_and_does_not_hot_loop() {
    let pg = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .unwrap();
    let db = TestDb::new_at(
        pg.port,
        Duration::from_millis(500),
        &queues::store::MIGRATOR,
    )
    .await;
    let mut env = Env::build(catalog(), support::AMQP_URL, db, |c| c).await;
    env.start_intake(env.intake_config());
    let p = env.publisher().await;
    let publish = |n: usize| {
        let p = &p;
        async move {
            let mut ids = Vec::new();
            let mut msgs = Vec::new();
            for i in 0..n {
                let id = JobId::generate();
                ids.push(id);
                msgs.push(
                    Outgoing::raw(
                        "team-a",
                        Priority::Normal,
                        job_body("team-a", &format!("j{i}"), id),
                    )
                    .with_message_id(id.to_string()),
                );
            }
            for r in p.publish_all(&msgs).await {
                r.unwrap();
            }
            ids
        }
    };
    let mut expected = publish(100).await;
    eventually("the first 100 stored", Duration::from_secs(30), || async {
        (stored_ids(&env).await.len() == 100).then_some(())
    })
    .await;

    let pg = tokio::task::spawn_blocking(move || {
        pg.stop_server();
        pg
    })
    .await
    .unwrap();
    expected.extend(publish(200).await);
    let db_errors = || {
        env.metrics
            .errors
            .get(&ErrorLabels {
                component: "intake".into(),
                kind: "db".into(),
            })
            .map_or(0, |c| c.get())
    };
    eventually(
        "the intake meets the outage",
        Duration::from_secs(60),
        || async { (db_errors() >= 3).then_some(()) },
    )
    .await;
    let queue = env.names().queue("team-a", Priority::Normal);
    let ch = env.fresh_channel().await;
    let unacked_or_ready = ch
        .queue_declare(
            queue.as_str().into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    // Nothing was acked during the outage: the 200 are still the broker's (ready or held
    // unacked by the intake).
    assert!(unacked_or_ready.message_count() <= 200);

    let pg = tokio::task::spawn_blocking(move || {
        pg.start_server();
        pg
    })
    .await
    .unwrap();
    let errors_during_outage = db_errors();
    println!("intake database errors during the outage: {errors_during_outage}");
    assert!(
        errors_during_outage < 40,
        "backoff, not a hot loop: {errors_during_outage} failed commits"
    );
    let ids = eventually(
        "all 300 stored after the restart",
        Duration::from_secs(90),
        || async {
            let ids = stored_ids(&env).await;
            (ids.len() == 300).then_some(ids)
        },
    )
    .await;
    assert_eq!(
        ids, expected,
        "stored in publish order, none lost, none twice"
    );
    env.cleanup().await;
    drop(pg);
}
