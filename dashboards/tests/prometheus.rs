//! The dashboards and alerts against a real Prometheus scraping a real daemon.
//!
//! Starts `kube-sim` with the demo cluster (`examples/cluster.toml`), `orchestrator run` on
//! a fresh database and a unique RabbitMQ prefix, and Prometheus (127.0.0.1, a free port, a
//! temporary data directory, 1 s scrapes, the alert rules loaded). Drives the daemon with the
//! demo jobs (`examples/jobs/`), invalid messages, a job that fails and is retried, a burst
//! that must wait for capacity, and two cron schedules (one firing every two seconds with
//! concurrency Forbid, one that missed runs while "the daemon was down"). Then runs every
//! panel's and every alert's PromQL through Prometheus' HTTP API, and every History SQL
//! query on the daemon's database, and asserts each parses and has data — except the
//! expressions over the [`QUIET`] families, which a healthy short run cannot produce; those
//! must still parse. Also checks that every metric name the dashboards and rules use is in
//! the daemon's `/metrics` (or, for the quiet ones, registered by the code), and that
//! Prometheus evaluates every rule without error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

#[path = "support/common.rs"]
mod common;
#[path = "support/http.rs"]
mod http;
#[path = "support/processes.rs"]
mod processes;
#[path = "support/workload.rs"]
mod workload;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashboards::exposition;
use dashboards::grafana::{self, Dashboard};
use dashboards::query::{metric_names, split_comparison, substitute};
use dashboards::rules::RuleFile;
use http::{Http, Prometheus};
use serde_json::Value;

/// Families that have no series in a healthy short run, and why. An expression using one of
/// them must parse but may return nothing; every other expression must return data.
const QUIET: [(&str, &str); 8] = [
    (
        "orchestrator_stuck_jobs_total",
        "no job gets stuck: the capacity gate admits a gang only when all its pods fit",
    ),
    (
        "orchestrator_capacity_errors_total",
        "no capacity check fails against a healthy kube-sim",
    ),
    (
        "orchestrator_capacity_watch_errors_total",
        "the watches of kube-sim never break in the run",
    ),
    (
        "orchestrator_queue_errors_total",
        "RabbitMQ and PostgreSQL stay up: intake, relay and maintenance never fail",
    ),
    (
        "orchestrator_submitter_errors_total",
        "the Kubernetes API stays up: admission and tracking never fail",
    ),
    (
        "orchestrator_preemptions_total",
        "the demo config leaves [submitter.preemption] off: nothing is preempted",
    ),
    (
        "orchestrator_capacity_placeholders",
        "placeholder pods exist only with the `placeholders` strategy; the demo uses `snapshot`",
    ),
    (
        "orchestrator_capacity_placeholders_deleted_total",
        "placeholder pods exist only with the `placeholders` strategy; the demo uses `snapshot`",
    ),
];

/// What Grafana's `$__rate_interval` becomes: four 1 s scrapes and some.
const RATE_INTERVAL: &str = "10s";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn quiet(expr: &str) -> bool {
    metric_names(expr)
        .iter()
        .any(|n| QUIET.iter().any(|(q, _)| q == n))
}

/// One expression to run, with where it comes from.
struct Check {
    place: String,
    expr: String,
    instant: bool,
    /// False for a whole alert expression: it is empty unless the alert fires; its signal
    /// (a separate check) is what must have data.
    needs_data: bool,
    /// For a variable (`label_values(metric, label)`): the label whose values it lists.
    label: Option<String>,
}

/// Every panel target, every variable and every alert, ready to run.
fn checks() -> Vec<Check> {
    let vars = common::grafana_vars(RATE_INTERVAL, "5m");
    let mut out = Vec::new();
    for d in Dashboard::all().unwrap() {
        for p in d.query_panels() {
            if p.datasource
                .as_ref()
                .is_some_and(|ds| ds.kind == grafana::PROMETHEUS)
            {
                for t in &p.targets {
                    out.push(Check {
                        place: format!("{} / {} / {}", d.file, p.title, t.ref_id),
                        expr: substitute(t.query().unwrap(), &vars).unwrap(),
                        instant: t.instant,
                        needs_data: true,
                        label: None,
                    });
                }
            }
        }
        for v in &d.variables {
            let (Some(q), Some(ds)) = (v.query.as_deref(), v.datasource.as_ref()) else {
                continue;
            };
            if v.kind == "query" && ds.kind == grafana::PROMETHEUS {
                let (metric, label) = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.rsplit_once(','))
                    .unwrap();
                out.push(Check {
                    place: format!("{} / variable {}", d.file, v.name),
                    expr: format!("count by ({}) ({})", label.trim(), metric.trim()),
                    instant: true,
                    needs_data: true,
                    label: Some(label.trim().to_owned()),
                });
            }
        }
    }
    for r in RuleFile::shipped().unwrap().rules() {
        out.push(Check {
            place: format!("alert {}", r.alert),
            expr: r.expr.clone(),
            instant: true,
            needs_data: false,
            label: None,
        });
        out.push(Check {
            place: format!("alert {} (signal)", r.alert),
            expr: split_comparison(&r.expr).unwrap().signal,
            instant: false,
            needs_data: true,
            label: None,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_and_alert_query_has_data_from_a_live_daemon() {
    let stack = workload::Stack::start("dash").await;
    let (root, daemon, daemon_addr, db) =
        (&stack.root, &stack.daemon, &stack.daemon_addr, &stack.db);
    let api = Prometheus {
        http: Http::new(),
        base: stack.prometheus.clone(),
    };
    let start = now();
    let publisher = &stack.publisher;

    // Round 2 starts once Prometheus has seen round 1 admitted, so counters and histograms
    // move between scrapes and rates and quantiles have something to show.
    workload::publish_round(publisher, root, 1).await;
    let seen = r#"count(orchestrator_queue_wait_seconds_count{stage="store"}) >= 2"#;
    wait_until(&api, daemon, seen, Duration::from_secs(90)).await;
    workload::publish_round(publisher, root, 2).await;

    let mut pending = checks();
    let total = pending.len();
    let data_checks = pending.iter().filter(|c| c.needs_data).count();
    let mut quiet_ok = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(150);
    loop {
        let end = now();
        let mut still = Vec::new();
        for c in pending {
            let result = if c.instant {
                api.instant(&c.expr, end).await
            } else {
                api.range(&c.expr, start, end).await
            };
            let series = result.unwrap_or_else(|e| {
                panic!("{}: Prometheus refused the query: {e}\n{}", c.place, c.expr)
            });
            let has_data = match &c.label {
                // A variable needs values of its label to offer.
                Some(label) => series
                    .iter()
                    .any(|s| s.labels[label].as_str().is_some_and(|v| !v.is_empty())),
                None => series.iter().any(http::Series::has_finite),
            };
            if !c.needs_data || has_data {
                continue;
            }
            if quiet(&c.expr) {
                quiet_ok.push(c.place.clone());
                continue;
            }
            still.push(c);
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let list: Vec<_> = pending
                .iter()
                .map(|c| format!("{}: {}", c.place, c.expr))
                .collect();
            panic!(
                "{} of {total} expressions never returned data:\n{}\n\ndaemon log:\n{}",
                list.len(),
                list.join("\n"),
                daemon.tail(40)
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    println!(
        "{total} expressions parsed; {} alert conditions not firing (parse only); {} over quiet \
         families without data: {quiet_ok:#?}; the other {} had data after {:.0} s of workload",
        total - data_checks,
        quiet_ok.len(),
        data_checks - quiet_ok.len(),
        now() - start
    );

    check_metric_names(&api.http, daemon_addr).await;
    check_rules_evaluate(&api).await;
    check_history_sql(&db.pool).await;

    stack.stop().await;
}

/// Polls an instant query until it returns something, or panics with the daemon's log.
async fn wait_until(
    api: &Prometheus,
    daemon: &test_support::procs::Proc,
    expr: &str,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if api.instant(expr, now()).await.is_ok_and(|s| !s.is_empty()) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {timeout:?} for {expr}\ndaemon log:\n{}",
            daemon.tail(40)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every metric name the dashboards and rules use is in the daemon's `/metrics`, or belongs
/// to a quiet family (no series yet) that the code registers.
async fn check_metric_names(http: &Http, addr: &str) {
    let (status, text) = http.get(&format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(status, 200);
    let live = exposition::sample_names(&text);
    let registered = exposition::sample_names(&common::registered_exposition());
    let mut used = BTreeSet::new();
    for c in checks() {
        used.extend(metric_names(&c.expr));
    }
    for name in used.iter().filter(|n| n.as_str() != "up") {
        let is_quiet = QUIET.iter().any(|(q, _)| q == name);
        assert!(
            live.contains(name) || (is_quiet && registered.contains(name)),
            "{name} is used by the dashboards or rules but not in the daemon's /metrics"
        );
    }
}

/// Prometheus loaded every rule and evaluates each without error.
async fn check_rules_evaluate(api: &Prometheus) {
    let want = RuleFile::shipped().unwrap().rules().count();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let data = api.api_get("/api/v1/rules?type=alert").await.unwrap();
        let rules: Vec<Value> = data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().clone())
            .collect();
        assert_eq!(rules.len(), want, "Prometheus loaded {} rules", rules.len());
        let evaluated = rules.iter().all(|r| {
            !r["lastEvaluation"]
                .as_str()
                .unwrap_or("0001")
                .starts_with("0001")
        });
        if evaluated {
            for r in &rules {
                assert_eq!(
                    r["health"], "ok",
                    "rule {} fails: {}",
                    r["name"], r["lastError"]
                );
            }
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rules never evaluated"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every History (PostgreSQL) query returns rows from the daemon's database.
async fn check_history_sql(pool: &sqlx::PgPool) {
    let vars = common::grafana_vars(RATE_INTERVAL, "5m");
    for d in Dashboard::all().unwrap() {
        let targets = d
            .query_panels()
            .filter(|p| {
                p.datasource
                    .as_ref()
                    .is_some_and(|ds| ds.kind == grafana::POSTGRES)
            })
            .flat_map(|p| {
                p.targets
                    .iter()
                    .map(move |t| (p.title.clone(), t.query().unwrap().to_owned()))
            });
        let variables = d
            .variables
            .iter()
            .filter(|v| {
                v.kind == "query"
                    && v.datasource
                        .as_ref()
                        .is_some_and(|ds| ds.kind == grafana::POSTGRES)
            })
            .map(|v| (format!("variable {}", v.name), v.query.clone().unwrap()));
        for (place, q) in targets.chain(variables) {
            let sql = substitute(&q, &vars).unwrap();
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{} / {place}: {e}\n{sql}", d.file));
            assert!(!rows.is_empty(), "{} / {place}: no rows\n{sql}", d.file);
        }
    }
}
