//! Start estimates end to end: the leader's round replays the queue and writes each waiting
//! job's `estimatedStartAt` — with the configured default runtime while nothing has finished,
//! with the runtime learned from the same job name once it has.
//!
//! Sizes: node type `small` is a 1 cpu pod and a node holds four, so a driver and three
//! executors fill the one node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::world::{World, WorldConfig, default_cluster};
use jobs::{JobId, JobState};
use serde_json::{Value, json};
use test_support::eventually;

const LONG: Duration = Duration::from_secs(120);

fn job(name: &str, runtime: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": "team-a",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": 3},
        "annotations": {"kube-sim.dev/runtime": runtime}
    })
}

async fn estimate(world: &World, id: JobId) -> Option<DateTime<Utc>> {
    world.store.estimates(&[id]).await.unwrap().remove(&id)
}

/// When the job's current attempt was recorded running.
async fn running_since(world: &World, id: JobId) -> DateTime<Utc> {
    let history = world.store.history(id).await.unwrap();
    history
        .iter()
        .rev()
        .find(|t| t.to == JobState::Running)
        .unwrap()
        .at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_jobs_get_a_start_estimate_from_the_default_then_from_history() {
    let mut config = WorldConfig {
        cluster: default_cluster(1),
        ..WorldConfig::default()
    };
    config.submitter.default_runtime.0 = Duration::from_secs(120);
    let mut world = World::start(config).await;
    let first = world.publish(job("etl", "2m")).await;
    world.wait_stored(first, LONG).await;
    world.start_submitter().await;
    world.wait_state(first, JobState::Running, LONG).await;
    let started = running_since(&world, first).await;

    // Nothing finished yet: `etl` is expected to run the default two minutes.
    let behind = world.publish(job("report", "30s")).await;
    let at = eventually("an estimate for the waiting job", LONG, || async {
        estimate(&world, behind).await
    })
    .await;
    let expected = started + chrono::Duration::seconds(120);
    assert!(
        (at - expected).num_milliseconds().abs() < 2_000,
        "estimated {at}, expected about {expected} (the default runtime after {started})"
    );
    world.wait_state(first, JobState::Succeeded, LONG).await;
    world.wait_state(behind, JobState::Succeeded, LONG).await;
    assert_eq!(
        estimate(&world, behind).await,
        None,
        "only pending jobs show one"
    );

    // `etl` ran about 6 s of wall time (2 simulated minutes at 20×): the next `etl` is
    // expected to take that, not the default.
    let again = world.publish(job("etl", "2m")).await;
    world.wait_state(again, JobState::Running, LONG).await;
    let started = running_since(&world, again).await;
    let next = world.publish(job("report", "30s")).await;
    let at = eventually("an estimate learned from history", LONG, || async {
        estimate(&world, next).await
    })
    .await;
    let learned = (at - started).num_seconds();
    assert!(
        (1..60).contains(&learned),
        "expected to start {learned}s after etl started: its learned runtime, not the 120 s default"
    );
    world.wait_state(next, JobState::Succeeded, LONG).await;
    world.cleanup().await;
}
