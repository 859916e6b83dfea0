//! Rounds that overlap: a round whose jobs all fit hands its turn to decide on once its
//! admissions are confirmed, and finishes its creates while the next round decides. The next
//! round must leave the first one's jobs — still `queued` in the store until recorded — alone.
//! The turn goes on once the last admission is confirmed, not once all but the last few creates
//! are done: a round of more jobs than it creates at once hands on before any create answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use e2e::world::{World, WorldConfig, default_cluster};
use jobs::JobState;
use kube_sim::{FaultConfig, LatencyRule};
use serde_json::json;
use submitter::admission::{ADMISSIONS_IN_FLIGHT, round};
use submitter::context::Context;
use submitter::naming::JOB_ID_LABEL;
use test_support::eventually;

const LONG: Duration = Duration::from_secs(60);

/// A job of a driver and one executor (2 cpu), running `runtime` once started.
fn body(name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "name": name, "namespace": "team-a",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": 1},
        "annotations": {"kube-sim.dev/runtime": "10m"}
    })
}

/// A context of the test's own over the world's store, cluster and capacity checker (the
/// world's daemon stays a standby: the world holds the Lease, so only the test's rounds admit).
fn own_context(world: &World) -> Arc<Context> {
    Arc::new(Context::new(
        world.store.clone(),
        world.checker(),
        world.daemon_client.clone(),
        world.catalog.clone(),
        WorldConfig::default().submitter,
        Arc::new(submitter::metrics::Metrics::default()),
    ))
}

/// Every create of a SparkApplication answers `delay` late.
fn slow_creates(world: &World, delay: Duration) {
    world
        .sim
        .set_faults(FaultConfig {
            latency: vec![LatencyRule {
                verb: "create".into(),
                resource: "sparkapplications".into(),
                delay,
            }],
            ..FaultConfig::default()
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_deciding_while_the_last_one_creates_leaves_that_ones_jobs_alone() {
    let world = World::start(WorldConfig::default()).await;
    let ctx = own_context(&world);
    // Every create answers late, so the first round is still creating when the second decides.
    slow_creates(&world, Duration::from_secs(5));

    let first = world.publish(body("first")).await;
    world.wait_stored(first, LONG).await;
    let first_round = tokio::spawn({
        let ctx = ctx.clone();
        async move { round(&ctx, None, Utc::now()).await }
    });
    eventually("the first round hands its turn on", LONG, || async {
        let handed_on = ctx.deciding.try_lock().is_ok();
        (handed_on && ctx.in_flight.snapshot().contains_key(&first)).then_some(())
    })
    .await;
    let second = world.publish(body("second")).await;
    world.wait_stored(second, LONG).await;
    assert!(
        ctx.in_flight.snapshot().contains_key(&first),
        "the first job is still in flight when the second round starts"
    );
    assert_eq!(
        world.job(first).await.state,
        JobState::Queued,
        "not recorded yet"
    );

    let second_report = round(&ctx, None, Utc::now()).await.unwrap();
    let first_report = first_round.await.unwrap().unwrap();
    assert_eq!(first_report.admitted, vec![first]);
    assert_eq!(
        second_report.admitted,
        vec![second],
        "the second round admits only its own job: the first one's is in flight"
    );
    assert_eq!(second_report.errors, 0);
    assert!(
        ctx.in_flight.snapshot().is_empty(),
        "both recorded, none in flight"
    );

    world.sim.clear_faults();
    for id in [first, second] {
        let job = world.job(id).await;
        assert_eq!(job.state, JobState::Submitted);
        let history = world.store.history(id).await.unwrap();
        let submitted = history
            .iter()
            .filter(|t| t.to == JobState::Submitted)
            .count();
        assert_eq!(submitted, 1, "{id} recorded submitted once");
    }
    let apps = world.apps().await;
    for id in [first, second] {
        let own = apps
            .iter()
            .filter(|a| a.label(JOB_ID_LABEL) == Some(id.to_string().as_str()))
            .count();
        assert_eq!(own, 1, "one SparkApplication for {id}");
    }
    let adopted = ctx
        .metrics
        .admissions
        .get_or_create(&submitter::metrics::OutcomeLabels {
            namespace: "team-a".into(),
            priority: "normal".into(),
            outcome: "adopted".into(),
        })
        .get();
    assert_eq!(adopted, 0, "no application was created twice and adopted");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_hands_its_turn_on_once_confirmed_before_its_creates_answer() {
    // Room for 24 jobs; the round admits more than it creates at once.
    let world = World::start(WorldConfig {
        cluster: default_cluster(12),
        ..WorldConfig::default()
    })
    .await;
    let ctx = own_context(&world);
    let jobs = ADMISSIONS_IN_FLIGHT + 4;
    let mut ids = Vec::new();
    for i in 0..jobs {
        ids.push(world.publish(body(&format!("burst-{i}"))).await);
    }
    for &id in &ids {
        world.wait_stored(id, LONG).await;
    }
    slow_creates(&world, Duration::from_secs(5));
    let burst = tokio::spawn({
        let ctx = ctx.clone();
        async move { round(&ctx, None, Utc::now()).await }
    });
    eventually("the round hands its turn on", LONG, || async {
        let flying = ctx.in_flight.snapshot();
        let handed_on = ctx.deciding.try_lock().is_ok();
        (handed_on && ids.iter().all(|id| flying.contains_key(id))).then_some(())
    })
    .await;
    // Had confirmations waited for a free create slot, the turn would have gone on only once
    // the first creates answered (5 s each).
    assert_eq!(
        world.apps_created(),
        0,
        "the turn went on before any create answered"
    );

    let report = burst.await.unwrap().unwrap();
    assert_eq!(
        report.admitted.len(),
        jobs,
        "every job of the burst admitted"
    );
    assert_eq!(report.errors, 0);
    world.sim.clear_faults();
    assert_eq!(
        world.apps().await.len(),
        jobs,
        "one SparkApplication per job"
    );
    for id in ids {
        assert_eq!(world.job(id).await.state, JobState::Submitted);
    }
    world.cleanup().await;
}
