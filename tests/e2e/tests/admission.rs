//! The submitter end to end: RabbitMQ intake → PostgreSQL job store → ordering and capacity
//! gate → SparkApplications on kube-sim (real kube client) → tracking to the end.
//!
//! Sizes: node type `small` is a 1 cpu / 2 GiB pod and a node holds four (4 cpu), so an
//! application of a driver and three executors fills exactly one node.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use e2e::world::{World, WorldConfig, default_cluster};
use jobs::{JobId, JobState};
use serde_json::{Value, json};
use submitter::naming::{ATTEMPT_LABEL, JOB_ID_LABEL};
use test_support::eventually;

const LONG: Duration = Duration::from_secs(90);

fn job(namespace: &str, name: &str, executors: u32, runtime: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": namespace,
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": executors},
        "annotations": {"kube-sim.dev/runtime": runtime}
    })
}

/// When each job was recorded `submitted` (its first such transition).
async fn submitted_at(
    world: &World,
    ids: &[JobId],
) -> HashMap<JobId, chrono::DateTime<chrono::Utc>> {
    let mut out = HashMap::new();
    for id in ids {
        let history = world.store.history(*id).await.unwrap();
        if let Some(t) = history.iter().find(|t| t.to == JobState::Submitted) {
            out.insert(*id, t.at);
        }
    }
    out
}

/// Per application: is its driver Running while an executor pod is Pending right now?
async fn stuck_apps(world: &World) -> Vec<String> {
    let mut by_app: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for pod in world.pods().await {
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        let (Some(app), Some(role)) = (
            labels.get("sparkoperator.k8s.io/app-name"),
            labels.get("spark-role"),
        ) else {
            continue;
        };
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let entry = by_app.entry(app.clone()).or_default();
        if role == "driver" && phase == "Running" {
            entry.0 = true;
        }
        if role == "executor" && phase == "Pending" {
            entry.1 = true;
        }
    }
    by_app
        .into_iter()
        .filter(|(_, (d, e))| *d && *e)
        .map(|(app, _)| app)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_orchestrator_ten_applications_deadlock() {
    // The Spark Operator alone: all ten created at once on a cluster that fits two.
    let world = World::start(WorldConfig::default()).await;
    let apps: kube::Api<submitter::kube_apps::SparkApplication> =
        kube::Api::namespaced(world.client.clone(), "team-a");
    for i in 0..10 {
        let j = jobs::parse_job(
            job("team-a", &format!("raw-{i}"), 3, "30s")
                .to_string()
                .as_bytes(),
            &world.catalog,
        )
        .unwrap();
        let f = submitter::footprint::Footprint::of(&j, &world.catalog).unwrap();
        let rendered = submitter::spark_app::spark_application(&j, &f, 1, &Default::default());
        apps.create(
            &Default::default(),
            &serde_json::from_value(rendered).unwrap(),
        )
        .await
        .unwrap();
    }
    // Drivers take (nearly) every slot; executors can never all be scheduled. How many
    // drivers win the race against the first executors varies with load; six or more
    // stuck applications on eight slots leave no job room to finish.
    eventually("drivers running with executors pending", LONG, || async {
        let stuck = stuck_apps(&world).await;
        (stuck.len() >= 6).then_some(())
    })
    .await;
    world.sim.advance(Duration::from_secs(3600));
    world.sim.settle();
    let completed = world
        .apps()
        .await
        .iter()
        .filter(|a| a.state() == "COMPLETED")
        .count();
    assert_eq!(
        completed, 0,
        "an hour later nothing has finished: the cluster is deadlocked"
    );
    assert!(stuck_apps(&world).await.len() >= 6);
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_orchestrator_every_application_completes_and_none_gets_stuck() {
    let mut world = World::start(WorldConfig::default()).await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            world
                .publish(job("team-a", &format!("etl-{i}"), 3, "30s"))
                .await,
        );
    }
    for id in &ids {
        world.wait_stored(*id, LONG).await;
    }
    world.start_submitter().await;
    let mut stuck_since: HashMap<String, Instant> = HashMap::new();
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    loop {
        let now = Instant::now();
        let stuck = stuck_apps(&world).await;
        stuck_since.retain(|app, _| stuck.contains(app));
        for app in stuck {
            let since = *stuck_since.entry(app).or_insert(now);
            worst = worst.max(now - since);
        }
        let mut done = 0;
        for id in &ids {
            let j = world.job(*id).await;
            assert!(
                !matches!(
                    j.state,
                    JobState::Failed | JobState::Dead | JobState::Retrying
                ),
                "job {id}: {:?} {:?}",
                j.state,
                j.state_message
            );
            if j.state == JobState::Succeeded {
                done += 1;
            }
        }
        if done == ids.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {done}/10 done"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Executors start a few simulated seconds after their driver (0.2 s of wall time at
    // speed 20); anything longer would be the deadlock.
    assert!(
        worst < Duration::from_secs(2),
        "a driver ran with executors pending for {worst:?}"
    );
    let apps = world.apps().await;
    assert_eq!(apps.len(), 10, "one application per job");
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_jobs_enqueued_later_start_first_on_a_saturated_cluster() {
    let mut world = World::start(WorldConfig {
        cluster: default_cluster(1),
        ..WorldConfig::default()
    })
    .await;
    let mut normal = Vec::new();
    for i in 0..4 {
        normal.push(
            world
                .publish(job("team-a", &format!("normal-{i}"), 3, "20s"))
                .await,
        );
    }
    world.start_submitter().await;
    world.wait_state(normal[0], JobState::Running, LONG).await;
    let mut high = Vec::new();
    for i in 0..2 {
        let mut j = job("team-b", &format!("urgent-{i}"), 3, "20s");
        j["priority"] = json!("high");
        high.push(world.publish(j).await);
    }
    for id in normal.iter().chain(&high) {
        world.wait_state(*id, JobState::Succeeded, LONG * 2).await;
    }
    let at = submitted_at(&world, &[normal.clone(), high.clone()].concat()).await;
    let last_high = high.iter().map(|id| at[id]).max().unwrap();
    // normal-1 may have been admitted before the high jobs were stored; 2 and 3 must wait.
    assert!(
        at[&normal[2]] > last_high && at[&normal[3]] > last_high,
        "high jobs published after normal ones ran first: {at:?}"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_share_capacity_by_dominant_share_not_by_volume() {
    let mut world = World::start(WorldConfig::default()).await;
    // team-a floods with 12 jobs, team-b sends 4; each job is a driver and one executor (2
    // slots), so four run at once.
    let mut a = Vec::new();
    for i in 0..12 {
        a.push(
            world
                .publish(job("team-a", &format!("flood-{i}"), 1, "10s"))
                .await,
        );
    }
    let mut b = Vec::new();
    for i in 0..4 {
        b.push(
            world
                .publish(job("team-b", &format!("steady-{i}"), 1, "10s"))
                .await,
        );
    }
    for id in a.iter().chain(&b) {
        world.wait_stored(*id, LONG).await;
    }
    world.start_submitter().await;
    for id in a.iter().chain(&b) {
        world.wait_state(*id, JobState::Succeeded, LONG * 2).await;
    }
    let at = submitted_at(&world, &[a.clone(), b.clone()].concat()).await;
    let mut order: Vec<(chrono::DateTime<chrono::Utc>, bool)> =
        at.iter().map(|(id, t)| (*t, b.contains(id))).collect();
    order.sort();
    // First come, first served would start team-b's jobs 13th to 16th, after the flood.
    // Dominant shares give each team half of the first four slots. Jobs admitted in one
    // round are created concurrently, so their order inside a round means nothing: count
    // the flood's jobs that started strictly before team-b's last one. Usage comes from the
    // store, which learns that an application finished one tracker sync after the cluster
    // view does; a round in that window still counts team-b's finished jobs and may give
    // team-a one extra slot per round. Even so at most 2 + 3 + 2 flood jobs start before
    // team-b's last (one more allowed for completions that trickle); first come,
    // first served starts all 12.
    let b_in_first_four = order[..4].iter().filter(|(_, is_b)| *is_b).count();
    let last_b = order
        .iter()
        .filter(|(_, is_b)| *is_b)
        .map(|(t, _)| *t)
        .max()
        .unwrap();
    let flood_before_last_b = order
        .iter()
        .filter(|(t, is_b)| !*is_b && *t < last_b)
        .count();
    assert!(
        b_in_first_four >= 2 && flood_before_last_b <= 8,
        "team-b's jobs start interleaved with team-a's flood, not behind it: {order:?}"
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_job_behind_a_stream_of_small_ones_is_not_starved() {
    let mut world = World::start(WorldConfig::default()).await;
    // The big job needs both nodes (a driver and seven executors).
    let mut smalls = Vec::new();
    for i in 0..4 {
        smalls.push(
            world
                .publish(job("team-b", &format!("small-{i}"), 1, "20s"))
                .await,
        );
    }
    for id in &smalls {
        world.wait_stored(*id, LONG).await;
    }
    world.start_submitter().await;
    world.wait_state(smalls[0], JobState::Running, LONG).await;
    let big = world.publish(job("team-a", "big", 7, "10s")).await;
    world.wait_stored(big, LONG).await;
    // Keep small jobs coming faster than they finish.
    let started = Instant::now();
    let mut i = 4;
    loop {
        let state = world.job(big).await.state;
        if state == JobState::Running || state == JobState::Succeeded {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the big job is starved ({state})"
        );
        world
            .publish(job("team-b", &format!("small-{i}"), 1, "20s"))
            .await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    world.wait_state(big, JobState::Succeeded, LONG).await;
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_daemon_anywhere_loses_nothing_and_duplicates_nothing() {
    let mut world = World::start(WorldConfig::default()).await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            world
                .publish(job(
                    if i % 2 == 0 { "team-a" } else { "team-b" },
                    &format!("crash-{i}"),
                    1,
                    "5s",
                ))
                .await,
        );
    }
    for id in &ids {
        world.wait_stored(*id, LONG).await;
    }
    world.start_submitter().await;
    let started = Instant::now();
    let mut kills = 0;
    loop {
        // Anywhere: mid-round, between create and record, mid-tracking.
        let pause = rand::random_range(20..600);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        world.crash_daemon().await;
        kills += 1;
        let mut open = Vec::new();
        for id in &ids {
            let j = world.job(*id).await;
            if j.state != JobState::Succeeded {
                open.push(format!("{id}: {:?} {:?}", j.state, j.state_message));
            }
        }
        if open.is_empty() {
            break;
        }
        if started.elapsed() >= Duration::from_secs(240) {
            // What holds the room the open jobs wait for.
            let pods: Vec<String> = world
                .pods()
                .await
                .iter()
                .map(|p| {
                    format!(
                        "{}/{} on {:?}: {:?}",
                        p.metadata.namespace.as_deref().unwrap_or_default(),
                        p.metadata.name.as_deref().unwrap_or_default(),
                        p.spec.as_ref().and_then(|s| s.node_name.as_deref()),
                        p.status.as_ref().and_then(|s| s.phase.as_deref())
                    )
                })
                .collect();
            let apps: Vec<String> = world
                .apps()
                .await
                .iter()
                .map(|a| format!("{:?}: {:?}", a.metadata.name, a.status))
                .collect();
            panic!("not done after {kills} kills: {open:?}\npods: {pods:#?}\napps: {apps:#?}");
        }
    }
    let mut per_attempt: HashMap<(String, String), usize> = HashMap::new();
    for app in world.apps().await {
        let key = (
            app.label(JOB_ID_LABEL).unwrap().to_owned(),
            app.label(ATTEMPT_LABEL).unwrap().to_owned(),
        );
        *per_attempt.entry(key).or_default() += 1;
    }
    assert!(
        per_attempt.values().all(|n| *n == 1),
        "exactly one SparkApplication per job and attempt: {per_attempt:?}"
    );
    for id in &ids {
        let j = world.job(*id).await;
        assert_eq!(
            j.attempt, 1,
            "no attempt was lost or doubled by {kills} kills"
        );
        assert_eq!(per_attempt.get(&(id.to_string(), "1".to_owned())), Some(&1));
    }
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promise_left_by_a_stopped_admission_does_not_block_its_own_job() {
    let mut world = World::start(WorldConfig::default()).await;
    let id = world.publish(job("team-a", "orphaned", 1, "1s")).await;
    world.wait_stored(id, LONG).await;
    // What a submitter stopped between reserve and record leaves behind: the job's promise,
    // on both nodes, matching no pod (so it would only lapse with the ledger TTL).
    let stale = capacity::testing::gang(
        &format!("{id}/1"),
        "team-a",
        (1000, 1 << 30),
        1,
        (1000, 1 << 30),
    );
    let placement = capacity::Placement {
        nodes: vec!["general-0000".into(), "general-0001".into()],
        scale_up: Vec::new(),
    };
    world.checker().reserve(&stale, &placement);
    world.start_submitter().await;
    world.wait_state(id, JobState::Succeeded, LONG).await;
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_can_never_fit_is_dead_lettered_with_the_reason() {
    let mut world = World::start(WorldConfig::default()).await;
    let mut big = job("team-a", "too-big", 2, "5s");
    big["executor"] = json!({"cores": 8, "memory": "4g", "instances": 2});
    let id = world.publish(big).await;
    let ok = world.publish(job("team-a", "fine", 1, "5s")).await;
    world.start_submitter().await;
    let dead = world.wait_state(id, JobState::Dead, LONG).await;
    assert_eq!(dead.state_reason.as_deref(), Some("never-fits"));
    assert!(
        dead.state_message.unwrap_or_default().contains("cpu"),
        "the reason names the resource"
    );
    world.wait_state(ok, JobState::Succeeded, LONG).await;
    let letters = world
        .store
        .list_dead_letters(&Default::default(), queues::store::PageRequest::first(10))
        .await
        .unwrap();
    assert!(
        letters
            .items
            .iter()
            .any(|d| d.reason == jobs::DeadReason::NeverFits)
    );
    world.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_job_wakes_the_admission_round_before_the_interval() {
    // Rounds every 60 s (the longest interval allowed): the first runs when the submitter
    // starts, the next only a minute later. Jobs stored in between must not wait for it.
    let mut config = WorldConfig::default();
    config.submitter.interval.0 = Duration::from_secs(60);
    let mut world = World::start(config).await;
    world.start_submitter().await;
    eventually("the leader listens for queued jobs", LONG, || async {
        (world.db.listeners().await.len() == 1).then_some(())
    })
    .await;
    let limit = Duration::from_secs(20);
    for name in ["first", "second"] {
        let id = world.publish(job("team-a", name, 1, "10s")).await;
        eventually(
            &format!("{name} submitted before the next tick"),
            limit,
            || {
                let store = world.store.clone();
                async move {
                    let history = store.history(id).await.unwrap();
                    history
                        .iter()
                        .any(|t| t.to == JobState::Submitted)
                        .then_some(())
                }
            },
        )
        .await;
    }
    world.cleanup().await;
}
