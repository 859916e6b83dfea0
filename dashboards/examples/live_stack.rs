//! Brings up what `tests/prometheus.rs` checks, and leaves it running for people to look at:
//! kube-sim with the demo cluster, `orchestrator run` on a fresh database, Prometheus
//! (1 s scrapes, the alert rules loaded) and the test's workload. Prints the addresses, then
//! waits for Ctrl-C or the given number of seconds, and tears everything down.
//!
//! ```text
//! cargo run -p dashboards --example live_stack -- 600
//! ```
//!
//! Point a Grafana at the printed Prometheus and PostgreSQL to see the dashboards filled, or
//! open Prometheus' graph page (the README's picture was taken that way).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a developer tool: failing loudly is the point"
)]

#[path = "../tests/support/common.rs"]
mod common;
#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/processes.rs"]
mod processes;
#[path = "../tests/support/workload.rs"]
mod workload;

use std::sync::Arc;
use std::time::Duration;

use queues::{JobStore, Names, Publisher, Topology, TopologyConfig};
use serde_json::json;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map_or(600, |s| s.parse().expect("usage: live_stack [SECONDS]"));
    let bins = tokio::task::spawn_blocking(processes::build_binaries)
        .await
        .unwrap();
    let root = common::crate_dir().join("..");
    let dir = tempfile::tempdir().unwrap();
    let db = e2e::pg::TestDb::new().await;
    let prefix = e2e::unique("dashdemo");
    let names = Names::new(prefix.clone()).unwrap();
    let store = JobStore::new(db.pool.clone(), names, Arc::new(queues::Metrics::default()));
    workload::create_schedules(&store, &db.pool, &root).await;
    let (_sim, kubeconfig) = processes::kube_sim(
        &bins.kube_sim,
        &root.join("examples/cluster.toml"),
        dir.path(),
    )
    .await;
    let config = workload::daemon_config(&root, &db.name, &prefix, &kubeconfig);
    let config_path = dir.path().join("orchestrator.toml");
    std::fs::write(&config_path, &config).unwrap();
    let (mut daemon, addr) =
        processes::orchestrator(&bins.orchestrator, &config_path, dir.path()).await;
    let prom_config = json!({
        "global": { "scrape_interval": "1s", "evaluation_interval": "1s" },
        "rule_files": [common::crate_dir().join("prometheus/alerts.yml")],
        "scrape_configs": [{
            "job_name": dashboards::files::SCRAPE_JOB,
            "static_configs": [{ "targets": [addr] }],
        }],
    });
    let prom_path = dir.path().join("prometheus.yml");
    std::fs::write(&prom_path, serde_yaml_ng::to_string(&prom_config).unwrap()).unwrap();
    let (_prom, base) = processes::prometheus(&prom_path, dir.path()).await;

    let catalog = orchestrator::config::Config::from_toml_str(&config, "demo")
        .unwrap()
        .catalog;
    let topology = Topology::new(TopologyConfig::new(prefix), &catalog).unwrap();
    let connection = queues::amqp::connect(e2e::world::AMQP_URL, "dashboards-demo")
        .await
        .unwrap();
    let publisher = Publisher::new(&connection, &topology).await.unwrap();
    workload::publish_round(&publisher, &root, 1).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    workload::publish_round(&publisher, &root, 2).await;

    println!("daemon metrics: http://{addr}/metrics");
    println!("prometheus:     {base}");
    println!("database:       {}", e2e::pg::url(&db.name));
    println!("logs:           {}", dir.path().display());
    println!("running for {seconds} s (Ctrl-C stops)");
    let _ = tokio::time::timeout(Duration::from_secs(seconds), tokio::signal::ctrl_c()).await;

    daemon.terminate(Duration::from_secs(30)).await;
    let channel = connection.create_channel().await.unwrap();
    let _ = topology.delete(&channel).await;
    db.drop_database().await;
}
