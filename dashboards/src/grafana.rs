//! A Grafana dashboard as far as checking it needs: panels (rows' nested panels included),
//! their datasource references and targets, and the template variables. Everything else in
//! the JSON is kept in [`Dashboard::json`] and ignored here.

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result};

/// Grafana's plugin id of the Prometheus datasource.
pub const PROMETHEUS: &str = "prometheus";
/// Grafana's plugin id of the PostgreSQL datasource (Grafana ≥ 10.3; `postgres` before).
pub const POSTGRES: &str = "grafana-postgresql-datasource";

/// A parsed dashboard.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// File name it came from.
    pub file: String,
    /// The whole document.
    pub json: Value,
    /// Dashboard uid (stable links), not a datasource uid.
    pub uid: String,
    /// Title.
    pub title: String,
    /// Grafana's JSON model version.
    pub schema_version: u64,
    /// Every panel, rows and the panels nested in rows included, in document order.
    pub panels: Vec<Panel>,
    /// Template variables.
    pub variables: Vec<Variable>,
}

/// A datasource reference: `{type, uid}` where `uid` should be a variable (`${datasource}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DatasourceRef {
    /// Plugin id.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uid or variable reference.
    #[serde(default)]
    pub uid: String,
}

/// Panel position on the 24-column grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct GridPos {
    /// Height.
    pub h: u32,
    /// Width.
    pub w: u32,
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
}

/// One panel.
#[derive(Debug, Clone, Deserialize)]
pub struct Panel {
    /// Unique within the dashboard.
    pub id: Option<u64>,
    /// `timeseries`, `stat`, `row`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Panel datasource.
    #[serde(default)]
    pub datasource: Option<DatasourceRef>,
    /// Position.
    #[serde(rename = "gridPos")]
    pub grid_pos: Option<GridPos>,
    /// Queries.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// A row's collapsed panels.
    #[serde(default)]
    panels: Vec<Panel>,
}

impl Panel {
    /// Whether this is a row header (rows have no queries).
    pub fn is_row(&self) -> bool {
        self.kind == "row"
    }
}

/// One query of a panel.
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    /// `A`, `B`, …
    #[serde(rename = "refId", default)]
    pub ref_id: String,
    /// Target datasource (usually the panel's).
    #[serde(default)]
    pub datasource: Option<DatasourceRef>,
    /// PromQL (Prometheus targets).
    #[serde(default)]
    pub expr: Option<String>,
    /// SQL (PostgreSQL targets).
    #[serde(rename = "rawSql", default)]
    pub raw_sql: Option<String>,
    /// Evaluated at one instant rather than over the range.
    #[serde(default)]
    pub instant: bool,
}

impl Target {
    /// The query text, whichever language it is in.
    pub fn query(&self) -> Option<&str> {
        self.expr
            .as_deref()
            .or(self.raw_sql.as_deref())
            .filter(|q| !q.trim().is_empty())
    }
}

/// A template variable.
#[derive(Debug, Clone)]
pub struct Variable {
    /// Name (`$name` in queries).
    pub name: String,
    /// `datasource`, `query`, `custom`, …
    pub kind: String,
    /// For `datasource` variables the plugin id; for `query` variables the query; for
    /// `custom` the comma-separated values.
    pub query: Option<String>,
    /// The datasource a `query` variable runs on.
    pub datasource: Option<DatasourceRef>,
    /// What "All" stands for in queries.
    pub all_value: Option<String>,
}

#[derive(Deserialize)]
struct RawDashboard {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    title: String,
    #[serde(rename = "schemaVersion", default)]
    schema_version: u64,
    #[serde(default)]
    panels: Vec<Panel>,
    #[serde(default)]
    templating: RawTemplating,
}

#[derive(Deserialize, Default)]
struct RawTemplating {
    #[serde(default)]
    list: Vec<RawVariable>,
}

#[derive(Deserialize)]
struct RawVariable {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    query: Value,
    #[serde(default)]
    datasource: Option<DatasourceRef>,
    #[serde(rename = "allValue", default)]
    all_value: Option<String>,
}

impl Dashboard {
    /// Parses one dashboard file.
    pub fn parse(file: &str, text: &str) -> Result<Self> {
        let json: Value = serde_json::from_str(text).map_err(|source| Error::Json {
            file: file.to_owned(),
            source,
        })?;
        let raw: RawDashboard =
            serde_json::from_value(json.clone()).map_err(|source| Error::Json {
                file: file.to_owned(),
                source,
            })?;
        if raw.panels.is_empty() {
            return Err(Error::Shape {
                file: file.to_owned(),
                message: "no panels".into(),
            });
        }
        let mut panels = Vec::new();
        flatten(raw.panels, &mut panels);
        let variables = raw
            .templating
            .list
            .into_iter()
            .map(|v| Variable {
                name: v.name,
                kind: v.kind,
                query: match v.query {
                    Value::String(s) => Some(s),
                    Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                },
                datasource: v.datasource,
                all_value: v.all_value,
            })
            .collect();
        Ok(Self {
            file: file.to_owned(),
            json,
            uid: raw.uid,
            title: raw.title,
            schema_version: raw.schema_version,
            panels,
            variables,
        })
    }

    /// Every shipped dashboard ([`crate::files::DASHBOARDS`]).
    pub fn all() -> Result<Vec<Self>> {
        crate::files::DASHBOARDS
            .iter()
            .map(|(file, text)| Self::parse(file, text))
            .collect()
    }

    /// The panels that query something (not rows).
    pub fn query_panels(&self) -> impl Iterator<Item = &Panel> {
        self.panels.iter().filter(|p| !p.is_row())
    }

    /// The variable called `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }
}

fn flatten(panels: Vec<Panel>, out: &mut Vec<Panel>) {
    for mut p in panels {
        let nested = std::mem::take(&mut p.panels);
        out.push(p);
        flatten(nested, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_targets_and_variables() {
        let text = r#"{
          "uid": "u", "title": "T", "schemaVersion": 39,
          "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "ns", "type": "query", "query": {"query": "label_values(m, ns)"},
             "datasource": {"type": "prometheus", "uid": "${datasource}"}, "allValue": ".*"}
          ]},
          "panels": [
            {"id": 1, "type": "row", "title": "r", "panels": [
              {"id": 2, "type": "stat", "title": "s", "targets": [{"refId": "A", "expr": "up"}]}
            ]},
            {"id": 3, "type": "table", "title": "t", "targets": [{"refId": "A", "rawSql": "SELECT 1"}]}
          ]
        }"#;
        let d = Dashboard::parse("x.json", text).unwrap();
        let ids: Vec<_> = d.panels.iter().map(|p| p.id).collect();
        assert_eq!(ids, [Some(1), Some(2), Some(3)]);
        assert_eq!(d.query_panels().count(), 2);
        assert_eq!(d.panels[1].targets[0].query(), Some("up"));
        assert_eq!(d.panels[2].targets[0].query(), Some("SELECT 1"));
        let ns = d.variable("ns").unwrap();
        assert_eq!(ns.query.as_deref(), Some("label_values(m, ns)"));
        assert_eq!(ns.all_value.as_deref(), Some(".*"));
    }

    #[test]
    fn refuses_what_is_not_a_dashboard() {
        assert!(matches!(
            Dashboard::parse("x.json", "{"),
            Err(Error::Json { .. })
        ));
        assert!(matches!(
            Dashboard::parse("x.json", r#"{"title": "no panels"}"#),
            Err(Error::Shape { .. })
        ));
    }
}
