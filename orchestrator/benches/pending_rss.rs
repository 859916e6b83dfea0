//! Daemon memory with a deep backlog: `cargo bench -p orchestrator --bench pending_rss`.
//!
//! Stores `PENDING_JOBS` (default 100,000) pending jobs over 10 namespaces in a fresh
//! database, starts the real `orchestrator run` binary against a small kube-sim cluster
//! (so almost everything keeps waiting), lets it run admission rounds over the backlog, and
//! prints its resident memory (VmRSS, and the peak VmHWM) from `/proc`, next to the same
//! daemon with an empty store. Under `cargo test` it runs a tiny version as a smoke test.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark binary: a panic is the failure report"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs::{Catalog, CatalogConfig};
use kube_sim::Simulator;
use queues::store::{IntakeItem, JobSource, NewJob};
use queues::{JobStore, Names};
use serde_json::json;
use test_support::pg::TestDb;

mod daemon;
use daemon::Daemon;

const NAMESPACES: usize = 10;

fn catalog_toml() -> String {
    let mut s = String::new();
    for n in 0..NAMESPACES {
        s.push_str(&format!("[namespaces.team-{n}]\n"));
    }
    s.push_str(
        r#"[node_types.small]
cpu = "1"
memory = "2Gi"
node_selector = { pool = "general" }
[defaults]
image = "apache/spark:3.5.3"
spark_version = "3.5.3"
driver_node_type = "small"
executor_node_type = "small"
"#,
    );
    s
}

/// Resident and peak memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn measure(label: &str, pending: usize, rounds: f64) {
    let mut cluster = e2e::world::default_cluster(2);
    for n in 0..NAMESPACES {
        cluster = cluster.with_namespace(&format!("team-{n}"));
    }
    let sim = Simulator::start(cluster, "127.0.0.1:0".parse().unwrap()).unwrap();
    let db = TestDb::new(&queues::store::MIGRATOR).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = test_support::unique("rss");
    let catalog =
        Arc::new(Catalog::new(toml::from_str::<CatalogConfig>(&catalog_toml()).unwrap()).unwrap());
    let store = JobStore::new(
        db.pool.clone(),
        Names::new(prefix.clone()).unwrap(),
        Arc::new(queues::Metrics::default()),
    );
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..pending {
        let body = json!({
            "apiVersion": "v1", "namespace": format!("team-{}", i % NAMESPACES),
            "name": format!("job-{i}"), "priority": if i % 5 == 0 { "high" } else { "normal" },
            "mainClass": "org.apache.spark.examples.SparkPi",
            "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
            "executor": {"instances": 1 + i % 4},
            "annotations": {"kube-sim.dev/runtime": "1h"}
        });
        let job = jobs::parse_job(&serde_json::to_vec(&body).unwrap(), &catalog).unwrap();
        batch.push(IntakeItem::Job(Box::new(NewJob {
            job,
            source: JobSource::Amqp,
            published_at: None,
            reply_to: None,
        })));
        if batch.len() == 1000 {
            store.take_in(&batch).await.unwrap();
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.take_in(&batch).await.unwrap();
    }
    if pending > 0 {
        println!(
            "stored {pending} pending jobs in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    let config = format!(
        "{catalog}\n[amqp]\nprefix = \"{prefix}\"\n[database]\nurl = \"{url}\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[auth]\ndisabled = true\n[leader]\nenabled = false\n\
         [submitter]\ninterval = \"200ms\"\n",
        catalog = catalog_toml(),
        url = test_support::pg::url(&db.name),
    );
    let run = Daemon::start(dir.path(), &config, &sim.kubeconfig_yaml());
    // Rounds over an empty store are not counted: give the idle daemon a fixed while.
    if pending == 0 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while pending > 0 && run.metric("orchestrator_admission_rounds_total").await < rounds {
        assert!(Instant::now() < deadline, "no admission rounds");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let depth = run.metric("orchestrator_queue_depth").await;
    let round = run.metric("orchestrator_admission_round_seconds_sum").await
        / run
            .metric("orchestrator_admission_round_seconds_count")
            .await
            .max(1.0);
    let (rss, hwm) = memory_mib(run.child.id());
    println!(
        "{label}: {pending} pending ({depth} by the depth gauge), after {rounds} admission rounds: \
         RSS {rss:.0} MiB, peak {hwm:.0} MiB, mean round {:.0} ms",
        round * 1000.0
    );
    drop(run);
    daemon::delete_topology(&prefix, &catalog).await;
    db.drop_database().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let pending = if bench {
        std::env::var("PENDING_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    } else {
        200
    };
    let rounds = if bench { 20.0 } else { 2.0 };
    measure("empty store", 0, rounds).await;
    measure("backlog", pending, rounds).await;
}
