//! The config file: one TOML document holding the catalog (namespaces, node types, priority
//! classes, defaults, limits) and the daemon's own sections.
//!
//! Parsing is pure (text in, [`Config`] or every problem out, each naming its key) so tests
//! never touch files or the environment. Unknown keys anywhere are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use queues::catalog::{
    CatalogConfig, DefaultsConfig, LimitsConfig, NamespaceConfig, NodeTypeConfig, Placement,
    PrioritiesConfig,
};
use queues::{Catalog, catalog::ConfigProblem};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    namespaces: BTreeMap<String, NamespaceConfig>,
    #[serde(default)]
    node_types: BTreeMap<String, NodeTypeConfig>,
    #[serde(default)]
    priorities: PrioritiesConfig,
    #[serde(default)]
    defaults: DefaultsConfig,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    spot: Option<Placement>,
    #[serde(default)]
    amqp: AmqpConfig,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    http: HttpConfig,
}

/// RabbitMQ connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// AMQP URI (the vhost is the path, `%2f` for `/`).
    #[serde(default = "AmqpConfig::default_url")]
    pub url: String,
}

impl AmqpConfig {
    fn default_url() -> String {
        "amqp://guest:guest@127.0.0.1:5672/%2f".into()
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: Self::default_url(),
        }
    }
}

/// PostgreSQL connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL.
    #[serde(default = "DatabaseConfig::default_url")]
    pub url: String,
}

impl DatabaseConfig {
    fn default_url() -> String {
        "postgres://postgres@127.0.0.1:5432/postgres".into()
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Self::default_url(),
        }
    }
}

/// The HTTP API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    #[serde(default = "HttpConfig::default_listen")]
    pub listen: String,
}

impl HttpConfig {
    fn default_listen() -> String {
        "127.0.0.1:8080".into()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: Self::default_listen(),
        }
    }
}

/// A checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// What jobs may ask for.
    pub catalog: Catalog,
    /// Broker.
    pub amqp: AmqpConfig,
    /// Job store.
    pub database: DatabaseConfig,
    /// API.
    pub http: HttpConfig,
}

/// Why a config was refused: every problem, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Where the text came from (a file name), for messages.
    pub source_name: String,
    /// The problems.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid config {}:", self.source_name)?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Parses and checks config text; `source_name` only labels messages.
    pub fn from_toml_str(text: &str, source_name: &str) -> Result<Self, ConfigError> {
        let fail = |problems| ConfigError {
            source_name: source_name.to_owned(),
            problems,
        };
        let file = parse_file(text).map_err(|p| fail(vec![p]))?;
        let catalog = Catalog::new(CatalogConfig {
            namespaces: file.namespaces,
            node_types: file.node_types,
            priorities: file.priorities,
            defaults: file.defaults,
            limits: file.limits,
            spot: file.spot,
        })
        .map_err(fail)?;
        Ok(Self {
            catalog,
            amqp: file.amqp,
            database: file.database,
            http: file.http,
        })
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            problems: vec![ConfigProblem {
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        Self::from_toml_str(&text, &name)
    }
}

/// Deserializes while tracking the key path, so type errors name e.g. `node_types.small.cpu`.
fn parse_file(text: &str) -> Result<ConfigFile, ConfigProblem> {
    let de = toml::Deserializer::parse(text).map_err(|e| ConfigProblem {
        key: String::new(),
        message: one_line(&e.to_string()),
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        ConfigProblem {
            key: if key == "." { String::new() } else { key },
            message: one_line(&e.into_inner().to_string()),
        }
    })
}

/// toml's messages span several lines (a source excerpt); keep them readable in one list.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| {
            let excerpt = l.starts_with('|')
                || l.split_once(" |")
                    .is_some_and(|(n, _)| n.bytes().all(|b| b.is_ascii_digit()));
            !l.is_empty() && !excerpt && !l.bytes().all(|b| b == b'^')
        })
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[namespaces.team-a]\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml_str(MINIMAL, "t").unwrap();
        assert!(c.amqp.url.starts_with("amqp://"));
        assert_eq!(c.http.listen, "127.0.0.1:8080");
        assert!(c.catalog.namespace("team-a").is_some());
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key, word) in [
            (
                "[namespaces.team-a]\n[amqp]\nurl = \"x\"\nretries = 3\n",
                "amqp.retries",
                "retries",
            ),
            (
                "colour = \"blue\"\n[namespaces.team-a]\n",
                "colour",
                "colour",
            ),
            (
                "[namespaces.team-a]\n[node_types.s]\ncpu = 1\nmemory = \"1g\"\ngpu = 1\n",
                "node_types.s.gpu",
                "gpu",
            ),
        ] {
            let err = Config::from_toml_str(text, "t").unwrap_err();
            let p = &err.problems[0];
            assert_eq!(p.key, key, "{p}");
            assert!(p.message.contains(word), "{p}");
            assert!(p.message.contains("line"), "points at the line: {p}");
            assert!(!p.message.contains(" | "), "no source excerpt: {p}");
        }
    }

    #[test]
    fn type_errors_name_the_key() {
        let err = Config::from_toml_str(
            "[namespaces.team-a]\n[node_types.small]\ncpu = \"many\"\nmemory = \"4g\"\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(err.problems[0].key, "node_types.small.cpu");
        assert!(err.problems[0].message.contains("invalid cpu quantity"));
        let err =
            Config::from_toml_str("[namespaces.team-a]\nweight = \"heavy\"\n", "t").unwrap_err();
        assert_eq!(err.problems[0].key, "namespaces.team-a.weight");
    }

    #[test]
    fn syntax_errors_and_hostile_text_do_not_panic() {
        for text in [
            "[",
            "namespaces = 3",
            "\u{0}",
            "[namespaces.team-a]\n[namespaces.team-a]\n",
            &"[a]".repeat(10_000),
            &"[".repeat(100_000),
        ] {
            assert!(Config::from_toml_str(text, "t").is_err(), "{:.40}", text);
        }
    }

    #[test]
    fn semantic_problems_are_all_reported() {
        let err = Config::from_toml_str(
            "[namespaces.Bad_Name]\n[defaults]\ndriver_node_type = \"nope\"\n",
            "t",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"namespaces.Bad_Name"), "{keys:?}");
        assert!(keys.contains(&"defaults.driver_node_type"), "{keys:?}");
        assert!(err.to_string().contains("invalid config t"));
    }
}
