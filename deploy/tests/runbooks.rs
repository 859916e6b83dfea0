//! Every alert of dashboards/prometheus/alerts.yml links its runbook: a `runbook_url` at the
//! repository's docs/operations.md with an anchor that exists there, one section per alert; and
//! the `orchestrator` commands the runbooks tell an operator to type are ones the CLI accepts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests: a panic is how a test fails, loudly"
)]

use std::collections::BTreeSet;

use dashboards::rules::RuleFile;
use deploy::markdown::{anchors, slug};
use deploy::render::repo_root;

fn guide() -> String {
    std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap()
}

/// `{repository}/blob/main/docs/operations.md#`, from the workspace's `repository`.
fn runbook_base() -> String {
    let ws: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap()).unwrap();
    let repo = ws["workspace"]["package"]["repository"].as_str().unwrap();
    format!(
        "{}/blob/main/docs/operations.md#",
        repo.trim_end_matches('/')
    )
}

#[test]
fn every_alert_links_its_own_runbook_section() {
    let file = RuleFile::shipped().unwrap();
    let headings = anchors(&guide());
    let base = runbook_base();
    let mut linked = BTreeSet::new();
    for rule in file.rules() {
        let url = rule
            .annotations
            .get("runbook_url")
            .unwrap_or_else(|| panic!("{}: no runbook_url", rule.alert));
        let anchor = url
            .strip_prefix(&base)
            .unwrap_or_else(|| panic!("{}: {url} is not under {base}", rule.alert));
        assert!(
            headings.contains(anchor),
            "{}: docs/operations.md has no #{anchor}",
            rule.alert
        );
        assert_eq!(
            anchor,
            slug(&rule.alert),
            "{}: the section is named after the alert",
            rule.alert
        );
        assert!(
            linked.insert(anchor.to_owned()),
            "{}: shares its runbook",
            rule.alert
        );
    }
    assert!(linked.len() >= 14);
    // And no runbook section for an alert that does not exist.
    let text = guide();
    let runbooks = text.split("\n## Runbooks\n").nth(1).unwrap();
    let sections: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(slug)
        .collect();
    assert_eq!(sections, linked);
}

#[test]
fn the_runbook_check_catches_a_dangling_anchor() {
    let headings = anchors("## Runbooks\n### OrchestratorDown\n");
    assert!(headings.contains(&slug("OrchestratorDown")));
    assert!(!headings.contains(&slug("OrchestratorGone")));
}

/// Inline code spans of a Markdown text (between single backticks, on one line).
fn code_spans(text: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('`').collect();
        spans.extend(parts.iter().skip(1).step_by(2).copied());
    }
    spans
}

#[test]
fn the_cli_commands_in_the_guide_parse() {
    let text = guide();
    let mut checked = 0;
    for span in code_spans(&text) {
        let Some(rest) = span.strip_prefix("orchestrator ") else {
            continue;
        };
        if span.contains('…') || span.contains("--help") {
            continue;
        }
        let is_dlq = rest.starts_with("dlq");
        let args: Vec<String> = span
            .split_whitespace()
            .map(|w| match w {
                "NS" => "team-a".to_owned(),
                "REASON" => "expired".to_owned(),
                "NAME" => "nightly".to_owned(),
                "FILE" => "job.json".to_owned(),
                "ID" if is_dlq => "42".to_owned(),
                "ID" => "019ab0c4-7c2e-7b7e-9a41-2f6d3c1e8b01".to_owned(),
                w => w.to_owned(),
            })
            .collect();
        <orchestrator::cli::Cli as clap::Parser>::try_parse_from(&args)
            .unwrap_or_else(|e| panic!("`{span}` does not parse: {e}"));
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} commands found");
}
