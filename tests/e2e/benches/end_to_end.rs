//! End-to-end throughput with ample capacity: jobs published to RabbitMQ (confirmed) → stored
//! by the intake → admitted → SparkApplication created on kube-sim (real kube client over
//! HTTP) → recorded `submitted`. Reports jobs/s from the first publish to the last
//! application created (the rate issue 18 compares) and to the last job recorded.
//!
//! In the same run and on the same kube-sim, first a plain client creates the same number of
//! SparkApplications (rendered from the same jobs) with as many creates in flight as the
//! submitter allows, then deletes them: the raw rate the API server accepts, which the
//! orchestrator's rate is compared with (issue 18 aims at ≥ 50 %). The plain client then
//! creates them a second time: the first burst runs in a fresh process (the first touches of
//! its memory, slow on a virtual machine, and the client's new connections), so the second,
//! warm burst is closer to what a long-running API server accepts; the ratio is printed
//! against both.
//!
//! The process runs on the allocator the `orchestrator` binary ships with (mimalloc), kube-sim
//! and the plain client included.
//!
//! Both phases also print the CPU time they took (Linux `/proc`): this process (kube-sim, the
//! daemon and the clients all run in it), PostgreSQL and RabbitMQ. On a small machine the
//! orchestrator's rate is bounded by the CPU its whole pipeline needs per job, not by the API
//! server; these figures show that budget.
//!
//! `cargo bench -p e2e --bench end_to_end` (env `E2E_JOBS`, default 2000; `E2E_NODES`,
//! default 100, of 64 cpu each; `E2E_PERF_CTL`, a `perf` control FIFO, see
//! [`PerfControl`])

#![allow(clippy::unwrap_used, clippy::print_stdout, reason = "benchmark")]

use std::time::{Duration, Instant};

use e2e::world::{World, WorldConfig, default_cluster};
use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use submitter::admission::ADMISSIONS_IN_FLIGHT as IN_FLIGHT;
use submitter::kube_apps::SparkApplication;
use test_support::eventually;

/// The shipped binary's allocator (`orchestrator/src/main.rs`): the daemon runs in this process
/// as it runs in production. kube-sim and the plain client share it, so both phases see the same
/// API server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

    let timed = bodies(jobs);
    let (raw, raw_cpu, raw_events) = raw_creates(&world, &timed).await;
    let (warm, warm_cpu, _) = raw_creates(&world, &timed).await;

    // The orchestrator is up and leading before the first publish, as in production: the
    // rate measured is its throughput, not the start of a new daemon (its watches and caches).
    world.start_submitter().await;
    let perf = PerfControl::from_env();
    perf.send("enable");
    let cpu_before = Cpu::now();
    let events_before = watch_events(&world);
    let started = Instant::now();
    let publishing = async {
        publish(&world, &timed).await;
        started.elapsed()
    };
    // The end point, every SparkApplication created, read off kube-sim in the process
    // (a lock and a count, no request) so that watching loads the path it times as little as
    // it can; also when the first application and each further quarter of them were created
    // (where the time goes). PostgreSQL is asked every 10 ms until every job is stored.
    let creating = async {
        let mut quarters = [None; 4];
        loop {
            let now = started.elapsed();
            let apps = world.apps_created();
            for (q, at) in quarters.iter_mut().enumerate() {
                if at.is_none() && apps > 0 && apps * 4 >= jobs * q {
                    *at = Some(now);
                }
            }
            if apps >= jobs {
                break (now, quarters.map(|at| at.unwrap_or(now)));
            }
            assert!(now < Duration::from_secs(600), "only {apps}/{jobs} created");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    let storing = async {
        while count(&world, "SELECT count(*) FROM jobs").await < jobs {
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "not all stored"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        started.elapsed()
    };
    let (published, (created, quarters), stored_at) = futures::join!(publishing, creating, storing);
    perf.send("disable");
    let events = watch_events(&world) - events_before;
    let recorded = loop {
        let submitted = count(&world, RECORDED).await;
        if submitted == jobs {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "only {submitted}/{jobs} recorded"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let orchestrator_cpu = Cpu::now().since(&cpu_before);
    let apps = world.apps().await.len();
    assert_eq!(apps, jobs, "one SparkApplication per job");
    println!("end_to_end: {jobs} jobs, {nodes} nodes");
    println!(
        "  raw client ({IN_FLIGHT} in flight):     {:>8.2?}  {:>7.0} apps/s",
        raw,
        jobs as f64 / raw.as_secs_f64()
    );
    println!(
        "  raw client again (warm):        {:>8.2?}  {:>7.0} apps/s",
        warm,
        jobs as f64 / warm.as_secs_f64()
    );
    println!(
        "  published (confirmed):          {:>8.2?}  {:>7.0} jobs/s",
        published,
        jobs as f64 / published.as_secs_f64()
    );
    println!(
        "  all stored (intake):            {:>8.2?}  {:>7.0} jobs/s",
        stored_at,
        jobs as f64 / stored_at.as_secs_f64()
    );
    let [first, quarter, half, three] = quarters;
    println!(
        "  first / 25 / 50 / 75 % created:  {first:.0?} / {quarter:.0?} / {half:.0?} / {three:.0?}"
    );
    for (what, at) in [
        ("all SparkApplications created:", created),
        ("all recorded submitted:        ", recorded),
    ] {
        println!(
            "  {what}  {:>8.2?}  {:>7.0} jobs/s  ({:.0} % of raw, {:.0} % of warm raw)",
            at,
            jobs as f64 / at.as_secs_f64(),
            100.0 * raw.as_secs_f64() / at.as_secs_f64(),
            100.0 * warm.as_secs_f64() / at.as_secs_f64()
        );
    }
    println!("  CPU seconds (this process incl. kube-sim / PostgreSQL / RabbitMQ):");
    println!("    raw client:    {raw_cpu}");
    println!("    again (warm):  {warm_cpu}");
    println!("    orchestrator:  {orchestrator_cpu}");
    println!("  watch events kube-sim sent: raw client {raw_events}, orchestrator {events}");
    world.cleanup().await;
}

/// `perf record --control fifo:PATH -D -1` profiles the orchestrator's phase alone when
/// `E2E_PERF_CTL=PATH` names the same FIFO: the bench enables the profiler at the first publish
/// and disables it at the last application created.
struct PerfControl(Option<std::fs::File>);

impl PerfControl {
    fn from_env() -> Self {
        Self(
            std::env::var_os("E2E_PERF_CTL")
                .map(|path| std::fs::OpenOptions::new().write(true).open(path).unwrap()),
        )
    }

    fn send(&self, command: &str) {
        if let Some(mut fifo) = self.0.as_ref() {
            use std::io::Write as _;
            writeln!(fifo, "{command}").unwrap();
        }
    }
}

/// Jobs recorded `submitted` or later.
const RECORDED: &str =
    "SELECT count(*) FROM jobs WHERE state IN ('submitted', 'running', 'succeeded')";

/// `n` job bodies named `bench-{i}`, alternately in team-a and team-b.
fn bodies(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
            json!({
                "apiVersion": "v1", "name": format!("bench-{i}"), "namespace": ns,
                "mainApplicationFile": "local:///opt/app.jar", "mainClass": "Main",
                "driver": {"nodeType": "small"}, "executor": {"nodeType": "small", "instances": 1},
                "annotations": {"kube-sim.dev/runtime": "1h"}
            })
        })
        .collect()
}

/// Publishes `bodies` to their namespaces' normal queues, 200 at a time, each confirmed.
async fn publish(world: &World, bodies: &[Value]) {
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
}

/// `sql`'s count.
async fn count(world: &World, sql: &'static str) -> usize {
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(&world.db.pool)
        .await
        .unwrap();
    n as usize
}

/// Creates one SparkApplication per job body as the orchestrator would render it, with
/// [`IN_FLIGHT`] creates at a time as kube-sim's admin, and returns how long that took; then
/// deletes them and waits for their pods to go, so the orchestrator starts on an empty cluster.
/// Also returns the CPU the creates took and the watch events kube-sim sent meanwhile (to the
/// standby daemon's capacity watches).
async fn raw_creates(world: &World, bodies: &[Value]) -> (Duration, Cpu, u64) {
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
    let cpu_before = Cpu::now();
    let events_before = watch_events(world);
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
    let cpu = Cpu::now().since(&cpu_before);
    let events = watch_events(world) - events_before;
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
    (took, cpu, events)
}

/// Watch events kube-sim has sent so far, to every watcher: each is encoded by kube-sim and
/// decoded by a watcher in this process, CPU both phases spend beside their creates.
fn watch_events(world: &World) -> u64 {
    world.sim.stats()["watches"]["events"].as_u64().unwrap_or(0)
}

/// CPU seconds used so far (user + system) by this process, by every PostgreSQL process and by
/// RabbitMQ's Erlang VM, read from `/proc` (zero where it cannot be read).
struct Cpu {
    this: f64,
    postgres: f64,
    rabbitmq: f64,
}

impl Cpu {
    fn now() -> Self {
        let mut cpu = Self {
            this: 0.0,
            postgres: 0.0,
            rabbitmq: 0.0,
        };
        let me = std::process::id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return cpu;
        };
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`: comm may hold spaces; fields after it are plain.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let comm = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 after comm.
            let ticks: f64 = [11, 12]
                .iter()
                .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
                .sum();
            let seconds = ticks / 100.0; // USER_HZ
            if pid == me {
                cpu.this += seconds;
            } else if comm == "postgres" {
                cpu.postgres += seconds;
            } else if comm == "beam.smp" {
                cpu.rabbitmq += seconds;
            }
        }
        cpu
    }

    /// What was used since `before` (processes that ended meanwhile are not counted).
    fn since(&self, before: &Self) -> Self {
        Self {
            this: self.this - before.this,
            postgres: (self.postgres - before.postgres).max(0.0),
            rabbitmq: self.rabbitmq - before.rabbitmq,
        }
    }
}

impl std::fmt::Display for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} / {:.2} / {:.2} = {:.2} s",
            self.this,
            self.postgres,
            self.rabbitmq,
            self.this + self.postgres + self.rabbitmq
        )
    }
}
