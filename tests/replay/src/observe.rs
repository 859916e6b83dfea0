//! What the replay watches while it runs: the cluster sampled at intervals, applications and
//! pods as they change, and the replayer's own lag behind the simulated clock.

use std::time::{Duration, Instant};

use capacity::{Capacity, ClusterView, Verdict};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use submitter::kube_apps::SparkApplication;
use submitter::naming::JOB_ID_LABEL;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::record::{Phase, Recorder, Role, Sample};
use crate::replay::{Clock, Prepared, Shared, lock};

pub(crate) async fn sample_loop(
    meter: &Capacity,
    rec: &Shared<Recorder>,
    prepared: &[Prepared],
    clock: Clock,
    every: f64,
    token: CancellationToken,
) {
    let period = clock.wall(every).max(Duration::from_millis(20));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        let t = clock.now();
        let nodes = meter.snapshot().with_cache(|c| c.nodes().to_vec());
        let waiting = lock(rec).waiting();
        let view = ClusterView {
            nodes,
            ..ClusterView::default()
        };
        let mut tried: Vec<Vec<(u64, u64)>> = Vec::new();
        let mut fits = false;
        for &i in &waiting {
            let gang = &prepared[i].gang;
            let shape: Vec<(u64, u64)> = gang
                .pods
                .iter()
                .map(|p| (p.requests.cpu_millis, p.requests.memory_bytes))
                .collect();
            if tried.contains(&shape) {
                continue;
            }
            if matches!(capacity::decide(&view, gang), Verdict::Fits(_)) {
                fits = true;
                break;
            }
            tried.push(shape);
        }
        let (alloc, req) = view.nodes.iter().filter(|n| !n.unschedulable).fold(
            (
                capacity::Resources::default(),
                capacity::Resources::default(),
            ),
            |(a, r), n| {
                (
                    a.saturating_add(&n.allocatable),
                    r.saturating_add(&n.requested),
                )
            },
        );
        lock(rec).samples.push(Sample {
            t,
            cpu_requested: req.cpu_millis,
            cpu_allocatable: alloc.cpu_millis,
            memory_requested: req.memory_bytes,
            memory_allocatable: alloc.memory_bytes,
            waiting: waiting.len(),
            waiting_fits: fits,
        });
    }
}

pub(crate) fn watch_apps(
    client: kube::Client,
    rec: Shared<Recorder>,
    clock: Clock,
    token: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<SparkApplication> = Api::all(client);
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            let event = tokio::select! {
                _ = token.cancelled() => return,
                e = events.next() => e,
            };
            let Some(event) = event else { return };
            let t = clock.now();
            match event {
                Ok(Event::Apply(app) | Event::InitApply(app)) => {
                    let Some(id) = app.labels().get(JOB_ID_LABEL).map(ToString::to_string) else {
                        continue;
                    };
                    let key = format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any());
                    lock(&rec).app_seen(&key, &id, app.state(), t);
                }
                Ok(Event::Delete(app)) => {
                    let key = format!("{}/{}", app.namespace().unwrap_or_default(), app.name_any());
                    lock(&rec).app_gone(&key, t);
                }
                Ok(_) => {}
                Err(e) => tracing_warn("sparkapplications", &e.to_string()),
            }
        }
    })
}

pub(crate) fn watch_pods(
    client: kube::Client,
    rec: Shared<Recorder>,
    clock: Clock,
    token: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Pod> = Api::all(client);
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            let event = tokio::select! {
                _ = token.cancelled() => return,
                e = events.next() => e,
            };
            let Some(event) = event else { return };
            let t = clock.now();
            let (pod, deleted) = match event {
                Ok(Event::Apply(p) | Event::InitApply(p)) => (p, false),
                Ok(Event::Delete(p)) => (p, true),
                Ok(_) => continue,
                Err(e) => {
                    tracing_warn("pods", &e.to_string());
                    continue;
                }
            };
            let labels = pod.labels();
            let (Some(app), Some(role), Some(id)) = (
                labels.get("sparkoperator.k8s.io/app-name"),
                labels.get("spark-role"),
                labels.get(JOB_ID_LABEL),
            ) else {
                continue;
            };
            let role = match role.as_str() {
                "driver" => Role::Driver,
                "executor" => Role::Executor,
                _ => continue,
            };
            let phase = (!deleted)
                .then(|| Phase::parse(pod.status.as_ref().and_then(|s| s.phase.as_deref())));
            let key = format!("{}/{app}", pod.namespace().unwrap_or_default());
            lock(&rec).pod(&key, id, &pod.name_any(), role, phase, t);
        }
    })
}

/// Records the stretches in which this process's runtime did not run a task for more than
/// [`STALL`] (CPU starvation, a blocking section): measurements inside them are late by that
/// much simulated time, so the report shows how faithful a run was.
pub(crate) fn watch_lag(
    rec: Shared<Recorder>,
    clock: Clock,
    token: CancellationToken,
) -> JoinHandle<()> {
    const TICK: Duration = Duration::from_millis(20);
    const STALL: Duration = Duration::from_millis(100);
    tokio::spawn(async move {
        loop {
            let before = Instant::now();
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(TICK) => {}
            }
            let late = before.elapsed().saturating_sub(TICK);
            if late > STALL {
                lock(&rec).stalls.push(late.as_secs_f64() * clock.speed);
            }
        }
    })
}

/// Reads every pending job's start estimate from the store each `every` simulated seconds
/// (see [`crate::estimates`]). The time noted is taken before the read, so an admission that
/// follows the read is never earlier than it.
pub(crate) fn estimate_loop(
    pool: sqlx::PgPool,
    rec: Shared<Recorder>,
    clock: Clock,
    every: f64,
    token: CancellationToken,
) -> JoinHandle<()> {
    let period = clock.wall(every).max(Duration::from_millis(20));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tick.tick() => {}
            }
            let seen = clock.now();
            let rows: Result<Vec<(String, f64)>, _> = sqlx::query_as(
                "SELECT id::text, extract(epoch FROM estimated_start_at)::float8 FROM jobs \
                 WHERE state IN ('queued', 'waiting') AND estimated_start_at IS NOT NULL",
            )
            .fetch_all(&pool)
            .await;
            match rows {
                Ok(rows) => {
                    let mut r = lock(&rec);
                    for (id, unix) in rows {
                        r.estimate_seen(&id, seen, clock.of_unix(unix));
                    }
                }
                Err(e) => tracing_warn("start estimates", &e.to_string()),
            }
        }
    })
}

pub(crate) fn tracing_warn(what: &str, error: &str) {
    eprintln!("replay: watch on {what} failed (retrying): {error}");
}
