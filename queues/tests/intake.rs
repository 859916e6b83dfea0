//! Intake against the real RabbitMQ and PostgreSQL on 127.0.0.1: FIFO, high before normal,
//! flood isolation and the pending window, exactly-once into the store (duplicates, a crash
//! between commit and ack), events through the outbox, delay tiers, publisher errors, and
//! recovery after the broker closes our connection. (Malformed input: `dead_letters.rs`.)
//! Each test has its own prefix and database.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/env.rs"]
mod support;

use std::time::Duration;

use jobs::{JobId, Priority};
use lapin::options::{QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use queues::metrics::QueueLabels;
use queues::store::JobSource;
use queues::{Error, Outgoing, Publisher};
use serde_json::Value;
use support::{Env, catalog, catalog_with, eventually, job_body};
use uuid::Uuid;

/// Publishes `n` valid jobs (pipelined) and returns their ids in publish order.
async fn publish_jobs(p: &Publisher, ns: &str, priority: Priority, n: usize) -> Vec<JobId> {
    let mut ids = Vec::with_capacity(n);
    let mut batch = Vec::new();
    for i in 0..n {
        let id = JobId::generate();
        ids.push(id);
        batch.push(
            Outgoing::raw(ns, priority, job_body(ns, &format!("job-{i}"), id))
                .with_message_id(id.to_string()),
        );
        if batch.len() == 1000 || i + 1 == n {
            for r in p.publish_all(&batch).await {
                r.unwrap();
            }
            batch.clear();
        }
    }
    ids
}

async fn stored(env: &Env, ns: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs WHERE namespace = $1")
        .bind(ns)
        .fetch_one(&env.db.pool)
        .await
        .unwrap()
}

async fn ids_in_seq_order(env: &Env, ns: &str, priority: Priority) -> Vec<JobId> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM jobs WHERE namespace = $1 AND priority = $2 ORDER BY seq",
    )
    .bind(ns)
    .bind(priority.as_str())
    .fetch_all(&env.db.pool)
    .await
    .unwrap();
    ids.into_iter().map(JobId).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_per_queue_and_high_before_normal() {
    let mut env = Env::new(catalog()).await;
    let p = env.publisher().await;
    let normal = publish_jobs(&p, "team-a", Priority::Normal, 300).await;
    let high = publish_jobs(&p, "team-a", Priority::High, 300).await;
    let mut config = env.intake_config();
    config.batch_max = 50;
    config.prefetch = 100;
    env.start_intake(config);
    eventually("600 jobs stored", Duration::from_secs(60), || async {
        (stored(&env, "team-a").await == 600).then_some(())
    })
    .await;

    assert_eq!(
        ids_in_seq_order(&env, "team-a", Priority::High).await,
        high,
        "FIFO (high)"
    );
    assert_eq!(
        ids_in_seq_order(&env, "team-a", Priority::Normal).await,
        normal,
        "FIFO (normal)"
    );
    // High drained before normal: only deliveries already in flight when the broker reported
    // the high queue empty can let a normal batch in earlier (at most one batch, plus one).
    let early_normal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE priority = 'normal' \
         AND seq < (SELECT max(seq) FROM jobs WHERE priority = 'high')",
    )
    .fetch_one(&env.db.pool)
    .await
    .unwrap();
    println!("normal jobs stored before the last high job: {early_normal}");
    assert!(
        early_normal <= 100,
        "{early_normal} normal jobs overtook high ones"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_in_one_namespace_does_not_delay_another() {
    let catalog = catalog_with("[namespaces.team-a]\nmax_pending = 2000\n[namespaces.team-b]\n");
    let mut env = Env::new(catalog).await;
    let p = env.publisher().await;
    let flood = publish_jobs(&p, "team-a", Priority::Normal, 10_000).await;
    let mut config = env.intake_config();
    config.prefetch = 500;
    env.start_intake(config);

    // team-a fills its window and stops; its backlog waits in RabbitMQ.
    let labels = QueueLabels {
        namespace: "team-a".into(),
        priority: "normal".into(),
    };
    eventually(
        "team-a's window is full",
        Duration::from_secs(60),
        || async {
            let full = env
                .metrics
                .intake_window_full
                .get(&labels)
                .is_some_and(|g| g.get() == 1);
            (full && stored(&env, "team-a").await >= 2000).then_some(())
        },
    )
    .await;
    let b = publish_jobs(&p, "team-b", Priority::Normal, 20).await;
    eventually("team-b's jobs stored", Duration::from_secs(10), || async {
        (stored(&env, "team-b").await == 20).then_some(())
    })
    .await;
    let a_now = stored(&env, "team-a").await;
    assert!(
        a_now <= 2000 + 500,
        "window exceeded by more than one prefetch: {a_now}"
    );
    let backlog = env
        .ready(&env.names().queue("team-a", Priority::Normal))
        .await;
    assert!(
        i64::from(backlog) >= 10_000 - a_now - 500,
        "the backlog stays in RabbitMQ ({backlog} ready)"
    );

    // Make room repeatedly (as the submitter would); while team-a streams in, team-b's new
    // jobs still get in at once.
    let mut checked_b_during_flood = false;
    while stored(&env, "team-a").await < 10_000 {
        let before = stored(&env, "team-a").await;
        sqlx::query(
            "UPDATE jobs SET state = 'submitted' WHERE namespace = 'team-a' AND state = 'queued'",
        )
        .execute(&env.db.pool)
        .await
        .unwrap();
        if !checked_b_during_flood {
            publish_jobs(&p, "team-b", Priority::Normal, 5).await;
            eventually(
                "team-b's jobs during the flood",
                Duration::from_secs(10),
                || async { (stored(&env, "team-b").await == 25).then_some(()) },
            )
            .await;
            let a_then = stored(&env, "team-a").await;
            assert!(a_then < 10_000, "team-b waited for team-a's flood");
            checked_b_during_flood = true;
        }
        eventually(
            "team-a takes in more after room appears",
            Duration::from_secs(30),
            || async {
                let now = stored(&env, "team-a").await;
                (now > before || now == 10_000).then_some(())
            },
        )
        .await;
    }
    assert_eq!(
        ids_in_seq_order(&env, "team-a", Priority::Normal).await,
        flood,
        "FIFO across the pauses"
    );
    assert_eq!(
        ids_in_seq_order(&env, "team-b", Priority::Normal).await[..20],
        b[..]
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_job_published_twice_is_one_row() {
    let mut env = Env::new(catalog()).await;
    let p = env.publisher().await;
    let id = JobId::generate();
    let msg = Outgoing::raw("team-a", Priority::Normal, job_body("team-a", "twice", id))
        .with_message_id(id.to_string());
    p.publish(&msg).await.unwrap();
    p.publish(&msg).await.unwrap();
    // Same id, no message_id, different routing priority body: still one job.
    env.start_intake(env.intake_config());
    eventually("both copies processed", Duration::from_secs(30), || async {
        let m = &env.metrics;
        let seen = m.intake_count(
            JobSource::Amqp,
            "team-a",
            Some(Priority::Normal),
            "accepted",
        ) + m.intake_count(
            JobSource::Amqp,
            "team-a",
            Some(Priority::Normal),
            "duplicate",
        );
        (seen == 2).then_some(())
    })
    .await;
    assert_eq!(env.count("SELECT count(*) FROM jobs").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM job_transitions").await, 1);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_commit_and_ack_redelivers_into_the_same_rows() {
    let mut env = Env::new(catalog()).await;
    let config = env.intake_config();
    config.fault.crash_after_commit(1);
    let fault = config.fault.clone();
    let p = env.publisher().await;
    publish_jobs(&p, "team-a", Priority::Normal, 50).await;
    env.start_intake(config);
    eventually(
        "redelivered after the crash",
        Duration::from_secs(60),
        || async {
            let dups = env.metrics.intake_count(
                JobSource::Amqp,
                "team-a",
                Some(Priority::Normal),
                "duplicate",
            );
            let ready = env
                .ready(&env.names().queue("team-a", Priority::Normal))
                .await;
            (fault.pending_crashes() == 0
                && dups > 0
                && ready == 0
                && stored(&env, "team-a").await == 50)
                .then_some(())
        },
    )
    .await;
    assert_eq!(env.count("SELECT count(*) FROM jobs").await, 50);
    assert_eq!(env.count("SELECT count(*) FROM job_transitions").await, 50);
    assert_eq!(
        env.count("SELECT count(*) FROM outbox WHERE kind = 'event'")
            .await,
        50,
        "one queued event per job, not per delivery"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_are_published_as_events() {
    let mut env = Env::new(catalog()).await;
    let ch = env.fresh_channel().await;
    let q = format!("{}.watch", env.names().prefix());
    ch.queue_declare(
        q.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    ch.queue_bind(
        q.as_str().into(),
        env.names().events_exchange().as_str().into(),
        "team-a.*".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    env.start_intake(env.intake_config());
    env.start_relay();
    let p = env.publisher().await;
    let ids = publish_jobs(&p, "team-a", Priority::High, 3).await;
    let events = eventually("three queued events", Duration::from_secs(30), || async {
        let n = env.ready(&q).await;
        if n < 3 {
            return None;
        }
        Some(env.drain(&q).await)
    })
    .await;
    let mut seen = Vec::new();
    for m in &events {
        assert_eq!(m.delivery.routing_key.as_str(), "team-a.queued");
        let v: Value = serde_json::from_slice(&m.delivery.data).unwrap();
        assert_eq!(v["state"], "queued");
        assert_eq!(v["priority"], "high");
        seen.push(v["jobId"].as_str().unwrap().parse::<JobId>().unwrap());
    }
    seen.sort();
    let mut ids = ids;
    ids.sort();
    assert_eq!(seen, ids);
    let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_publish_waits_in_a_tier_then_arrives() {
    let mut env = Env::with(catalog(), support::AMQP_URL, |mut c| {
        c.retry_tiers = vec![Duration::from_secs(2)];
        c
    })
    .await;
    let p = env.publisher().await;
    let id = JobId::generate();
    p.publish(
        &Outgoing::raw("team-a", Priority::Normal, job_body("team-a", "later", id))
            .with_message_id(id.to_string())
            .with_delay(Duration::from_millis(500)),
    )
    .await
    .unwrap();
    let tier = env.names().retry_tier(Duration::from_secs(2));
    assert_eq!(
        env.ready(&tier).await,
        1,
        "parked in the 2s tier (delays round up)"
    );
    assert_eq!(
        env.ready(&env.names().queue("team-a", Priority::Normal))
            .await,
        0
    );
    env.start_intake(env.intake_config());
    eventually(
        "the delayed job arrives",
        Duration::from_secs(20),
        || async { env.store.job(id).await.unwrap().map(|_| ()) },
    )
    .await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_reports_unroutable_and_refused_messages() {
    let env = Env::with(catalog(), support::AMQP_URL, |mut c| {
        c.max_queue_length = Some(2);
        c
    })
    .await;
    let p = env.publisher().await;
    let msg = |ns: &str| Outgoing::raw(ns, Priority::Normal, job_body(ns, "x", JobId::generate()));
    // The quorum queue enforces its limit once the publishes are applied: within a few.
    let mut nacked = None;
    for _ in 0..20 {
        match p.publish(&msg("team-a")).await {
            Ok(_) => {}
            Err(e) => {
                nacked = Some(e);
                break;
            }
        }
    }
    let err = nacked.expect("a full queue refuses publishes");
    assert!(
        matches!(err, Error::Nacked { .. }),
        "a full queue nacks: {err}"
    );
    assert!(err.is_retryable());

    // Without the unroutable queue, an unknown namespace has nowhere to go: returned.
    env.channel
        .queue_delete(env.names().unroutable().as_str().into(), Default::default())
        .await
        .unwrap();
    let err = p.publish(&msg("ghost")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Unroutable {
                reply_code: 312,
                ..
            }
        ),
        "{err}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_keeps_its_order_and_each_message_its_own_outcome() {
    let mut env = Env::new(catalog()).await;
    // Without the unroutable queue, a message for an unknown namespace is returned.
    env.channel
        .queue_delete(env.names().unroutable().as_str().into(), Default::default())
        .await
        .unwrap();
    let p = env.publisher().await;
    // Every publish of a batch is queued before any is awaited: each outcome must still be its
    // own message's, and the queue must hold them in publish order.
    let ghosts = [7, 8, 31, 59];
    let ids: Vec<JobId> = (0..60).map(|_| JobId::generate()).collect();
    let batch: Vec<(bool, Outgoing)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let ns = if ghosts.contains(&i) {
                "ghost"
            } else {
                "team-a"
            };
            let body = job_body(ns, &format!("job-{i}"), *id);
            (ns == "ghost", Outgoing::raw(ns, Priority::Normal, body))
        })
        .collect();
    let messages: Vec<Outgoing> = batch.iter().map(|(_, m)| m.clone()).collect();
    let outcomes = p.publish_all(&messages).await;
    assert_eq!(outcomes.len(), batch.len());
    for (i, ((ghost, _), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        match outcome {
            Ok(_) => assert!(!ghost, "message {i} (unknown namespace) was confirmed"),
            Err(Error::Unroutable { .. }) => assert!(ghost, "message {i} was reported unroutable"),
            Err(e) => panic!("message {i}: {e}"),
        }
    }
    // Quorum queues refuse `basic.get`: the intake reads them, and the store keeps its order.
    let sent: Vec<JobId> = ids
        .iter()
        .zip(&batch)
        .filter(|(_, (ghost, _))| !ghost)
        .map(|(id, _)| *id)
        .collect();
    env.start_intake(env.intake_config());
    eventually(
        "the routable messages stored",
        Duration::from_secs(30),
        || async { (stored(&env, "team-a").await == sent.len() as i64).then_some(()) },
    )
    .await;
    assert!(
        ids_in_seq_order(&env, "team-a", Priority::Normal).await == sent,
        "the queue held the batch in publish order"
    );
    env.cleanup().await;
}

/// The broker's pid for our connection, via `rabbitmqctl` (the management plugin is off).
fn connection_pid(node: Option<&str>, name: &str) -> Option<String> {
    let mut cmd = std::process::Command::new("rabbitmqctl");
    if let Some(node) = node {
        cmd.args(["-n", node]);
    }
    let out = cmd
        .args(["list_connections", "-q", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split('\t').next())
        .map(|pid| pid.trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_recovers_when_the_broker_closes_its_connection() {
    let mut env = Env::new(catalog()).await;
    let config = env.intake_config();
    let name = config.connection_name.clone();
    env.start_intake(config);
    let p = env.publisher().await;
    publish_jobs(&p, "team-a", Priority::Normal, 100).await;
    eventually("first 100 stored", Duration::from_secs(30), || async {
        (stored(&env, "team-a").await == 100).then_some(())
    })
    .await;
    let pid = eventually(
        "the intake connection is listed",
        Duration::from_secs(30),
        || async { connection_pid(None, &name) },
    )
    .await;
    let status = std::process::Command::new("rabbitmqctl")
        .args(["close_connection", &pid, "test: forced close"])
        .status()
        .unwrap();
    assert!(status.success());
    publish_jobs(&p, "team-a", Priority::Normal, 100).await;
    eventually(
        "all 200 stored after recovery",
        Duration::from_secs(90),
        || async { (stored(&env, "team-a").await == 200).then_some(()) },
    )
    .await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_redeclares_a_queue_deleted_under_it() {
    let mut env = Env::new(catalog()).await;
    env.start_intake(env.intake_config());
    let p = env.publisher().await;
    publish_jobs(&p, "team-a", Priority::Normal, 10).await;
    eventually("first 10 stored", Duration::from_secs(30), || async {
        (stored(&env, "team-a").await == 10).then_some(())
    })
    .await;
    // The broker cancels our consumer; consuming again fails (404, channel closed by the
    // broker); the intake reconnects and redeclares the topology.
    let queue = env.names().queue("team-a", Priority::Normal);
    env.fresh_channel()
        .await
        .queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    eventually(
        // Consumed again means declared and bound again (workers start after declaring).
        "the queue is declared and consumed again",
        Duration::from_secs(60),
        || async {
            let ch = env.fresh_channel().await;
            let q = ch
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        passive: true,
                        ..QueueDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .ok()?;
            (q.consumer_count() > 0).then_some(())
        },
    )
    .await;
    let later = publish_jobs(&p, "team-a", Priority::Normal, 10).await;
    eventually(
        "jobs published after the redeclare are stored",
        Duration::from_secs(60),
        || async {
            let ids = ids_in_seq_order(&env, "team-a", Priority::Normal).await;
            later.iter().all(|id| ids.contains(id)).then_some(())
        },
    )
    .await;
    env.cleanup().await;
}
