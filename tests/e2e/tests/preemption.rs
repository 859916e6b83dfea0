//! Preemption end to end, on kube-sim with the real daemon: a high job that does not fit stops
//! exactly the lower-priority applications it needs, those jobs go back to the front of their
//! queue and rerun to success with their ids and history (the preemption named, the retry
//! budget untouched), nobody is preempted beyond `max_per_job`, the store is written before the
//! application is deleted (a failed delete leaves an orphan the tracker removes), nothing is
//! lost or duplicated — and with preemption off nobody is preempted at all.
//!
//! Sizes: node type `small` is a 1 cpu pod and a node holds four, so a driver and three
//! executors fill a node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::world::{World, WorldConfig, default_cluster};
use jobs::{JobId, JobState};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube_sim::ErrorRule;
use serde_json::{Value, json};
use submitter::naming::{ATTEMPT_LABEL, JOB_ID_LABEL};
use test_support::eventually;

const LONG: Duration = Duration::from_secs(120);

fn job(name: &str, priority: &str, executors: u32, runtime: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": "team-a",
        "priority": priority,
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": executors},
        "annotations": {"kube-sim.dev/runtime": runtime}
    })
}

/// `nodes` nodes, preemption `enabled` with no minimum runtime, `max_per_job`, a minute's hold.
fn config(nodes: usize, enabled: bool, max_per_job: u32) -> WorldConfig {
    let mut config = WorldConfig {
        cluster: default_cluster(nodes),
        ..WorldConfig::default()
    };
    let p = &mut config.submitter.preemption;
    p.enabled = enabled;
    p.min_runtime.0 = Duration::ZERO;
    p.max_per_job = max_per_job;
    p.hold_for.0 = Duration::from_secs(60);
    config
}

/// Publishes, waits until stored; returns the id.
async fn submit(world: &World, body: Value) -> JobId {
    let id = world.publish(body).await;
    world.wait_stored(id, LONG).await;
    id
}

/// The preemptors named by a job's `preempted` transitions, oldest first.
async fn preempted_by(world: &World, id: JobId) -> Vec<String> {
    world
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.reason.as_deref() == Some("preempted"))
        .map(|t| {
            assert_eq!(
                t.to,
                JobState::Queued,
                "a preempted job goes back to its queue"
            );
            t.details.unwrap()["preemptor"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// When a job was first recorded with `state`.
async fn first(world: &World, id: JobId, state: JobState) -> chrono::DateTime<chrono::Utc> {
    let history = world.store.history(id).await.unwrap();
    history
        .iter()
        .find(|t| t.to == state && t.attempt == history.last().unwrap().attempt)
        .or_else(|| history.iter().find(|t| t.to == state))
        .unwrap_or_else(|| panic!("job {id} was never {state}"))
        .at
}

/// Every application in the cluster belongs to one (job, attempt), and no pair has two.
async fn assert_one_application_per_attempt(world: &World) -> BTreeSet<(String, String)> {
    let mut seen = BTreeSet::new();
    for app in world.apps().await {
        let key = (
            app.label(JOB_ID_LABEL).unwrap().to_owned(),
            app.label(ATTEMPT_LABEL).unwrap().to_owned(),
        );
        assert!(seen.insert(key.clone()), "two applications for {key:?}");
    }
    seen
}

/// Waits until `count` pods run (drivers and executors of the applications started so far).
async fn all_pods_running(world: &World, count: usize) {
    eventually("every pod running", LONG, || async {
        let running = world
            .pods()
            .await
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == count).then_some(())
    })
    .await;
}

/// The `Preempted` events of team-a, as (application, note).
async fn preempted_events(world: &World) -> Vec<(String, String)> {
    Api::<Event>::namespaced(world.client.clone(), "team-a")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Preempted"))
        .map(|e| {
            let regarding = e.regarding.unwrap_or_default();
            assert_eq!(regarding.kind.as_deref(), Some("SparkApplication"));
            (
                regarding.name.unwrap_or_default(),
                e.note.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_job_preempts_exactly_what_it_needs_and_the_victim_reruns() {
    // Two nodes: `whole` fills one, `half-1` and `half-2` share the other. The high job needs
    // three pods: stopping `whole` alone makes room; stopping both halves would too, but that
    // is two victims.
    let mut world = World::start(config(2, true, 2)).await;
    let whole = submit(&world, job("whole", "normal", 3, "5m")).await;
    let halves = [
        submit(&world, job("half-1", "normal", 1, "5m")).await,
        submit(&world, job("half-2", "normal", 1, "5m")).await,
    ];
    world.start_submitter().await;
    for id in [whole, halves[0], halves[1]] {
        world.wait_state(id, JobState::Running, LONG).await;
    }
    // And every executor (the driver runs first): the high job's round starts the moment it
    // is stored, and a victim seen with executors still on the way would free less.
    all_pods_running(&world, 8).await;
    let first_app = world.job(whole).await.spark_app_name.unwrap();
    let high = submit(&world, job("urgent", "high", 2, "1m")).await;
    world.wait_state(high, JobState::Succeeded, LONG).await;

    assert_eq!(preempted_by(&world, whole).await, [high.to_string()]);
    for id in halves {
        assert!(
            preempted_by(&world, id).await.is_empty(),
            "{id}: only what was needed"
        );
    }
    let high_started = first(&world, high, JobState::Submitted).await;
    for id in halves {
        let j = world.job(id).await;
        assert_eq!(j.attempt, 1, "{id} kept running");
        assert!(
            j.finished_at.is_none_or(|t| t > high_started),
            "the high job did not wait for {id} to end"
        );
    }

    // The victim reruns from the front of its queue, same id, and succeeds; the preemption
    // did not use its retry budget.
    let done = world.wait_state(whole, JobState::Succeeded, LONG).await;
    assert_eq!(done.attempt, 2);
    assert_eq!(
        done.attempt - done.retry_base,
        0,
        "the preempted attempt is not charged"
    );
    for id in halves {
        world.wait_state(id, JobState::Succeeded, LONG).await;
    }
    let events = preempted_events(&world).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, first_app);
    assert!(events[0].1.contains(&high.to_string()), "{events:?}");

    // Nothing lost or duplicated: the victim's first application is gone, every other
    // attempt has exactly one.
    let apps = assert_one_application_per_attempt(&world).await;
    let expected: BTreeSet<(String, String)> = [
        (whole, "2"),
        (halves[0], "1"),
        (halves[1], "1"),
        (high, "1"),
    ]
    .into_iter()
    .map(|(id, a)| (id.to_string(), a.to_owned()))
    .collect();
    assert_eq!(apps, expected);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_is_written_before_the_delete_and_the_tracker_removes_what_is_left() {
    let mut world = World::start(config(1, true, 2)).await;
    // Ten simulated minutes (30 s here): the victim's first application must still be running
    // when deletes work again, however slowly a loaded machine gets there; a finished one is
    // left to the operator's TTL by design, and the last assertion would fail.
    let victim = submit(&world, job("victim", "normal", 3, "10m")).await;
    world.start_submitter().await;
    world.wait_state(victim, JobState::Running, LONG).await;
    let app = world.job(victim).await.spark_app_name.unwrap();
    // Every delete of an application fails, as if the daemon died right after the store
    // write.
    world
        .sim
        .add_error_rule(ErrorRule {
            verb: "delete".into(),
            resource: "sparkapplications".into(),
            rate: 1.0,
            code: 500,
            count: None,
        })
        .unwrap();
    let high = submit(&world, job("urgent", "high", 3, "30s")).await;
    let names_victim = eventually(
        "the victim requeued while its application stays",
        LONG,
        || async {
            let v = world.job(victim).await;
            let h = world.job(high).await;
            let waiting = h.waiting?;
            let still_there = world
                .apps()
                .await
                .iter()
                .any(|a| a.metadata.name.as_deref() == Some(app.as_str()));
            (v.attempt == 2 && v.state.is_pending() && still_there && waiting.code == "preempting")
                .then_some(waiting.message)
        },
    )
    .await;
    assert!(
        names_victim.contains(&app),
        "why it waits names the application: {names_victim}"
    );
    assert_eq!(preempted_by(&world, victim).await, [high.to_string()]);

    // Deletes work again: the tracker removes the superseded application, then the high job
    // runs, then the victim's next attempt.
    world.sim.clear_faults();
    world.wait_state(high, JobState::Succeeded, LONG).await;
    let done = world.wait_state(victim, JobState::Succeeded, LONG).await;
    assert_eq!(done.attempt, 2);
    assert!(
        first(&world, victim, JobState::Submitted).await
            > first(&world, high, JobState::Submitted).await,
        "the victim's next attempt started after the high job"
    );
    let apps = assert_one_application_per_attempt(&world).await;
    assert!(
        !apps.contains(&(victim.to_string(), "1".to_owned())),
        "the superseded application was deleted: {apps:?}"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_job_is_preempted_more_than_max_per_job() {
    let mut world = World::start(config(1, true, 1)).await;
    let victim = submit(&world, job("victim", "normal", 3, "4m")).await;
    world.start_submitter().await;
    world.wait_state(victim, JobState::Running, LONG).await;
    let h1 = submit(&world, job("urgent-1", "high", 3, "30s")).await;
    world.wait_state(h1, JobState::Succeeded, LONG).await;
    assert_eq!(preempted_by(&world, victim).await, [h1.to_string()]);

    // Running again, preempted once already: a second high job waits for it.
    world.wait_state(victim, JobState::Running, LONG).await;
    let h2 = submit(&world, job("urgent-2", "high", 3, "30s")).await;
    eventually("the second high job to wait", LONG, || async {
        world
            .job(h2)
            .await
            .waiting
            .filter(|w| w.code != "preempting")
            .map(|_| ())
    })
    .await;
    let done = world.wait_state(victim, JobState::Succeeded, LONG).await;
    world.wait_state(h2, JobState::Succeeded, LONG).await;
    assert_eq!(
        preempted_by(&world, victim).await,
        [h1.to_string()],
        "preempted once, the limit"
    );
    assert_eq!(done.attempt, 2);
    let expected: BTreeSet<(String, String)> = [(victim, "2"), (h1, "1"), (h2, "1")]
        .into_iter()
        .map(|(id, a)| (id.to_string(), a.to_owned()))
        .collect();
    assert_eq!(assert_one_application_per_attempt(&world).await, expected);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_preemption_off_nothing_is_preempted() {
    let mut world = World::start(config(1, false, 2)).await;
    let normal = submit(&world, job("steady", "normal", 3, "1m")).await;
    world.start_submitter().await;
    world.wait_state(normal, JobState::Running, LONG).await;
    let high = submit(&world, job("urgent", "high", 3, "30s")).await;
    let reason = eventually("the high job to wait", LONG, || async {
        world.job(high).await.waiting.map(|w| w.code)
    })
    .await;
    assert_ne!(reason, "preempting");
    let done = world.wait_state(normal, JobState::Succeeded, LONG).await;
    world.wait_state(high, JobState::Succeeded, LONG).await;
    assert_eq!(done.attempt, 1);
    assert!(preempted_by(&world, normal).await.is_empty());
    assert!(preempted_events(&world).await.is_empty());
    assert_eq!(assert_one_application_per_attempt(&world).await.len(), 2);
    world.cleanup().await;
}
