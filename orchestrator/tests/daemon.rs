//! `orchestrator run` as real processes against kube-sim, RabbitMQ and PostgreSQL: leader
//! failover after a SIGKILL with no job admitted twice, SIGTERM shutdown releasing the lease,
//! cron jobs travelling through RabbitMQ into the queues like any job, and `enqueue --wait` /
//! `jobs watch` following jobs to their end with their pods.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use jobs::{Catalog, CatalogConfig, JobId, JobState};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, ListParams};
use kube_sim::{SimHandle, Simulator};
use queues::store::{JobFilter, JobSource, PageRequest};
use queues::{JobStore, Names, Publisher, Topology, TopologyConfig};
use schedules::{ConcurrencyPolicy, MissedRunPolicy, ScheduleDefinition};
use serde_json::{Value, json};
use submitter::kube_apps::SparkApplication;
use test_support::eventually;
use test_support::pg::TestDb;

/// A cluster, a database, a topology prefix and a config file for daemons to share.
struct Site {
    sim: SimHandle,
    db: TestDb,
    dir: tempfile::TempDir,
    prefix: String,
    lease: String,
    store: JobStore,
    catalog: Arc<Catalog>,
}

impl Site {
    async fn new() -> Self {
        let sim = Simulator::start(
            e2e::world::default_cluster(3),
            "127.0.0.1:0".parse().unwrap(),
        )
        .unwrap();
        let db = TestDb::new(&queues::store::MIGRATOR).await;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), sim.kubeconfig_yaml()).unwrap();
        let prefix = test_support::unique("d");
        let lease = test_support::unique("lease");
        let config = format!(
            "{catalog}\n[amqp]\nprefix = \"{prefix}\"\n[database]\nurl = \"{url}\"\nmax_connections = 4\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[auth]\ndisabled = true\n\
             [leader]\nlease_name = \"{lease}\"\nlease_duration = \"3s\"\n\
             [submitter]\ninterval = \"100ms\"\nlost_after = \"5s\"\n[cron]\ninterval = \"200ms\"\n\
             [shutdown]\ntimeout = \"10s\"\n",
            catalog = e2e::world::DEFAULT_CATALOG,
            url = test_support::pg::url(&db.name),
        );
        std::fs::write(dir.path().join("orchestrator.toml"), config).unwrap();
        let catalog: CatalogConfig = toml::from_str(e2e::world::DEFAULT_CATALOG).unwrap();
        let catalog = Arc::new(Catalog::new(catalog).unwrap());
        let store = JobStore::new(
            db.pool.clone(),
            Names::new(prefix.clone()).unwrap(),
            Arc::new(queues::Metrics::default()),
        );
        Self {
            sim,
            db,
            dir,
            prefix,
            lease,
            store,
            catalog,
        }
    }

    /// Starts `orchestrator run` as `identity`; returns once it listens.
    fn daemon(&self, identity: &str) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .arg("--config")
            .arg(self.dir.path().join("orchestrator.toml"))
            .arg("run")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("kubeconfig"))
            .arg("--identity")
            .arg(identity)
            .env(
                "RUST_LOG",
                std::env::var("DAEMON_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let api = line
            .trim()
            .strip_prefix("orchestrator listening on ")
            .unwrap_or_else(|| panic!("{identity} did not start: {line:?}"))
            .to_owned();
        Daemon { child, api }
    }

    async fn holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.sim.client().unwrap(), "default");
        leases
            .get_opt(&self.lease)
            .await
            .unwrap()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
    }

    async fn wait_leader(&self, identity: &str) {
        eventually(
            &format!("{identity} leads"),
            Duration::from_secs(30),
            || async { (self.holder().await.as_deref() == Some(identity)).then_some(()) },
        )
        .await;
    }

    async fn publisher(&self) -> (lapin::Connection, Publisher) {
        let connection = queues::amqp::connect(test_support::AMQP_URL, "daemon-test")
            .await
            .unwrap();
        let topology =
            Topology::new(TopologyConfig::new(self.prefix.clone()), &self.catalog).unwrap();
        let publisher = Publisher::new(&connection, &topology).await.unwrap();
        (connection, publisher)
    }

    async fn apps(&self) -> Vec<SparkApplication> {
        let api: Api<SparkApplication> = Api::all(self.sim.client().unwrap());
        api.list(&ListParams::default()).await.unwrap().items
    }

    /// Deletes the RabbitMQ topology and the database (daemons must be stopped first).
    async fn finish(self) {
        let (connection, _) = self.publisher().await;
        let topology =
            Topology::new(TopologyConfig::new(self.prefix.clone()), &self.catalog).unwrap();
        let channel = connection.create_channel().await.unwrap();
        let _ = topology.delete(&channel).await;
        let _ = connection.close(200, "test done".into()).await;
        self.db.drop_database().await;
        drop(self.dir);
    }
}

struct Daemon {
    child: Child,
    /// `http://ADDR` of its API.
    api: String,
}

impl Daemon {
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn job(name: &str, runtime: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "id": JobId::generate().to_string(),
        "name": name,
        "namespace": "team-a",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": 1},
        "annotations": {"kube-sim.dev/runtime": runtime}
    })
}

async fn publish(publisher: &Publisher, job: &Value) -> JobId {
    let message = queues::Outgoing::raw(
        "team-a",
        jobs::Priority::Normal,
        serde_json::to_vec(job).unwrap(),
    );
    publisher.publish(&message).await.unwrap();
    job["id"].as_str().unwrap().parse().unwrap()
}

async fn states(store: &JobStore, ids: &[JobId]) -> HashMap<JobState, usize> {
    let mut out = HashMap::new();
    for id in ids {
        if let Some(j) = store.job(*id).await.unwrap() {
            *out.entry(j.state).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_leader_is_killed_and_no_job_is_admitted_twice() {
    let site = Site::new().await;
    let mut a = site.daemon("replica-a");
    site.wait_leader("replica-a").await;
    let b = site.daemon("replica-b");
    let (_connection, publisher) = site.publisher().await;

    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(publish(&publisher, &job(&format!("before-{i}"), "40s")).await);
    }
    eventually("the leader admits", Duration::from_secs(60), || async {
        let s = states(&site.store, &ids).await;
        let admitted = s.get(&JobState::Submitted).unwrap_or(&0)
            + s.get(&JobState::Running).unwrap_or(&0)
            + s.get(&JobState::Succeeded).unwrap_or(&0);
        (admitted >= 3).then_some(())
    })
    .await;
    assert_eq!(site.holder().await.as_deref(), Some("replica-a"));

    a.kill();
    site.wait_leader("replica-b").await;
    for i in 0..6 {
        ids.push(publish(&publisher, &job(&format!("after-{i}"), "5s")).await);
    }
    eventually("every job succeeds", Duration::from_secs(120), || async {
        let s = states(&site.store, &ids).await;
        (s.get(&JobState::Succeeded) == Some(&ids.len())).then_some(())
    })
    .await;

    // No job admitted twice: one submission, one application each.
    for id in &ids {
        let history = site.store.history(*id).await.unwrap();
        let submissions = history
            .iter()
            .filter(|t| t.to == JobState::Submitted)
            .count();
        assert_eq!(submissions, 1, "job {id}: {history:?}");
    }
    let apps = site.apps().await;
    let mut per_job: HashMap<String, usize> = HashMap::new();
    for app in &apps {
        let labels = app.metadata.labels.clone().unwrap_or_default();
        let id = labels
            .get(submitter::naming::JOB_ID_LABEL)
            .cloned()
            .unwrap_or_default();
        *per_job.entry(id).or_default() += 1;
    }
    assert!(per_job.values().all(|n| *n == 1), "{per_job:?}");

    // SIGTERM: a clean exit that gives the lease up.
    let status = b.terminate();
    assert!(status.success(), "{status:?}");
    assert_ne!(site.holder().await.as_deref(), Some("replica-b"));
    site.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_jobs_travel_through_rabbitmq_into_the_queues_and_run() {
    let site = Site::new().await;
    let daemon = site.daemon("cron-replica");
    site.store
        .create_schedule(&ScheduleDefinition {
            name: "every-two-seconds".into(),
            namespace: "team-a".into(),
            cron: "*/2 * * * * *".into(),
            time_zone: "UTC".into(),
            job_template: {
                let mut t = job("cron-pi", "1s");
                t.as_object_mut().unwrap().remove("id");
                t
            },
            missed: MissedRunPolicy::Skip,
            starting_deadline_seconds: 60,
            concurrency_policy: ConcurrencyPolicy::Forbid,
            suspended: false,
        })
        .await
        .unwrap();
    let job = eventually("a cron job succeeds", Duration::from_secs(60), || async {
        let page = site
            .store
            .list_jobs(&JobFilter::default(), PageRequest::first(50))
            .await
            .unwrap();
        page.items
            .into_iter()
            .find(|j| j.state == JobState::Succeeded)
    })
    .await;
    let stored = site.store.job(job.id).await.unwrap().unwrap();
    assert_eq!(stored.source, JobSource::Cron.as_str());
    assert_eq!(stored.job.name, "cron-pi");
    drop(daemon);
    site.finish().await;
}

#[test]
fn bad_configs_and_arguments_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run = |config: &Path, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .arg("--config")
            .arg(config)
            .args(args)
            .env_remove("ORCHESTRATOR_HTTP_ADDR")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let missing = dir.path().join("missing.toml");
    let (code, err) = run(&missing, &["run"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cannot read the file"), "{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[namespaces.team-a]\n[leader]\nlease_duration = \"soon\"\n",
    )
    .unwrap();
    let (code, err) = run(&bad, &["run"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("leader.lease_duration"), "{err}");

    let ok = dir.path().join("ok.toml");
    std::fs::write(&ok, "[namespaces.team-a]\n").unwrap();
    let (code, err) = run(&ok, &["run", "--listen", "not-an-address"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--listen"), "{err}");
    let (code, _) = run(&ok, &["run", "--no-such-flag"]);
    assert_eq!(code, Some(2));
}

/// The CLI against `api`, off the async runtime: (exit code, stdout, stderr).
async fn cli(api: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    cmd.args(args)
        .arg("--api")
        .arg(api)
        .env_remove("ORCHESTRATOR_TOKEN")
        .env_remove("ORCHESTRATOR_API_URL");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_wait_and_jobs_watch_follow_jobs_to_their_end_with_their_pods() {
    let site = Site::new().await;
    let daemon = site.daemon("watch-replica");
    site.wait_leader("watch-replica").await;
    let api = daemon.api.clone();
    let every = ["--every", "100ms"];

    // enqueue --wait: the acceptance, then a line per change, exit 0 once it succeeded.
    let file = site.dir.path().join("short.json");
    let mut short = job("watched", "5s");
    short["executor"]["instances"] = json!(2);
    std::fs::write(&file, short.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let (code, out, err) = cli(&api, &[&["enqueue", path, "--wait"], &every[..]].concat()).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("accepted: job "), "{out}");
    let states: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(states.last(), Some(&"succeeded"), "{out}");
    assert!(
        states
            .iter()
            .all(|s| ["queued", "waiting", "submitted", "running", "succeeded"].contains(s)),
        "{out}"
    );
    assert_eq!(
        lines.len() - 1,
        {
            let mut distinct = lines[1..]
                .iter()
                .map(|l| &l[l.find(' ').unwrap()..])
                .collect::<Vec<_>>();
            distinct.dedup();
            distinct.len()
        },
        "a line is printed only when something changed: {out}"
    );

    // jobs watch on a long job shows its pods; cancelling it ends the watch with exit 1.
    let mut long = job("cancelled-while-watched", "1h");
    long["executor"]["instances"] = json!(2);
    let id = long["id"].as_str().unwrap().to_owned();
    std::fs::write(&file, long.to_string()).unwrap();
    assert_eq!(cli(&api, &["enqueue", path]).await.0, 0);
    // The watch runs as a process whose lines are read as they come.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args([&["jobs", "watch", &id, "--api", &api], &every[..]].concat())
        .env_remove("ORCHESTRATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut seen = Vec::new();
    let running = "driver running, executors 2/2 running";
    while !seen.iter().any(|l: &String| l.contains(running)) {
        let line = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("the watch never showed both executors running: {seen:#?}"))
            .unwrap_or_else(|| panic!("the watch ended early: {seen:#?}"));
        seen.push(line);
    }
    let http = reqwest::Client::new();
    let body = http
        .get(format!("{api}/v1/jobs/{id}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["state"], "running");
    assert_eq!(
        v["pods"],
        json!({"driver": "running", "executorsRunning": 2, "executorsRequired": 2})
    );
    let (code, _, err) = cli(&api, &["jobs", "cancel", &id]).await;
    assert_eq!(code, 0, "{err}");
    let status = tokio::task::spawn_blocking(move || watch.wait().unwrap())
        .await
        .unwrap();
    while let Some(line) = rx.recv().await {
        seen.push(line);
    }
    assert_eq!(
        status.code(),
        Some(1),
        "a cancelled job is not a success: {seen:#?}"
    );
    assert!(seen.last().unwrap().contains(" cancelled "), "{seen:#?}");

    // JSON: one object per change; a finished job prints once and exits at once.
    let (code, out, _) = cli(&api, &["jobs", "watch", &id, "--output", "json"]).await;
    assert_eq!(code, 1);
    let views: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(views.len(), 1, "{out}");
    assert_eq!(views[0]["state"], "cancelled");

    // Refusals: unknown or malformed ids exit 1, bad intervals 2, an unreachable API 2.
    let unknown = JobId::generate().to_string();
    for (args, expected) in [
        (vec!["jobs", "watch", unknown.as_str()], 1),
        (vec!["jobs", "watch", "not-an-id"], 1),
        (vec!["jobs", "watch", unknown.as_str(), "--every", "1ms"], 2),
        (
            vec!["jobs", "watch", unknown.as_str(), "--every", "soon"],
            2,
        ),
        (vec!["enqueue", "/nonexistent/job.json", "--wait"], 2),
    ] {
        let (code, out, err) = cli(&api, &args).await;
        assert_eq!(code, expected, "{args:?}: {out}\n{err}");
        assert!(!err.is_empty(), "{args:?} says why");
    }
    drop(daemon);
    let closed = format!(
        "http://{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );
    let (code, _, err) = cli(
        &closed,
        &[&["jobs", "watch", &unknown], &every[..]].concat(),
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("gave up after 10 attempts"), "{err}");
    site.finish().await;
}
