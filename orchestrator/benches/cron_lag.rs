//! Cron fire lag at scale: `cargo bench -p orchestrator --bench cron_lag`.
//!
//! 10,000 schedules (UTC, `*/10 * * * * *`: all 10,000 fall due together every 10 s — the
//! worst case) in a fresh PostgreSQL database; the real cron loop ([`CronRunner::run`]) runs
//! for `CRON_SECONDS` (default 45) of wall time. Lag is measured per fire in the database:
//! `cron_fires.fired_at` (the claiming transaction's time) minus the nominal instant. Prints
//! p50/p99/max lag, fires, and the loop's time per look. `CRON_SCHEDULES` changes the count.
//! Under `cargo test` (no `--bench`) it runs a tiny version as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark binary: a panic is the failure report"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use orchestrator::config::Config;
use orchestrator::cron::runner::CronRunner;
use orchestrator::metrics::CronMetrics;
use queues::{JobStore, Names};
use serde_json::json;
use sqlx::Row;
use test_support::pg::TestDb;
use tokio_util::sync::CancellationToken;

const CONFIG: &str = include_str!("../../examples/orchestrator.toml");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let schedules = if bench {
        env_or("CRON_SCHEDULES", 10_000)
    } else {
        50
    };
    let seconds = if bench {
        env_or("CRON_SECONDS", 45)
    } else {
        12
    };

    let db = TestDb::new(&queues::store::MIGRATOR).await;
    let store = JobStore::new(
        db.pool.clone(),
        Names::new(test_support::unique("cronbench")).unwrap(),
        Arc::new(queues::Metrics::default()),
    );
    let catalog = Arc::new(Config::from_toml_str(CONFIG, "example").unwrap().catalog);
    let template = json!({
        "apiVersion": "v1", "namespace": "team-a", "name": "tick",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "mainClass": "org.apache.spark.examples.SparkPi"
    });
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO schedules (id, name, namespace, cron, time_zone, job_template, \
         missed_run_policy, starting_deadline_seconds, concurrency_policy) \
         SELECT gen_random_uuid(), 'tick-' || i, 'team-a', '*/10 * * * * *', 'UTC', $2, \
                'skip', 60, 'allow' \
         FROM generate_series(1, $1) AS i",
    )
    .bind(i64::try_from(schedules).unwrap())
    .bind(&template)
    .execute(&db.pool)
    .await
    .unwrap();
    println!(
        "created {schedules} schedules in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let runner = CronRunner::new(store.clone(), catalog, Arc::new(CronMetrics::default()));
    let probe = runner.clone();
    let t = Instant::now();
    probe.tick(Utc::now()).await.unwrap();
    println!(
        "one look at {schedules} schedules with nothing due: {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );

    let token = CancellationToken::new();
    let task = tokio::spawn(runner.run(token.clone()));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    token.cancel();
    task.await.unwrap();

    let row = sqlx::query(
        "SELECT count(*) AS fires, \
           percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50, \
           percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99, \
           max(lag) AS max \
         FROM (SELECT extract(epoch FROM fired_at - nominal_time)::float8 AS lag FROM cron_fires) l",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    let fires: i64 = row.get("fires");
    let p50: Option<f64> = row.get("p50");
    let p99: Option<f64> = row.get("p99");
    let max: Option<f64> = row.get("max");
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE kind = 'job'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    println!(
        "{schedules} schedules, {seconds} s: {fires} fires ({outbox} jobs on the outbox); \
         fire lag p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        p50.unwrap_or(f64::NAN),
        p99.unwrap_or(f64::NAN),
        max.unwrap_or(f64::NAN)
    );
    assert_eq!(fires, outbox, "every fire enqueued exactly one job");
    db.drop_database().await;
}
