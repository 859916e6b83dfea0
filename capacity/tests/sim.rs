//! Every strategy against the Kubernetes simulator (`kube-sim`), through the real kube client
//! over HTTP: the snapshot cache staying exact through pod lifecycles and watch failures,
//! verdicts and the ledger on a live cluster, dry-run admission, placeholders (binding,
//! release, preemption, crash cleanup).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "sim/dry_run.rs"]
mod dry_run;
#[path = "sim/placeholders.rs"]
mod placeholders;
#[path = "sim/snapshot.rs"]
mod snapshot;
#[path = "sim/support.rs"]
mod support;
#[path = "sim/watch.rs"]
mod watch;
