//! Shared by the dashboards' test files: the metrics the code registers, promtool, and the

#![allow(
    dead_code,
    reason = "shared by several test files, each of which uses part of it"
)]
//! values tests give Grafana's variables.

use std::path::{Path, PathBuf};
use std::process::Command;

use dashboards::query::Vars;
use prometheus_client::registry::Registry;

/// The crate directory (where `grafana/`, `prometheus/`, `provisioning/` live).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Families recorded only by crate-private methods of `orchestrator::metrics::CronMetrics`,
/// so no test outside that crate can give them a series offline (prometheus-client leaves a
/// family without series out of the exposition). `tests/prometheus.rs` checks them in the
/// real daemon's `/metrics`, where the workload's schedules produce them.
pub const ONLY_LIVE: [&str; 3] = [
    "orchestrator_cron_fires_total",
    "orchestrator_cron_missed_total",
    "orchestrator_cron_schedules",
];

/// The exposition of every metric the daemon registers, as `orchestrator run` builds its
/// registry (queues, capacity, submitter, cron and daemon metrics), with one series in each
/// labelled family this crate can reach, since families without series are not exposed.
pub fn registered_exposition() -> String {
    use queues::metrics as q;
    use submitter::metrics as s;
    let mut registry = Registry::default();
    let queue = queues::Metrics::default();
    queue.register(&mut registry);
    let (ns, prio) = ("team-a".to_owned(), "high".to_owned());
    let ql = q::QueueLabels {
        namespace: ns.clone(),
        priority: prio.clone(),
    };
    queue
        .intake_messages
        .get_or_create(&q::IntakeLabels {
            source: "amqp".into(),
            namespace: ns.clone(),
            priority: prio.clone(),
            outcome: "accepted".into(),
        })
        .inc();
    queue
        .dead_letters
        .get_or_create(&q::DeadLabels {
            namespace: ns.clone(),
            reason: "invalid".into(),
        })
        .inc();
    queue.queue_depth.get_or_create(&ql).set(1);
    queue.queue_oldest_wait.get_or_create(&ql).set(1);
    queue.intake_window_full.get_or_create(&ql).set(0);
    queue
        .queue_wait
        .get_or_create(&q::WaitLabels {
            namespace: ns.clone(),
            priority: prio.clone(),
            stage: "store".into(),
        })
        .observe(1.0);
    queue
        .outbox_published
        .get_or_create(&q::OutboxLabels {
            kind: "event".into(),
            outcome: "sent".into(),
        })
        .inc();
    queue
        .retention_deleted
        .get_or_create(&q::RetentionLabels {
            what: "jobs".into(),
        })
        .inc();
    queue
        .errors
        .get_or_create(&q::ErrorLabels {
            component: "intake".into(),
            kind: "db".into(),
        })
        .inc();

    let cap = capacity::Metrics::new();
    cap.register(&mut registry);
    let fits = capacity::Verdict::Fits(capacity::Placement {
        nodes: vec![],
        scale_up: vec![],
    });
    cap.verdict("snapshot", &fits);
    drop(cap.time_check("snapshot"));
    cap.error("snapshot", &capacity::Error::Kube("unreachable".into()));
    let r = capacity::Resources {
        cpu_millis: 1000,
        memory_bytes: 1,
        pods: 1,
    };
    cap.cluster("general", &r, &r);
    cap.ledger(1, &r);
    cap.placeholders("held", 1);
    cap.placeholders_created(1);
    cap.placeholders_deleted("sweep", 1);
    cap.watch_event("pods", "apply");
    cap.watch_error("pods");
    cap.ready(true);

    let sub = submitter::metrics::Metrics::default();
    sub.register(&mut registry);
    let outcome = |o: &str| s::OutcomeLabels {
        namespace: ns.clone(),
        priority: prio.clone(),
        outcome: o.into(),
    };
    let kind = s::KindLabels {
        namespace: ns.clone(),
        kind: "application".into(),
    };
    sub.admissions.get_or_create(&outcome("created")).inc();
    sub.set_waiting([(ns.as_str(), jobs::Priority::High, "insufficient")]);
    sub.finished.get_or_create(&outcome("succeeded")).inc();
    sub.failures.get_or_create(&kind).inc();
    sub.retries.get_or_create(&kind).inc();
    sub.stuck
        .get_or_create(&s::NamespaceLabels {
            namespace: ns.clone(),
        })
        .inc();
    sub.run_seconds
        .get_or_create(&outcome("succeeded"))
        .observe(1.0);
    sub.preemptions
        .get_or_create(&s::WaitingLabels {
            namespace: ns.clone(),
            priority: prio.clone(),
            reason: "priority".into(),
        })
        .inc();
    sub.error("admission", "kube");

    orchestrator::metrics::CronMetrics::default().register(&mut registry);
    let daemon = orchestrator::metrics::DaemonMetrics::default();
    daemon.register(&mut registry);
    daemon.set_leader("replica-0", true);
    let http = orchestrator::http::HttpMetrics::default();
    http.register(&mut registry);
    http.observe(&hyper::Method::GET, "/v1/jobs", 200, 0.01);

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    text
}

/// Runs `promtool` with `args` in `dir`; panics with its output unless it succeeds.
pub fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run promtool ({e}); scripts/services.sh installs it (Debian package prometheus)")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Values for Grafana's variables: every template variable at "All" (`.*`, the dashboards'
/// `allValue`), the built-in intervals, and a time range for SQL of the last two days.
pub fn grafana_vars(rate_interval: &str, range: &str) -> Vars {
    Vars::new()
        .set("namespace", ".*")
        .set("priority", ".*")
        .set("pool", ".*")
        .set("datasource", "prometheus")
        .set("pg", "postgres")
        .set("__rate_interval", rate_interval)
        .set("__interval", "1s")
        .set("__range", range)
        .set("__timeFrom", "now() - interval '2 days'")
        .set("__timeTo", "now() + interval '1 day'")
}
