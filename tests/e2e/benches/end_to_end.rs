//! End-to-end throughput with ample capacity: jobs published to RabbitMQ (confirmed) → stored
//! by the intake → admitted → SparkApplication created on kube-sim (real kube client over
//! HTTP) → recorded `submitted`. Reports jobs/s for the whole path.
//!
//! In the same run and on the same kube-sim, first a plain client creates the same number of
//! SparkApplications (rendered from the same jobs) with as many creates in flight as the
//! submitter allows, then deletes them: the raw rate the API server accepts, which the
//! orchestrator's rate is compared with (issue 18 aims at ≥ 50 %).
//!
//! `cargo bench -p e2e --bench end_to_end` (env `E2E_JOBS`, default 2000; `E2E_NODES`,
//! default 100, of 64 cpu each)

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark")]

use std::time::{Duration, Instant};

use e2e::world::{World, WorldConfig, default_cluster};
use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use submitter::admission::ADMISSIONS_IN_FLIGHT as IN_FLIGHT;
use submitter::kube_apps::SparkApplication;
use test_support::eventually;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` only checks it builds
    }
    let jobs: usize = std::env::var("E2E_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let nodes: usize = std::env::var("E2E_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let mut cluster = default_cluster(0);
    cluster.pools[0] = kube_sim::PoolConfig::new("general", nodes, "64", "256Gi");
    cluster.simulation.speed = 1.0;
    let mut config = WorldConfig {
        cluster,
        ..WorldConfig::default()
    };
    // The default interval (1 s): rounds start when jobs are stored, not on the tick.
    config.submitter.interval = submitter::config::SubmitterConfig::default().interval;
    config.submitter.max_admissions_per_round = 1000;
    config.submitter.heads_per_queue = 1000;
    let mut world = World::start(config).await;

    let bodies: Vec<Value> = (0..jobs)
        .map(|i| {
            let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
            json!({
                "apiVersion": "v1", "name": format!("bench-{i}"), "namespace": ns,
                "mainApplicationFile": "local:///opt/app.jar", "mainClass": "Main",
                "driver": {"nodeType": "small"}, "executor": {"nodeType": "small", "instances": 1},
                "annotations": {"kube-sim.dev/runtime": "1h"}
            })
        })
        .collect();
    let raw = raw_creates(&world, &bodies).await;

    // The orchestrator is up and leading before the first publish, as in production: the
    // rate measured is its throughput, not the start of a new daemon (its watches and caches).
    world.start_submitter().await;
    let started = Instant::now();
    let messages: Vec<queues::Outgoing> = bodies
        .iter()
        .map(|body| {
            queues::Outgoing::raw(
                body["namespace"].as_str().unwrap(),
                jobs::Priority::Normal,
                serde_json::to_vec(body).unwrap(),
            )
        })
        .collect();
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
    println!("end_to_end: {jobs} jobs, {nodes} nodes");
    println!(
        "  raw client ({IN_FLIGHT} in flight):     {:>8.2?}  {:>7.0} apps/s",
        raw,
        jobs as f64 / raw.as_secs_f64()
    );
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
    println!(
        "  orchestrator ÷ raw:             {:>7.0} %",
        100.0 * raw.as_secs_f64() / total.as_secs_f64()
    );
    world.cleanup().await;
}

/// Creates one SparkApplication per job body as the orchestrator would render it, with
/// [`IN_FLIGHT`] creates at a time as kube-sim's admin, and returns how long that took; then
/// deletes them and waits for their pods to go, so the orchestrator starts on an empty cluster.
async fn raw_creates(world: &World, bodies: &[Value]) -> Duration {
    let settings = submitter::spark_app::EmitSettings::default();
    let apps: Vec<(String, SparkApplication)> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let job = jobs::validate::validate_value(body, &world.catalog).unwrap();
            let footprint = submitter::footprint::Footprint::of(&job, &world.catalog).unwrap();
            let mut app: SparkApplication = serde_json::from_value(
                submitter::spark_app::spark_application(&job, &footprint, 1, &settings),
            )
            .unwrap();
            // Not the orchestrator's: its reconciler would take them for orphans.
            app.metadata.name = Some(format!("raw-{i}"));
            app.metadata.labels = Some([("bench".to_owned(), "raw".to_owned())].into());
            (job.namespace, app)
        })
        .collect();
    let started = Instant::now();
    let creates = apps.iter().map(|(ns, app)| {
        let api: Api<SparkApplication> = Api::namespaced(world.client.clone(), ns);
        async move { api.create(&PostParams::default(), app).await.unwrap() }
    });
    futures::stream::iter(creates)
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let took = started.elapsed();
    for ns in ["team-a", "team-b"] {
        let api: Api<SparkApplication> = Api::namespaced(world.client.clone(), ns);
        api.delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("bench=raw"),
        )
        .await
        .unwrap();
    }
    eventually(
        "the raw applications and their pods gone",
        Duration::from_secs(120),
        || async { (world.pods().await.is_empty() && world.apps().await.is_empty()).then_some(()) },
    )
    .await;
    took
}
