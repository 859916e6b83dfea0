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

use std::time::Duration;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map_or(600, |s| s.parse().expect("usage: live_stack [SECONDS]"));
    let stack = workload::Stack::start("dashdemo").await;
    let (root, publisher) = (&stack.root, &stack.publisher);
    workload::publish_round(publisher, root, 1).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    workload::publish_round(publisher, root, 2).await;

    println!("daemon metrics: http://{}/metrics", stack.daemon_addr);
    println!("prometheus:     {}", stack.prometheus);
    println!("database:       {}", test_support::pg::url(&stack.db.name));
    println!("logs:           {}", stack.dir.path().display());
    println!("running for {seconds} s (Ctrl-C stops)");
    let _ = tokio::time::timeout(Duration::from_secs(seconds), tokio::signal::ctrl_c()).await;

    stack.stop().await;
}
