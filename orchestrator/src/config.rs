//! The config file: one TOML document holding the catalog (namespaces, node types, priority
//! classes, defaults, limits) and the daemon's own sections.
//!
//! Parsing is pure (text in, [`Config`] or every problem out, each naming its key) so tests
//! never touch files or the environment. Unknown keys anywhere are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use jobs::catalog::{
    CatalogConfig, DefaultsConfig, LimitsConfig, NamespaceConfig, NodeSelection, NodeTypeConfig,
    PrioritiesConfig,
};
use std::net::SocketAddr;

use capacity::CapacityConfig;
use jobs::{Catalog, catalog::ConfigProblem};
use serde::Deserialize;
use submitter::config::SubmitterConfig;

use crate::http::auth::{AuthConfig, Authenticator, TokenConfig};

mod sections;
pub use sections::*;

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
    spot: Option<NodeSelection>,
    #[serde(default)]
    amqp: AmqpConfig,
    #[serde(default)]
    database: DatabaseConfig,
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    kubernetes: KubernetesConfig,
    #[serde(default)]
    leader: LeaderConfig,
    #[serde(default)]
    capacity: CapacityConfig,
    #[serde(default)]
    submitter: SubmitterConfig,
    #[serde(default)]
    cron: CronConfig,
    #[serde(default)]
    logging: LoggingConfig,
    #[serde(default)]
    shutdown: ShutdownConfig,
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
    /// API tokens.
    pub auth: AuthConfig,
    /// Which cluster.
    pub kubernetes: KubernetesConfig,
    /// Leader election.
    pub leader: LeaderConfig,
    /// Capacity strategy.
    pub capacity: CapacityConfig,
    /// Admission and tracking.
    pub submitter: SubmitterConfig,
    /// Cron loop.
    pub cron: CronConfig,
    /// Logs.
    pub logging: LoggingConfig,
    /// SIGTERM handling.
    pub shutdown: ShutdownConfig,
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
        });
        let mut problems = Vec::new();
        let problem = |key: &str, message: String| ConfigProblem {
            key: key.to_owned(),
            message,
        };
        if let Err(e) = Authenticator::new(&file.auth) {
            problems.push(problem("auth", e));
        }
        if let Err(errors) = file.capacity.validate() {
            problems.extend(errors.iter().map(|e| problem("capacity", e.to_string())));
        }
        if let Err(errors) = file.submitter.validate() {
            problems.extend(errors.into_iter().map(|e| problem("submitter", e)));
        }
        if file.http.listen.parse::<SocketAddr>().is_err() {
            problems.push(problem(
                "http.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:8080",
                    file.http.listen
                ),
            ));
        }
        if file.database.max_connections == 0 {
            problems.push(problem(
                "database.max_connections",
                "must be at least 1".into(),
            ));
        }
        if file
            .logging
            .level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            problems.push(problem(
                "logging.level",
                format!(
                    "{:?} is not a tracing filter (e.g. \"info\")",
                    file.logging.level
                ),
            ));
        }
        let catalog = match catalog {
            Ok(c) if problems.is_empty() => c,
            Ok(_) => return Err(fail(problems)),
            Err(mut found) => {
                found.extend(problems);
                return Err(fail(found));
            }
        };
        Ok(Self {
            catalog,
            amqp: file.amqp,
            database: file.database,
            http: file.http,
            auth: file.auth,
            kubernetes: file.kubernetes,
            leader: file.leader,
            capacity: file.capacity,
            submitter: file.submitter,
            cron: file.cron,
            logging: file.logging,
            shutdown: file.shutdown,
        })
    }

    /// Applies `ORCHESTRATOR_*` and `KUBECONFIG` overrides (`ORCHESTRATOR_AUTH_TOKENS` replaces
    /// `[auth] tokens`) from an environment (a function,
    /// so tests need not touch the process's). Returns the problems of values that do not
    /// parse.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("ORCHESTRATOR_AMQP_URL") {
            self.amqp.url = v;
        }
        if let Some(v) = env("ORCHESTRATOR_AMQP_PREFIX") {
            self.amqp.prefix = v;
        }
        if let Some(v) = env("ORCHESTRATOR_DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
            self.kubernetes.kubeconfig = Some(v.into());
        }
        let mut problems = Vec::new();
        if let Some(v) = env("ORCHESTRATOR_HTTP_ADDR") {
            if v.parse::<SocketAddr>().is_ok() {
                self.http.listen = v;
            } else {
                problems.push(ConfigProblem {
                    key: "ORCHESTRATOR_HTTP_ADDR".into(),
                    message: format!("{v:?} is not an address like 127.0.0.1:8080"),
                });
            }
        }
        if let Some(v) = env("ORCHESTRATOR_AUTH_TOKENS") {
            let auth = tokens_from_env(&v).map(|tokens| AuthConfig {
                tokens,
                ..self.auth.clone()
            });
            match auth.and_then(|a| Authenticator::new(&a).map(|_| a)) {
                Ok(a) => self.auth = a,
                Err(message) => problems.push(ConfigProblem {
                    key: "ORCHESTRATOR_AUTH_TOKENS".into(),
                    message,
                }),
            }
        }
        if let Some(v) = env("ORCHESTRATOR_LOG_FORMAT") {
            match v.as_str() {
                "json" => self.logging.format = LogFormat::Json,
                "text" => self.logging.format = LogFormat::Text,
                _ => problems.push(ConfigProblem {
                    key: "ORCHESTRATOR_LOG_FORMAT".into(),
                    message: format!("{v:?} is not text or json"),
                }),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                source_name: "the environment".into(),
                problems,
            })
        }
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

/// Largest `ORCHESTRATOR_AUTH_TOKENS` value read.
const MAX_TOKENS_ENV_BYTES: usize = 1024 * 1024;

/// `ORCHESTRATOR_AUTH_TOKENS`: a JSON list of `[auth] tokens` entries (`{name, token_sha256,
/// roles, namespaces}`) that replaces the file's, so a Kubernetes Secret can hold them. The
/// messages name the entry and field at fault but never echo the value: it may hold a token.
fn tokens_from_env(text: &str) -> Result<Vec<TokenConfig>, String> {
    if text.len() > MAX_TOKENS_ENV_BYTES {
        return Err(format!(
            "{} bytes is more than {MAX_TOKENS_ENV_BYTES}",
            text.len()
        ));
    }
    if text.trim().is_empty() {
        return Err("empty: give a JSON list of tokens ([] for none) or unset it".into());
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let tokens: Vec<TokenConfig> = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let what = match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "is not valid JSON"
            }
            _ => "does not fit a token entry {name, token_sha256, roles, namespaces}",
        };
        format!(
            "{}{what} (line {}, column {})",
            if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            },
            inner.line(),
            inner.column()
        )
    })?;
    de.end()
        .map_err(|_| "text after the JSON list".to_owned())?;
    Ok(tokens)
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
    fn the_environment_overrides_the_file_and_bad_values_are_named() {
        let mut c = Config::from_toml_str(MINIMAL, "t").unwrap();
        let env = |k: &str| match k {
            "ORCHESTRATOR_AMQP_URL" => Some("amqp://u:p@10.0.0.1:5672/v".to_owned()),
            "ORCHESTRATOR_DATABASE_URL" => Some("postgres://db/x".to_owned()),
            "ORCHESTRATOR_HTTP_ADDR" => Some("127.0.0.1:9999".to_owned()),
            "KUBECONFIG" => Some("/tmp/kc".to_owned()),
            _ => None,
        };
        c.apply_env(env).unwrap();
        assert_eq!(c.amqp.url, "amqp://u:p@10.0.0.1:5672/v");
        assert_eq!(c.database.url, "postgres://db/x");
        assert_eq!(c.http.listen, "127.0.0.1:9999");
        assert_eq!(
            c.kubernetes.kubeconfig.as_deref(),
            Some(Path::new("/tmp/kc"))
        );

        let err = c
            .apply_env(|k| match k {
                "ORCHESTRATOR_HTTP_ADDR" => Some("everywhere".to_owned()),
                "ORCHESTRATOR_LOG_FORMAT" => Some("xml".to_owned()),
                _ => None,
            })
            .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["ORCHESTRATOR_HTTP_ADDR", "ORCHESTRATOR_LOG_FORMAT"]);
        assert_eq!(
            c.http.listen, "127.0.0.1:9999",
            "a bad value changes nothing"
        );
    }

    #[test]
    fn api_tokens_come_from_the_environment_and_bad_ones_are_refused_without_echo() {
        let hash = "ab".repeat(32);
        let mut c = Config::from_toml_str(MINIMAL, "t").unwrap();
        let good = format!(
            r#"[{{"name": "ci", "token_sha256": "{hash}", "roles": ["submit"], "namespaces": ["team-a"]}}]"#
        );
        c.apply_env(|k| (k == "ORCHESTRATOR_AUTH_TOKENS").then(|| good.clone()))
            .unwrap();
        assert_eq!(c.auth.tokens.len(), 1);
        assert_eq!(c.auth.tokens[0].name, "ci");
        let secret = "s3cr3t-value-never-echoed";
        for (value, expected) in [
            (String::new(), "empty"),
            ("  ".to_owned(), "empty"),
            ("{".to_owned(), "does not fit"),
            (format!("[{{\"name\": \"{secret}"), "not valid JSON"),
            (format!("[{{\"name\": {secret}}}]"), "not valid JSON"),
            (
                format!("[{{\"name\": \"x\", \"token\": \"{secret}\"}}]"),
                "does not fit",
            ),
            (
                format!(
                    "[{{\"name\": \"x\", \"token\": \"{secret}\", \"roles\": [\"{secret}\"], \"namespaces\": [\"*\"]}}]"
                ),
                "[0].roles[0]",
            ),
            (
                format!(
                    "[{{\"name\": \"x\", \"token_sha256\": \"{secret}\", \"roles\": [\"read\"], \"namespaces\": [\"*\"]}}]"
                ),
                "not 64 hex digits",
            ),
            (
                format!("[{{\"name\": \"x\", \"tokn\": \"{secret}\"}}]"),
                "does not fit",
            ),
            ("[] []".to_owned(), "text after"),
            ("[".repeat(10_000), "does not fit"),
            (" ".repeat(MAX_TOKENS_ENV_BYTES + 1), "more than"),
        ] {
            let mut c = Config::from_toml_str(MINIMAL, "t").unwrap();
            let err = c
                .apply_env(|k| (k == "ORCHESTRATOR_AUTH_TOKENS").then(|| value.clone()))
                .unwrap_err();
            let message = err.to_string();
            assert_eq!(err.problems[0].key, "ORCHESTRATOR_AUTH_TOKENS");
            assert!(message.contains(expected), "{expected}: {message}");
            assert!(!message.contains(secret), "echoes the value: {message}");
            assert!(c.auth.tokens.is_empty(), "a bad value changes nothing");
        }
        // `[]` is an explicit "no tokens".
        let mut c = Config::from_toml_str(
            "[namespaces.team-a]\n[[auth.tokens]]\nname = \"f\"\ntoken = \"0123456789abcdefgh\"\nroles = [\"read\"]\nnamespaces = [\"*\"]\n",
            "t",
        )
        .unwrap();
        c.apply_env(|k| (k == "ORCHESTRATOR_AUTH_TOKENS").then(|| "[]".to_owned()))
            .unwrap();
        assert!(c.auth.tokens.is_empty());
    }

    #[test]
    fn daemon_sections_are_checked_with_their_keys() {
        let err = Config::from_toml_str(
            "[namespaces.team-a]\n[http]\nlisten = \"port 80\"\n[auth]\ntokens = [{ name = \"x\", token = \"short\", roles = [\"read\"], namespaces = [\"*\"] }]\n[logging]\nlevel = \"=[\"\n",
            "t",
        )
        .unwrap_err();
        let keys: Vec<_> = err.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"http.listen"), "{keys:?}");
        assert!(keys.contains(&"auth"), "{keys:?}");
        assert!(keys.contains(&"logging.level"), "{keys:?}");
        let err = Config::from_toml_str("[namespaces.team-a]\n[leader]\nlease_secs = 3\n", "t")
            .unwrap_err();
        assert_eq!(err.problems[0].key, "leader.lease_secs");
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
