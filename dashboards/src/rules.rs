//! The alert rules file (`prometheus/alerts.yml`) in Prometheus' format.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Error, Result};

/// A rules file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// Rule groups.
    pub groups: Vec<RuleGroup>,
}

/// A group of rules evaluated together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    /// Group name.
    pub name: String,
    /// Evaluation interval override.
    #[serde(default)]
    pub interval: Option<String>,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// An alerting rule (recording rules are not used here).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Alert name.
    pub alert: String,
    /// PromQL.
    pub expr: String,
    /// How long the condition must hold.
    #[serde(rename = "for", default)]
    pub for_: Option<String>,
    /// Labels (severity).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations (summary, description).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl RuleFile {
    /// Parses a rules file.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        serde_yaml_ng::from_str(text).map_err(|source| Error::Yaml {
            file: file.to_owned(),
            source,
        })
    }

    /// The shipped alert rules ([`crate::files::ALERTS`]).
    pub fn shipped() -> Result<Self> {
        Self::parse("alerts.yml", crate::files::ALERTS)
    }

    /// Every rule of every group.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| g.rules.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_alerting_rules_and_refuses_typos() {
        let f = RuleFile::parse(
            "a.yml",
            "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 1m\n        labels: {severity: critical}\n",
        )
        .unwrap();
        let r: Vec<_> = f.rules().collect();
        assert_eq!(
            (r[0].alert.as_str(), r[0].for_.as_deref()),
            ("A", Some("1m"))
        );
        assert!(RuleFile::parse("a.yml", "groups:\n  - name: g\n    rulez: []\n").is_err());
    }
}
