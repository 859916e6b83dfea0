//! End-to-end throughput with ample capacity: jobs published to RabbitMQ (confirmed) → stored
//! by the intake → admitted → SparkApplication created on kube-sim (real kube client over
//! HTTP) → recorded `submitted`. Reports jobs/s for the whole path.
//!
//! `cargo bench -p e2e --bench end_to_end` (env `E2E_JOBS`, default 2000)

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark")]

use std::time::{Duration, Instant};

use e2e::world::{World, WorldConfig, default_cluster};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` only checks it builds
    }
    let jobs: usize = std::env::var("E2E_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let mut cluster = default_cluster(0);
    cluster.pools[0] = kube_sim::PoolConfig::new("general", 100, "64", "256Gi");
    cluster.simulation.speed = 1.0;
    let mut config = WorldConfig {
        cluster,
        ..WorldConfig::default()
    };
    config.submitter.interval.0 = Duration::from_millis(50);
    config.submitter.max_admissions_per_round = 1000;
    config.submitter.heads_per_queue = 1000;
    let mut world = World::start(config).await;

    let started = Instant::now();
    let messages: Vec<queues::Outgoing> = (0..jobs)
        .map(|i| {
            let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
            let body = json!({
                "apiVersion": "v1", "name": format!("bench-{i}"), "namespace": ns,
                "mainApplicationFile": "local:///opt/app.jar", "mainClass": "Main",
                "driver": {"nodeType": "small"}, "executor": {"nodeType": "small", "instances": 1},
                "annotations": {"kube-sim.dev/runtime": "1h"}
            });
            queues::Outgoing::raw(
                ns,
                jobs::Priority::Normal,
                serde_json::to_vec(&body).unwrap(),
            )
        })
        .collect();
    world.start_submitter().await;
    for chunk in messages.chunks(200) {
        for r in world.publisher.publish_all(chunk).await {
            r.unwrap();
        }
    }
    let published = started.elapsed();
    let count = |sql: &'static str| {
        let pool = world.db.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let mut stored_at = None;
    loop {
        let stored = count("SELECT count(*) FROM jobs").await as usize;
        if stored == jobs && stored_at.is_none() {
            stored_at = Some(started.elapsed());
        }
        let submitted =
            count("SELECT count(*) FROM jobs WHERE state IN ('submitted', 'running', 'succeeded')")
                .await as usize;
        if submitted == jobs {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {submitted}/{jobs} submitted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = started.elapsed();
    let apps = world.apps().await.len();
    assert_eq!(apps, jobs, "one SparkApplication per job");
    println!("end_to_end: {jobs} jobs");
    println!(
        "  published (confirmed):          {:>8.2?}  {:>7.0} jobs/s",
        published,
        jobs as f64 / published.as_secs_f64()
    );
    if let Some(s) = stored_at {
        println!(
            "  all stored (intake):            {:>8.2?}  {:>7.0} jobs/s",
            s,
            jobs as f64 / s.as_secs_f64()
        );
    }
    println!(
        "  all SparkApplications created:  {:>8.2?}  {:>7.0} jobs/s",
        total,
        jobs as f64 / total.as_secs_f64()
    );
    world.cleanup().await;
}
