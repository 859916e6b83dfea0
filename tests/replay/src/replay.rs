//! The replayer: one trace, one policy, one fresh world.
//!
//! It builds an e2e [`World`] (kube-sim with the trace's cluster under `deploy/base`'s RBAC, a
//! fresh database, a unique RabbitMQ topology, the real daemon as its ServiceAccount) and lets
//! what the policy calls for admit: the daemon (backfill on or off), or a submitter with the
//! MVP's check beside the daemon kept a standby, or nothing. Then it publishes every job over AMQP at its submit offset on the simulated clock
//! (without the orchestrator: creates its SparkApplication at that moment instead). Watches on
//! SparkApplications and pods feed the [`Recorder`]; a sampler reads the cluster from its own
//! watch cache. The replay ends when every job has ended, or `drain` simulated seconds after
//! the last submission.
//!
//! Simulated time: the orchestrator's own timers run on the wall clock, so the submitter's
//! durations that mean something in the workload's time (promotion age, stuck limit) are the
//! simulated values divided by the speed.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use capacity::{Capacity, CapacityConfig, GangDemand};
use e2e::world::{World, WorldConfig};
use jobs::JobId;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::api::{Api, ListParams, PostParams};
use submitter::context::Context;
use submitter::footprint::Footprint;
use submitter::kube_apps::SparkApplication;
use submitter::service::Submitter;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{Summary, summarize};
use crate::mvp::MvpChecker;
use crate::observe::{estimate_loop, sample_loop, watch_apps, watch_lag, watch_pods};
use crate::record::Recorder;
use crate::trace::TraceJob;
use crate::{Policy, cluster};

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trace line is not a valid job for the replay's catalog.
    #[error("trace line {line} ({name}): {message}")]
    Job {
        /// 1-based line.
        line: usize,
        /// Job name.
        name: String,
        /// Why.
        message: String,
    },
    /// Kubernetes (kube-sim) refused or failed a call.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The capacity watch cache did not sync.
    #[error("capacity: {0}")]
    Capacity(#[from] capacity::Error),
    /// The job store failed.
    #[error("job store: {0}")]
    Store(#[from] sqlx::Error),
    /// The broker did not confirm a publish.
    #[error("publishing: {0}")]
    Publish(String),
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
}

/// Replay settings.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Cluster nodes (16 cpu / 64 GiB each).
    pub nodes: usize,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// A driver running with executors pending longer than this is stuck (simulated s).
    pub stuck_limit: f64,
    /// Give up this long after the last submission (simulated s).
    pub drain: f64,
    /// Cluster sample period (simulated s).
    pub sample_every: f64,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            nodes: 100,
            speed: 100.0,
            stuck_limit: 120.0,
            drain: 4.0 * 3600.0,
            sample_every: 30.0,
        }
    }
}

/// What one replay produced.
#[derive(Debug)]
pub struct RunOutput {
    /// The policy.
    pub policy: Policy,
    /// Everything recorded.
    pub recorder: Recorder,
    /// When it ended (simulated s since start).
    pub end: f64,
    /// Wall time it took.
    pub wall: Duration,
    /// The stuck limit used.
    pub stuck_limit: f64,
}

impl RunOutput {
    /// The report line.
    pub fn summary(&self) -> Summary {
        summarize(
            self.policy.name(),
            &self.recorder,
            self.stuck_limit,
            self.end,
        )
    }
}

/// Simulated seconds since the replay started (kube-sim's clock runs at a constant speed from
/// the same wall instant source).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    wall0: Instant,
    /// `wall0` as Unix seconds: the store's timestamps (start estimates) are wall-clock.
    unix0: f64,
    pub(crate) speed: f64,
}

impl Clock {
    fn start(speed: f64) -> Self {
        let unix0 = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        Self {
            wall0: Instant::now(),
            unix0,
            speed,
        }
    }
    /// The simulated time of a wall-clock instant given as Unix seconds.
    pub(crate) fn of_unix(&self, unix: f64) -> f64 {
        (unix - self.unix0) * self.speed
    }
    pub(crate) fn now(&self) -> f64 {
        self.wall0.elapsed().as_secs_f64() * self.speed
    }
    pub(crate) fn wall(&self, sim_seconds: f64) -> Duration {
        Duration::from_secs_f64((sim_seconds / self.speed).max(0.0))
    }
}

pub(crate) type Shared<T> = Arc<Mutex<T>>;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A trace job made ready: its message, parsed job, footprint and gang.
pub(crate) struct Prepared {
    id: String,
    body: Vec<u8>,
    job: jobs::Job,
    footprint: Footprint,
    pub(crate) gang: GangDemand,
}

fn prepare(trace: &[TraceJob], catalog: &jobs::Catalog) -> Result<Vec<Prepared>, Error> {
    trace
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let fail = |message: String| Error::Job {
                line: i + 1,
                name: t.name.clone(),
                message,
            };
            let id = JobId::generate().to_string();
            let body = serde_json::to_vec(&t.job_message(&id)).map_err(|e| fail(e.to_string()))?;
            let job = jobs::parse_job(&body, catalog).map_err(|e| fail(e.to_string()))?;
            let footprint = Footprint::of(&job, catalog).map_err(|e| fail(e.to_string()))?;
            let gang = footprint.gang(
                id.clone(),
                &job.namespace,
                BTreeMap::new(),
                &BTreeMap::new(),
            );
            Ok(Prepared {
                id,
                body,
                job,
                footprint,
                gang,
            })
        })
        .collect()
}

/// Replays `trace` under `policy`.
pub async fn run(trace: &[TraceJob], policy: Policy, cfg: &RunConfig) -> Result<RunOutput, Error> {
    if !(cfg.speed.is_finite() && cfg.speed > 0.0 && cfg.nodes > 0) {
        return Err(Error::Config("speed must be > 0 and nodes ≥ 1".into()));
    }
    let started = Instant::now();
    let mut wc = WorldConfig {
        cluster: cluster::sim_config(trace, cfg.nodes, cfg.speed)
            .with_manifest_yaml(&cluster::submit_bindings(trace))
            .map_err(|e| Error::Config(e.to_string()))?,
        catalog: cluster::catalog_toml(trace),
        ..WorldConfig::default()
    };
    let scaled = |sim: f64, floor: Duration| Duration::from_secs_f64(sim / cfg.speed).max(floor);
    wc.submitter.promote_after.0 = scaled(3600.0, Duration::from_millis(100));
    wc.submitter.stuck_after.0 = scaled(300.0, Duration::from_secs(1));
    wc.submitter.lost_after.0 = scaled(600.0, Duration::from_secs(5));
    wc.submitter.backfill = policy != Policy::StrictFifo;
    // Start estimates: recomputed every simulated minute, 30 simulated minutes assumed for a
    // job with no history.
    wc.submitter.estimate_every.0 = scaled(60.0, Duration::from_millis(100));
    wc.submitter.default_runtime.0 = scaled(1800.0, Duration::from_secs(1));
    if policy == Policy::OrchestratorPreempt {
        let p = &mut wc.submitter.preemption;
        p.enabled = true;
        p.scope = submitter::preemption::Scope::Priority;
        p.min_runtime.0 = scaled(120.0, Duration::ZERO);
        p.hold_for.0 = scaled(600.0, Duration::from_secs(1));
    }
    let submitter_config = wc.submitter.clone();
    let mut world = World::start(wc).await;
    // The orchestrator policies: the world's daemon leads (so the clock starts with a
    // submitter). The baselines keep it a standby: intake and relay run, nothing is admitted
    // but by the baseline itself.
    if policy.daemon_admits() {
        world.start_submitter().await;
    }
    let result = drive(&world, trace, policy, cfg, submitter_config).await;
    world.cleanup().await;
    let (recorder, end) = result?;
    Ok(RunOutput {
        policy,
        recorder,
        end,
        wall: started.elapsed(),
        stuck_limit: cfg.stuck_limit,
    })
}

async fn drive(
    world: &World,
    trace: &[TraceJob],
    policy: Policy,
    cfg: &RunConfig,
    submitter_config: submitter::config::SubmitterConfig,
) -> Result<(Recorder, f64), Error> {
    let prepared = prepare(trace, &world.catalog)?;
    let token = CancellationToken::new();
    let meter = Capacity::new(
        world.client.clone(),
        &CapacityConfig::default(),
        capacity::Metrics::new(),
    );
    let runner = meter.clone();
    let meter_token = token.child_token();
    let mut tasks: Vec<JoinHandle<()>> = vec![tokio::spawn(async move {
        let _ = runner.run(meter_token).await;
    })];
    let ids: Vec<String> = prepared.iter().map(|p| p.id.clone()).collect();
    let rec: Shared<Recorder> = Arc::new(Mutex::new(Recorder::new(trace, &ids)));
    let result = async {
        meter.wait_ready(Duration::from_secs(30)).await?;
        let clock = Clock::start(cfg.speed);
        tasks.push(watch_apps(
            world.client.clone(),
            rec.clone(),
            clock,
            token.child_token(),
        ));
        tasks.push(watch_pods(
            world.client.clone(),
            rec.clone(),
            clock,
            token.child_token(),
        ));
        tasks.push(watch_lag(rec.clone(), clock, token.child_token()));
        if policy.daemon_admits() {
            tasks.push(estimate_loop(
                world.db.pool.clone(),
                rec.clone(),
                clock,
                cfg.sample_every,
                token.child_token(),
            ));
        }
        match policy {
            Policy::Orchestrator
            | Policy::OrchestratorPreempt
            | Policy::StrictFifo
            | Policy::NoOrchestrator => {}
            Policy::Mvp => {
                let shared = Context::new(
                    world.store.clone(),
                    Arc::new(MvpChecker::new(meter.snapshot().clone())),
                    world.client.clone(),
                    world.catalog.clone(),
                    submitter_config,
                    Arc::new(submitter::metrics::Metrics::default()),
                );
                let t = token.child_token();
                tasks.push(tokio::spawn(
                    async move { Submitter::new(shared).run(t).await },
                ));
            }
        }
        let sampler = sample_loop(
            &meter,
            &rec,
            &prepared,
            clock,
            cfg.sample_every,
            token.clone(),
        );
        let main = async {
            let published = publish_loop(world, trace, &prepared, policy, &rec, clock).await;
            let last = trace.last().map_or(0.0, |j| j.at);
            published?;
            wait_until_done(world, policy, &rec, clock, last + cfg.drain, trace.len()).await?;
            token.cancel();
            Ok::<f64, Error>(clock.now())
        };
        let (end, ()) = tokio::join!(main, sampler);
        let end = end?;
        record_ends(world, policy, &rec, end).await?;
        record_scheduling(world, &rec).await?;
        if policy.daemon_admits() {
            record_preemptions(world, &rec, cfg.speed).await?;
        }
        lock(&rec).close(end);
        Ok::<f64, Error>(end)
    }
    .await;
    token.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }
    let end = result?;
    let recorder = std::mem::take(&mut *lock(&rec));
    Ok((recorder, end))
}

async fn publish_loop(
    world: &World,
    trace: &[TraceJob],
    prepared: &[Prepared],
    policy: Policy,
    rec: &Shared<Recorder>,
    clock: Clock,
) -> Result<(), Error> {
    let mut i = 0;
    while i < trace.len() {
        let now = clock.now();
        if now < trace[i].at {
            let nap = clock
                .wall(trace[i].at - now)
                .min(Duration::from_millis(500));
            tokio::time::sleep(nap).await;
            continue;
        }
        let mut j = i;
        while j < trace.len() && trace[j].at <= now {
            j += 1;
        }
        {
            let mut r = lock(rec);
            for k in i..j {
                r.enqueued(k, now);
            }
        }
        if policy == Policy::NoOrchestrator {
            for p in &prepared[i..j] {
                create_directly(world, p).await?;
            }
        } else {
            let messages: Vec<queues::Outgoing> = prepared[i..j]
                .iter()
                .map(|p| queues::Outgoing::raw(&p.job.namespace, p.job.priority, p.body.clone()))
                .collect();
            for chunk in messages.chunks(200) {
                for r in world.publisher.publish_all(chunk).await {
                    r.map_err(|e| Error::Publish(e.to_string()))?;
                }
            }
        }
        i = j;
    }
    Ok(())
}

/// The Spark Operator alone: the application the submitter would create, created now.
async fn create_directly(world: &World, p: &Prepared) -> Result<(), Error> {
    let rendered = submitter::spark_app::spark_application(
        &p.job,
        &p.footprint,
        1,
        &submitter::spark_app::EmitSettings::default(),
    );
    let app = SparkApplication::from_rendered(rendered)
        .map_err(|e| Error::Config(format!("rendering {}: {e}", p.job.name)))?;
    Api::<SparkApplication>::namespaced(world.client.clone(), &p.job.namespace)
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

const ENDED: &str = "SELECT count(*) FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled')";

async fn wait_until_done(
    world: &World,
    policy: Policy,
    rec: &Shared<Recorder>,
    clock: Clock,
    deadline: f64,
    jobs: usize,
) -> Result<(), Error> {
    loop {
        let ended = if policy == Policy::NoOrchestrator {
            lock(rec).jobs_with_ended_app()
        } else {
            usize::try_from(
                sqlx::query_scalar::<_, i64>(ENDED)
                    .fetch_one(&world.db.pool)
                    .await?,
            )
            .unwrap_or(0)
        };
        if ended >= jobs || clock.now() > deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The scheduler's verdicts on the replay's pods, from the cluster's Events: how often a pod
/// found no node (`FailedScheduling`) and how many pods were evicted for a higher-priority one
/// (`Preempted`). Either means a pod waited for room nobody had set aside for it.
async fn record_scheduling(world: &World, rec: &Shared<Recorder>) -> Result<(), Error> {
    let events = Api::<KubeEvent>::all(world.client.clone())
        .list(&ListParams::default())
        .await?;
    let mut r = lock(rec);
    for e in events.items {
        let n = u32::try_from(e.count.unwrap_or(1).max(1)).unwrap_or(u32::MAX);
        match e.reason.as_deref() {
            Some("FailedScheduling") => r.failed_scheduling += n,
            Some("Preempted") => r.preempted += n,
            _ => {}
        }
    }
    Ok(())
}

/// Preemptions, from the store: how many times a job went back to its queue preempted, and
/// the work lost — each preempted attempt's cpu (driver and executors) times how long its
/// driver had run, in simulated cpu·seconds (the store's times are wall-clock).
async fn record_preemptions(
    world: &World,
    rec: &Shared<Recorder>,
    speed: f64,
) -> Result<(), Error> {
    let (preemptions, lost): (i64, f64) = sqlx::query_as(
        "SELECT count(*), coalesce(sum(extract(epoch FROM finished_at - started_at)::float8 \
         * cpu_millis / 1000.0) FILTER (WHERE started_at IS NOT NULL), 0)::float8 \
         FROM job_attempts WHERE outcome = 'preempted'",
    )
    .fetch_one(&world.db.pool)
    .await?;
    let mut r = lock(rec);
    r.preemptions = u32::try_from(preemptions).unwrap_or(u32::MAX);
    r.lost_cpu_seconds = lost * speed;
    Ok(())
}

/// Final states: the store's for orchestrated policies, the applications' otherwise.
async fn record_ends(
    world: &World,
    policy: Policy,
    rec: &Shared<Recorder>,
    end: f64,
) -> Result<(), Error> {
    if policy == Policy::NoOrchestrator {
        let mut r = lock(rec);
        let mut last: HashMap<usize, (f64, String)> = HashMap::new();
        for app in r.apps.values() {
            if let Some((t, s)) = &app.terminal
                && last.get(&app.job).is_none_or(|(lt, _)| t > lt)
            {
                last.insert(app.job, (*t, s.clone()));
            }
        }
        for (job, (_, state)) in last {
            r.finish_job(job, &state, end);
        }
        return Ok(());
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id::text, state FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled')",
    )
    .fetch_all(&world.db.pool)
    .await?;
    let mut r = lock(rec);
    for (id, state) in rows {
        if let Some(job) = r.job_index(&id) {
            r.finish_job(job, &state, end);
        }
    }
    Ok(())
}
