//! Structural checks of the shipped dashboards, alert rules and provisioning examples,
//! without a running Prometheus: importable JSON, datasource variables, queries that parse
//! (through `promtool`), metric names that the code registers, alert rules that pass
//! `promtool check rules` and their unit tests, SQL that runs on a freshly migrated store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

#[path = "support/common.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};

use dashboards::exposition;
use dashboards::grafana::{self, Dashboard, DatasourceRef};
use dashboards::query::{self, metric_names, split_comparison, substitute};
use dashboards::rules::RuleFile;
use serde_json::Value;

/// Grafana's own variables and macros the queries may use.
const BUILTINS: [&str; 4] = ["__rate_interval", "__interval", "__range", "__timeFilter"];

fn dashboards() -> Vec<Dashboard> {
    Dashboard::all().unwrap()
}

/// The name of the variable a `${name}` datasource uid refers to.
fn uid_variable(ds: &DatasourceRef) -> Option<&str> {
    ds.uid.strip_prefix("${")?.strip_suffix('}')
}

#[test]
fn dashboards_are_current_importable_json_with_unique_ids() {
    let all = dashboards();
    assert_eq!(all.len(), 4);
    let mut uids = BTreeSet::new();
    for d in &all {
        assert!(
            d.schema_version >= 39,
            "{}: schemaVersion {}",
            d.file,
            d.schema_version
        );
        assert!(!d.title.is_empty(), "{}: no title", d.file);
        assert!(
            !d.uid.is_empty() && uids.insert(d.uid.clone()),
            "{}: missing or duplicate dashboard uid",
            d.file
        );
        let mut ids = BTreeSet::new();
        for p in &d.panels {
            let id =
                p.id.unwrap_or_else(|| panic!("{}: panel {:?} has no id", d.file, p.title));
            assert!(ids.insert(id), "{}: panel id {id} used twice", d.file);
            assert!(!p.title.is_empty(), "{}: panel {id} has no title", d.file);
            let g = p
                .grid_pos
                .unwrap_or_else(|| panic!("{}: panel {id} has no gridPos", d.file));
            assert!(
                g.w > 0 && g.h > 0 && g.x + g.w <= 24,
                "{}: panel {id} off the grid",
                d.file
            );
        }
        // No two panels overlap (Grafana would move them, silently changing the layout).
        let boxes: Vec<_> = d.panels.iter().filter_map(|p| p.grid_pos).collect();
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                let apart =
                    a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y;
                assert!(apart, "{}: panels at {a:?} and {b:?} overlap", d.file);
            }
        }
    }
}

#[test]
fn datasources_are_variables_never_hard_coded_uids() {
    for d in dashboards() {
        let datasource_vars: BTreeMap<&str, &str> = d
            .variables
            .iter()
            .filter(|v| v.kind == "datasource")
            .map(|v| (v.name.as_str(), v.query.as_deref().unwrap_or_default()))
            .collect();
        assert!(
            !datasource_vars.is_empty(),
            "{}: no datasource variable",
            d.file
        );
        for (name, plugin) in &datasource_vars {
            assert!(
                [grafana::PROMETHEUS, grafana::POSTGRES].contains(plugin),
                "{}: variable {name} picks plugin {plugin:?}",
                d.file
            );
        }
        let check = |what: &str, ds: &DatasourceRef| {
            let var = uid_variable(ds)
                .unwrap_or_else(|| panic!("{}: {what} has a hard-coded uid {:?}", d.file, ds.uid));
            assert_eq!(
                datasource_vars.get(var).copied(),
                Some(ds.kind.as_str()),
                "{}: {what} uses ${{{var}}} as a {} datasource",
                d.file,
                ds.kind
            );
        };
        for p in d.query_panels() {
            let ds = p
                .datasource
                .as_ref()
                .unwrap_or_else(|| panic!("{}: panel {:?} has no datasource", d.file, p.title));
            check(&format!("panel {:?}", p.title), ds);
            assert!(
                !p.targets.is_empty(),
                "{}: panel {:?} has no targets",
                d.file,
                p.title
            );
            let mut refs = BTreeSet::new();
            for t in &p.targets {
                assert!(
                    !t.ref_id.is_empty() && refs.insert(t.ref_id.clone()),
                    "{}: panel {:?}: missing or duplicate refId",
                    d.file,
                    p.title
                );
                assert!(
                    t.query().is_some(),
                    "{}: panel {:?} target {} has no expression",
                    d.file,
                    p.title,
                    t.ref_id
                );
                let tds = t.datasource.as_ref().unwrap_or(ds);
                assert_eq!(tds, ds, "{}: panel {:?} mixes datasources", d.file, p.title);
                let right_field = match ds.kind.as_str() {
                    grafana::PROMETHEUS => t.expr.is_some(),
                    _ => t.raw_sql.is_some(),
                };
                assert!(
                    right_field,
                    "{}: panel {:?}: query field does not match its datasource",
                    d.file, p.title
                );
            }
        }
        for v in d.variables.iter().filter(|v| v.kind == "query") {
            check(
                &format!("variable {}", v.name),
                v.datasource.as_ref().unwrap(),
            );
            assert!(
                v.query.is_some(),
                "{}: variable {} has no query",
                d.file,
                v.name
            );
        }
        // Anything else that looks like a datasource reference anywhere in the document.
        let mut refs = Vec::new();
        collect_datasource_uids(&d.json, &mut refs);
        for uid in refs {
            assert!(
                uid.starts_with("${") || uid == "-- Grafana --",
                "{}: hard-coded datasource uid {uid:?}",
                d.file
            );
        }
    }
}

fn collect_datasource_uids(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "datasource" {
                    if let Some(uid) = child.get("uid").and_then(Value::as_str) {
                        out.push(uid.to_owned());
                    } else if let Some(s) = child.as_str() {
                        out.push(s.to_owned());
                    }
                }
                collect_datasource_uids(child, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_datasource_uids(c, out)),
        _ => {}
    }
}

#[test]
fn every_variable_a_query_uses_is_defined() {
    for d in dashboards() {
        let defined: BTreeSet<&str> = d
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .chain(BUILTINS)
            .collect();
        let queries = d
            .query_panels()
            .flat_map(|p| p.targets.iter().filter_map(|t| t.query()))
            .chain(
                d.variables
                    .iter()
                    .filter(|v| v.kind == "query")
                    .filter_map(|v| v.query.as_deref()),
            );
        for q in queries {
            for name in query::variables(q) {
                assert!(
                    defined.contains(name.as_str()),
                    "{}: ${name} is not defined (in {q:?})",
                    d.file
                );
            }
            substitute(q, &common::grafana_vars("1m", "1h"))
                .unwrap_or_else(|e| panic!("{}: {e}", d.file));
        }
    }
}

/// Every PromQL expression the dashboards and alerts use, with where it comes from.
fn promql_in_dashboards() -> Vec<(String, String)> {
    let vars = common::grafana_vars("1m", "1h");
    let mut out = Vec::new();
    for d in dashboards() {
        for p in d.query_panels() {
            if p.datasource
                .as_ref()
                .is_some_and(|ds| ds.kind == grafana::PROMETHEUS)
            {
                for t in &p.targets {
                    let q = substitute(t.query().unwrap(), &vars).unwrap();
                    out.push((format!("{} / {} / {}", d.file, p.title, t.ref_id), q));
                }
            }
        }
        for v in &d.variables {
            if v.kind == "query"
                && v.datasource
                    .as_ref()
                    .is_some_and(|ds| ds.kind == grafana::PROMETHEUS)
            {
                // label_values(metric, label): the metric part is PromQL.
                let q = v.query.as_deref().unwrap();
                let inner = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.rsplit_once(','))
                    .map(|(m, _)| m.trim().to_owned())
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: variable {} is not label_values(metric, label)",
                            d.file, v.name
                        )
                    });
                out.push((format!("{} / variable {}", d.file, v.name), inner));
            }
        }
    }
    out
}

#[test]
fn every_metric_name_used_is_one_the_code_registers() {
    let exposed = exposition::sample_names(&common::registered_exposition());
    let mut used = BTreeMap::new();
    for (place, q) in promql_in_dashboards() {
        for name in metric_names(&q) {
            used.entry(name).or_insert(place.clone());
        }
    }
    for r in RuleFile::shipped().unwrap().rules() {
        for name in metric_names(&r.expr) {
            used.entry(name).or_insert(format!("alert {}", r.alert));
        }
    }
    assert!(
        used.len() > 30,
        "suspiciously few metric names found: {used:?}"
    );
    for name in common::ONLY_LIVE {
        assert!(
            !exposed.contains(name),
            "{name} is exposed offline now: drop it from ONLY_LIVE"
        );
    }
    let unknown: Vec<_> = used
        .iter()
        .filter(|(name, _)| {
            !exposed.contains(*name)
                && !common::ONLY_LIVE.contains(&name.as_str())
                && name.as_str() != "up"
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "metric names not registered by the code: {unknown:#?}\nregistered: {exposed:#?}"
    );
}

#[test]
fn every_registered_metric_is_on_a_dashboard() {
    let mut families = exposition::families(&common::registered_exposition());
    for name in common::ONLY_LIVE {
        let family = name.strip_suffix("_total").unwrap_or(name);
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        families.insert(family.to_owned(), kind.to_owned());
    }
    let used: BTreeSet<String> = promql_in_dashboards()
        .iter()
        .flat_map(|(_, q)| metric_names(q))
        .collect();
    let missing: Vec<_> = families
        .iter()
        .filter(|(family, kind)| {
            !exposition::sample_names_of(family, kind)
                .iter()
                .any(|n| used.contains(n))
        })
        .map(|(f, _)| f)
        .collect();
    assert!(
        missing.is_empty(),
        "registered but on no dashboard: {missing:?}"
    );
}

#[test]
fn every_panel_query_parses_as_promql() {
    // promtool parses recording rules offline: one rule per panel query.
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("groups:\n  - name: dashboard-queries\n    rules:\n");
    let queries = promql_in_dashboards();
    for (i, (place, q)) in queries.iter().enumerate() {
        yaml.push_str(&format!(
            "      # {place}\n      - record: dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(q).unwrap()
        ));
    }
    std::fs::write(dir.path().join("queries.yml"), &yaml).unwrap();
    let out = common::promtool(dir.path(), &["check", "rules", "queries.yml"]);
    assert!(
        out.contains(&format!("{} rules found", queries.len())),
        "{out}"
    );
}

#[test]
fn alert_rules_pass_promtool_and_their_unit_tests() {
    let dir = common::crate_dir().join("prometheus");
    let out = common::promtool(&dir, &["check", "rules", "alerts.yml"]);
    let n = RuleFile::shipped().unwrap().rules().count();
    assert!(out.contains(&format!("{n} rules found")), "{out}");
    common::promtool(&dir, &["test", "rules", "alerts.test.yml"]);
    common::promtool(&dir, &["check", "config", "prometheus.yml"]);
}

#[test]
fn alert_rules_follow_the_conventions() {
    let file = RuleFile::shipped().unwrap();
    let mut names = BTreeSet::new();
    for r in file.rules() {
        assert!(names.insert(r.alert.clone()), "alert {} twice", r.alert);
        assert!(r.alert.starts_with("Orchestrator"), "{}: name", r.alert);
        assert!(r.for_.is_some(), "{}: no `for`", r.alert);
        let severity = r.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning")),
            "{}: severity {severity:?}",
            r.alert
        );
        for a in ["summary", "description"] {
            assert!(
                r.annotations.get(a).is_some_and(|s| !s.is_empty()),
                "{}: no {a}",
                r.alert
            );
        }
        assert!(
            split_comparison(&r.expr).is_some(),
            "{}: expr is not `<signal> <op> <number>`: {}",
            r.alert,
            r.expr
        );
    }
    // What issue 8 asks for, by name.
    for wanted in [
        "OrchestratorQueueWaitHighPriority",
        "OrchestratorDeadLettersGrowing",
        "OrchestratorStuckJobs",
        "OrchestratorNoLeader",
        "OrchestratorCronLag",
        "OrchestratorCapacityChecksFailing",
        "OrchestratorIntakeStalled",
    ] {
        assert!(names.contains(wanted), "missing alert {wanted}");
    }
    // Every alert has a promtool unit test.
    for name in &names {
        assert!(
            dashboards::files::ALERTS_TEST.contains(&format!("alertname: {name}\n")),
            "alert {name} has no case in alerts.test.yml"
        );
    }
}

#[test]
fn provisioning_examples_match_the_dashboards() {
    let ds: Value = serde_yaml_ng::from_str(dashboards::files::GRAFANA_DATASOURCES).unwrap();
    let types: BTreeSet<&str> = ds["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    for d in dashboards() {
        for v in d.variables.iter().filter(|v| v.kind == "datasource") {
            let plugin = v.query.as_deref().unwrap();
            assert!(
                types.contains(plugin),
                "{}: no provisioned {plugin} datasource",
                d.file
            );
        }
    }
    let providers: Value = serde_yaml_ng::from_str(dashboards::files::GRAFANA_DASHBOARDS).unwrap();
    let p = &providers["providers"][0];
    assert_eq!(p["type"], "file");
    assert!(p["options"]["path"].as_str().is_some_and(|s| !s.is_empty()));
    let prom: Value = serde_yaml_ng::from_str(dashboards::files::PROMETHEUS_CONFIG).unwrap();
    assert_eq!(
        prom["scrape_configs"][0]["job_name"],
        dashboards::files::SCRAPE_JOB
    );
    assert!(
        dashboards::files::ALERTS
            .contains(&format!("up{{job=\"{}\"}}", dashboards::files::SCRAPE_JOB))
    );
}

#[tokio::test]
async fn history_queries_run_on_a_freshly_migrated_store() {
    let db = test_support::pg::TestDb::new(&queues::store::MIGRATOR).await;
    let vars = common::grafana_vars("1m", "1h");
    let mut ran = 0;
    for d in dashboards() {
        let sql = d
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
            })
            .chain(
                d.variables
                    .iter()
                    .filter(|v| {
                        v.kind == "query"
                            && v.datasource
                                .as_ref()
                                .is_some_and(|ds| ds.kind == grafana::POSTGRES)
                    })
                    .map(|v| (format!("variable {}", v.name), v.query.clone().unwrap())),
            );
        for (place, q) in sql {
            let q = substitute(&q, &vars).unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(q.clone()))
                .execute(&db.pool)
                .await
                .unwrap_or_else(|e| panic!("{} / {place}: {e}\n{q}", d.file));
            ran += 1;
        }
    }
    db.drop_database().await;
    assert!(ran >= 10, "only {ran} SQL queries found");
}
