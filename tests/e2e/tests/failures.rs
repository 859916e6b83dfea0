//! What happens when attempts go wrong: stuck applications are stopped and retried, executors
//! killed for memory come back with more, an image that cannot be pulled goes straight to the
//! dead letters — and everything emitted is what the Spark Operator and Spark accept.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use e2e::world::{World, WorldConfig, default_cluster};
use jobs::{Catalog, CatalogConfig, JobState};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};
use submitter::footprint::Footprint;
use submitter::kube_apps::SparkApplication;
use submitter::spark_app::{EmitSettings, spark_application};
use test_support::eventually;

const LONG: Duration = Duration::from_secs(90);

fn job(name: &str, executors: u32, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": "team-a",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": executors},
        "annotations": annotations
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_application_is_stopped_and_retried() {
    // Executors ask for room 10 simulated seconds after the driver runs: long enough for
    // something outside the orchestrator to take it.
    let mut cluster = default_cluster(1);
    cluster.simulation.executor_request_delay = Duration::from_secs(10);
    let mut config = WorldConfig {
        cluster,
        ..WorldConfig::default()
    };
    config.submitter.stuck_after.0 = Duration::from_secs(2);
    let mut world = World::start(config).await;
    let id = world
        .publish(job("victim", 3, json!({"kube-sim.dev/runtime": "10s"})))
        .await;
    world.wait_stored(id, LONG).await;
    world.start_submitter().await;
    world.wait_state(id, JobState::Running, LONG).await;
    // A foreign, higher-priority pod takes three of the node's four cpus.
    let intruder: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "intruder", "namespace": "team-b"},
        "spec": {"priorityClassName": "spark-high", "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}]}
    }))
    .unwrap();
    let pods: kube::Api<Pod> = kube::Api::namespaced(world.client.clone(), "team-b");
    pods.create(&Default::default(), &intruder).await.unwrap();

    // The detector deletes the application and requeues the job at once (a new attempt).
    let retried = eventually("the stuck attempt to be retried", LONG, || async {
        let j = world.job(id).await;
        (j.attempt == 2).then_some(j)
    })
    .await;
    let history = world.store.history(id).await.unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.to == JobState::Failed && t.reason.as_deref() == Some("stuck")),
        "{history:?}"
    );
    assert!(retried.state != JobState::Dead);
    eventually("the stuck application to be deleted", LONG, || async {
        let apps = world.apps().await;
        (!apps
            .iter()
            .any(|a| a.label(submitter::naming::ATTEMPT_LABEL) == Some("1")))
        .then_some(())
    })
    .await;
    pods.delete("intruder", &Default::default()).await.unwrap();
    let done = world.wait_state(id, JobState::Succeeded, LONG).await;
    assert_eq!(done.attempt, 2);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_killed_for_memory_come_back_with_more_until_the_policy_gives_up() {
    let mut world = World::start(WorldConfig::default()).await;
    let mut j = job(
        "hungry",
        1,
        json!({"kube-sim.dev/runtime": "10s", "kube-sim.dev/outcome": "ExecutorOOMKilled"}),
    );
    j["retry"] =
        json!({"maxAttempts": 2, "backoff": {"initial": "1s", "max": "1s", "multiplier": 1.0}});
    let id = world.publish(j).await;
    world.wait_stored(id, LONG).await;
    world.start_submitter().await;
    let dead = world.wait_state(id, JobState::Dead, LONG).await;
    assert_eq!(dead.state_reason.as_deref(), Some("retries-exhausted"));
    assert_eq!(dead.attempt, 2);
    let history = world.store.history(id).await.unwrap();
    let oom = history
        .iter()
        .filter(|t| t.to == JobState::Failed && t.reason.as_deref() == Some("executor-oom"))
        .count();
    assert_eq!(
        oom, 2,
        "both attempts were recognised as out-of-memory: {history:?}"
    );
    let memory = |attempt: &str, apps: &[SparkApplication]| {
        let app = apps
            .iter()
            .find(|a| a.label(submitter::naming::ATTEMPT_LABEL) == Some(attempt))
            .unwrap();
        kube_sim::spark::pod_resources(&app.spec, kube_sim::spark::Role::Executor).memory_mib
    };
    let apps = world.apps().await;
    let (first, second) = (memory("1", &apps), memory("2", &apps));
    assert_eq!(
        second,
        first * 3 / 2,
        "the second attempt's executors get 1.5x the memory ({first} → {second} MiB)"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_is_dead_lettered_without_retrying() {
    let mut world = World::start(WorldConfig::default()).await;
    let id = world
        .publish(job(
            "typo",
            1,
            json!({"kube-sim.dev/outcome": "ImagePullBackOff"}),
        ))
        .await;
    world.wait_stored(id, LONG).await;
    world.start_submitter().await;
    let dead = world.wait_state(id, JobState::Dead, LONG).await;
    assert_eq!(dead.state_reason.as_deref(), Some("unrecoverable"));
    assert!(dead.state_message.unwrap_or_default().contains("image"));
    assert_eq!(dead.attempt, 1, "no retry");
    world.cleanup().await;
}

/// The demo catalog out of `examples/orchestrator.toml` (its catalog sections only).
fn example_catalog() -> Catalog {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/orchestrator.toml"
    );
    let mut table: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    table.retain(|k, _| {
        matches!(
            k,
            "namespaces" | "node_types" | "priorities" | "defaults" | "limits" | "spot"
        )
    });
    Catalog::new(CatalogConfig::deserialize(table).unwrap()).unwrap()
}

#[test]
fn every_example_job_renders_a_valid_application_whose_pods_match_the_footprint() {
    let catalog = example_catalog();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/jobs");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let job = jobs::parse_job(&std::fs::read(&path).unwrap(), &catalog).unwrap();
        let Ok(footprint) = Footprint::of(&job, &catalog) else {
            panic!("{}", path.display())
        };
        for attempt in [1, 3] {
            let app = spark_application(
                &job,
                &footprint,
                attempt,
                &EmitSettings {
                    service_account: Some("spark".into()),
                    time_to_live_seconds: Some(3600),
                },
            );
            kube_sim::crd::validate_spark_application(&app)
                .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
            // What Spark (as emulated from its source) will request equals what we admitted.
            for (role, size) in [
                (kube_sim::spark::Role::Driver, &footprint.driver),
                (kube_sim::spark::Role::Executor, &footprint.executor),
            ] {
                let pod = kube_sim::spark::pod_resources(&app["spec"], role);
                assert_eq!(
                    pod.memory_mib,
                    size.pod_memory_mib(),
                    "{} {role:?} memory",
                    path.display()
                );
                assert_eq!(
                    jobs::quantity::parse_cpu(&pod.cpu_request).unwrap(),
                    size.core_request,
                    "{} {role:?} cpu",
                    path.display()
                );
            }
            assert_eq!(
                kube_sim::spark::initial_executors(&app["spec"]),
                footprint.executors,
                "{}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 5);
}
