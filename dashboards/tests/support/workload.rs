//! The workload the live test (and the `live_stack` example) drives the daemon with: its
//! config, two cron schedules, and two rounds of published jobs.

#![allow(
    dead_code,
    reason = "shared by the live test and the live_stack example, each of which uses part of it"
)]

use std::path::Path;

use jobs::Priority;
use queues::store::NewSchedule;
use queues::{JobStore, Outgoing, Publisher};
use serde_json::{Value, json};

/// The daemon's config: the demo's file with this test's database, prefix, cluster and a
/// listener on a free port; JSON logs so the test can read the address it bound.
pub fn daemon_config(root: &Path, db: &str, prefix: &str, kubeconfig: &Path) -> String {
    let text = std::fs::read_to_string(root.join("examples/orchestrator.toml")).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    let section = |doc: &mut toml::Table, name: &str, entries: Value| {
        let table: toml::Table = serde_json::from_value(entries).unwrap();
        let entry = doc
            .entry(name)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        entry.as_table_mut().unwrap().extend(table);
    };
    section(
        &mut doc,
        "amqp",
        json!({ "url": test_support::AMQP_URL, "prefix": prefix }),
    );
    section(
        &mut doc,
        "database",
        json!({ "url": test_support::pg::url(db) }),
    );
    section(&mut doc, "http", json!({ "listen": "127.0.0.1:0" }));
    section(
        &mut doc,
        "kubernetes",
        json!({ "kubeconfig": kubeconfig.display().to_string() }),
    );
    section(&mut doc, "logging", json!({ "format": "json" }));
    section(&mut doc, "submitter", json!({ "interval": "250ms" }));
    section(&mut doc, "cron", json!({ "interval": "500ms" }));
    toml::to_string(&doc).unwrap()
}

pub fn example_job(root: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(root.join("examples/jobs").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Two schedules, made before the daemon starts: one firing every two seconds with
/// concurrency Forbid (so some fires are skipped), one whose last run was ten minutes ago
/// with a 5 s starting deadline, as if the daemon had been down (its runs count as missed).
pub async fn create_schedules(store: &JobStore, db: &sqlx::PgPool, root: &Path) {
    let mut template = example_job(root, "spark-pi.json");
    template["annotations"] = json!({ "kube-sim.dev/runtime": "10s" });
    let mut schedule = NewSchedule {
        name: "dash-every-2s".into(),
        namespace: "team-a".into(),
        cron: "*/2 * * * * *".into(),
        time_zone: "UTC".into(),
        job_template: template.clone(),
        missed_run_policy: "skip".into(),
        catch_up_limit: 1,
        starting_deadline_seconds: 60,
        concurrency_policy: "forbid".into(),
        suspended: false,
    };
    store.create_schedule(&schedule).await.unwrap();
    schedule.name = "dash-hourly-missed".into();
    schedule.cron = "0 * * * * *".into();
    schedule.starting_deadline_seconds = 5;
    let missed = store.create_schedule(&schedule).await.unwrap();
    sqlx::query(
        "UPDATE schedules SET created_at = now() - interval '1 hour', \
         last_scheduled_at = date_trunc('minute', now()) - interval '10 minutes' WHERE id = $1",
    )
    .bind(missed.id)
    .execute(db)
    .await
    .unwrap();
}

/// Publishes one round of the workload. Round 1: the demo jobs as they are, two invalid
/// messages and a job that fails twice. Round 2: the demo jobs again with fresh ids (and the
/// fixed-id one again, a duplicate) and a burst of spark-pi jobs that exceeds team-a's room,
/// so some wait for capacity.
pub async fn publish_round(publisher: &Publisher, root: &Path, round: u32) {
    let mut messages: Vec<(String, Priority, Vec<u8>)> = Vec::new();
    let mut job = |mut v: Value, fresh_id: bool| {
        if fresh_id && let Some(o) = v.as_object_mut() {
            o.remove("id");
        }
        let ns = v["namespace"].as_str().unwrap().to_owned();
        let prio = v
            .get("priority")
            .and_then(Value::as_str)
            .unwrap_or("normal");
        messages.push((ns, prio.parse().unwrap(), serde_json::to_vec(&v).unwrap()));
    };
    for name in [
        "spark-pi.json",
        "nightly-etl-high.json",
        "pyspark-report-spot.json",
        "backfill-large.json",
        "never-fits.json",
    ] {
        job(example_job(root, name), round > 1);
    }
    if round == 1 {
        let mut failing = example_job(root, "spark-pi.json");
        failing["name"] = json!("spark-pi-fails");
        failing["annotations"] =
            json!({ "kube-sim.dev/runtime": "10s", "kube-sim.dev/outcome": "Failed" });
        failing["retry"] = json!({ "maxAttempts": 2, "backoff": { "initial": "1s", "max": "1s", "multiplier": 1.0 } });
        job(failing, false);
        for (ns, file) in [
            ("team-a", "examples/invalid/not-json.txt"),
            ("team-b", "examples/invalid/many-mistakes.json"),
        ] {
            messages.push((
                ns.into(),
                Priority::Normal,
                std::fs::read(root.join(file)).unwrap(),
            ));
        }
    } else {
        job(example_job(root, "nightly-etl-high.json"), false);
        for _ in 0..8 {
            job(example_job(root, "spark-pi.json"), true);
        }
    }
    for (ns, prio, body) in messages {
        publisher
            .publish(&Outgoing::raw(ns, prio, body))
            .await
            .unwrap();
    }
}

/// The whole live stack: kube-sim with the demo cluster, `orchestrator run` on a fresh
/// database and a unique RabbitMQ prefix with the schedules created, Prometheus scraping it
/// every second with the alert rules loaded, and a publisher on the daemon's topology.
pub struct Stack {
    /// The repository root.
    pub root: std::path::PathBuf,
    /// Logs and configs.
    pub dir: tempfile::TempDir,
    /// The daemon's database.
    pub db: test_support::pg::TestDb,
    /// The daemon.
    pub daemon: test_support::procs::Proc,
    /// Its listen address (`host:port`).
    pub daemon_addr: String,
    /// Prometheus' base URL.
    pub prometheus: String,
    /// Publishes jobs to the daemon's queues.
    pub publisher: Publisher,
    topology: queues::Topology,
    connection: lapin::Connection,
    _sim: test_support::procs::Proc,
    _prometheus: test_support::procs::Proc,
}

impl Stack {
    /// Builds the binaries and starts everything; `tag` prefixes the unique names.
    pub async fn start(tag: &str) -> Self {
        use crate::{common, processes};
        let bins = tokio::task::spawn_blocking(test_support::procs::build_binaries)
            .await
            .unwrap();
        let root = common::crate_dir().join("..");
        let dir = tempfile::tempdir().unwrap();
        let db = test_support::pg::TestDb::new(&queues::store::MIGRATOR).await;
        let prefix = test_support::unique(tag);
        let names = queues::Names::new(prefix.clone()).unwrap();
        let store = JobStore::new(
            db.pool.clone(),
            names,
            std::sync::Arc::new(queues::Metrics::default()),
        );
        create_schedules(&store, &db.pool, &root).await;
        let (sim, kubeconfig) = test_support::procs::kube_sim(
            &bins.kube_sim,
            &root.join("examples/cluster.toml"),
            dir.path(),
        )
        .await;
        let config = daemon_config(&root, &db.name, &prefix, &kubeconfig);
        let config_path = dir.path().join("orchestrator.toml");
        std::fs::write(&config_path, &config).unwrap();
        let (daemon, daemon_addr) =
            test_support::procs::orchestrator(&bins.orchestrator, &config_path, dir.path()).await;
        let prom_config = json!({
            "global": { "scrape_interval": "1s", "evaluation_interval": "1s" },
            "rule_files": [common::crate_dir().join("prometheus/alerts.yml")],
            "scrape_configs": [{
                "job_name": dashboards::files::SCRAPE_JOB,
                "static_configs": [{ "targets": [daemon_addr] }],
            }],
        });
        let prom_path = dir.path().join("prometheus.yml");
        std::fs::write(&prom_path, serde_yaml_ng::to_string(&prom_config).unwrap()).unwrap();
        let (prom, prometheus) = processes::prometheus(&prom_path, dir.path()).await;

        let catalog = orchestrator::config::Config::from_toml_str(&config, tag)
            .unwrap()
            .catalog;
        let topology =
            queues::Topology::new(queues::TopologyConfig::new(prefix), &catalog).unwrap();
        let connection = queues::amqp::connect(test_support::AMQP_URL, tag)
            .await
            .unwrap();
        let publisher = Publisher::new(&connection, &topology).await.unwrap();
        Self {
            root,
            dir,
            db,
            daemon,
            daemon_addr,
            prometheus,
            publisher,
            topology,
            connection,
            _sim: sim,
            _prometheus: prom,
        }
    }

    /// Stops the daemon, deletes the topology and the database.
    pub async fn stop(mut self) {
        self.daemon
            .terminate(std::time::Duration::from_secs(30))
            .await;
        let channel = self.connection.create_channel().await.unwrap();
        let _ = self.topology.delete(&channel).await;
        let _ = self.connection.close(200, "done".into()).await;
        self.db.drop_database().await;
    }
}
