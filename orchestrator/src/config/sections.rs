//! The daemon's own config sections (everything but the catalog), with their defaults.

use std::path::PathBuf;
use std::time::Duration;

use jobs::duration::JobDuration;
use serde::Deserialize;

/// `[amqp]`: RabbitMQ.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// AMQP URI (the vhost is the path, `%2f` for `/`). Env `ORCHESTRATOR_AMQP_URL`.
    #[serde(default = "AmqpConfig::default_url")]
    pub url: String,
    /// Prefix of every exchange and queue name (`orchestrator` → `orchestrator.jobs`,
    /// `orchestrator.team-a.high`, …). Env `ORCHESTRATOR_AMQP_PREFIX`.
    #[serde(default = "AmqpConfig::default_prefix")]
    pub prefix: String,
}

impl AmqpConfig {
    fn default_url() -> String {
        "amqp://guest:guest@127.0.0.1:5672/%2f".into()
    }
    fn default_prefix() -> String {
        "orchestrator".into()
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: Self::default_url(),
            prefix: Self::default_prefix(),
        }
    }
}

/// `[database]`: PostgreSQL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection URL. Env `ORCHESTRATOR_DATABASE_URL`.
    #[serde(default = "DatabaseConfig::default_url")]
    pub url: String,
    /// Most pooled connections.
    #[serde(default = "DatabaseConfig::default_max_connections")]
    pub max_connections: u32,
    /// Apply migrations at start (`orchestrator migrate` does it explicitly).
    #[serde(default = "yes")]
    pub migrate_on_start: bool,
    /// Finished jobs and their history are deleted after this long; unset keeps everything.
    #[serde(default = "DatabaseConfig::default_retention")]
    pub retention: Option<JobDuration>,
}

impl DatabaseConfig {
    fn default_url() -> String {
        "postgres://postgres@127.0.0.1:5432/postgres".into()
    }
    fn default_max_connections() -> u32 {
        16
    }
    fn default_retention() -> Option<JobDuration> {
        Some(JobDuration(Duration::from_secs(30 * 24 * 3600)))
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Self::default_url(),
            max_connections: Self::default_max_connections(),
            migrate_on_start: true,
            retention: Self::default_retention(),
        }
    }
}

fn yes() -> bool {
    true
}

/// `[http]`: the API listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Env `ORCHESTRATOR_HTTP_ADDR`.
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

/// `[kubernetes]`: which cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// Kubeconfig file; unset: env `KUBECONFIG`, then `~/.kube/config`, then in-cluster.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
}

/// `[leader]`: who admits and fires cron when several replicas run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderConfig {
    /// Elect through a Kubernetes Lease. Off: this replica always leads (run one only).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Lease name.
    #[serde(default = "LeaderConfig::default_name")]
    pub lease_name: String,
    /// Lease namespace.
    #[serde(default = "LeaderConfig::default_namespace")]
    pub lease_namespace: String,
    /// How long a lease lasts without renewal: a standby takes over this long after the
    /// leader dies.
    #[serde(default = "LeaderConfig::default_duration")]
    pub lease_duration: JobDuration,
    /// This replica's identity; unset: hostname and process id.
    #[serde(default)]
    pub identity: Option<String>,
}

impl LeaderConfig {
    fn default_name() -> String {
        "spark-orchestrator".into()
    }
    fn default_namespace() -> String {
        "default".into()
    }
    fn default_duration() -> JobDuration {
        JobDuration(Duration::from_secs(15))
    }
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_name: Self::default_name(),
            lease_namespace: Self::default_namespace(),
            lease_duration: Self::default_duration(),
            identity: None,
        }
    }
}

/// `[cron]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronConfig {
    /// Longest time between looks at the schedules (new schedules are seen this late).
    #[serde(default = "CronConfig::default_interval")]
    pub interval: JobDuration,
}

impl CronConfig {
    fn default_interval() -> JobDuration {
        JobDuration(Duration::from_secs(1))
    }
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            interval: Self::default_interval(),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line, spans included (job id, namespace).
    Json,
}

/// `[logging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `text` or `json`. Env `ORCHESTRATOR_LOG_FORMAT`.
    #[serde(default)]
    pub format: LogFormat,
    /// `tracing` filter directives (`info`, `orchestrator=debug,lapin=warn`); env `RUST_LOG`
    /// wins.
    #[serde(default = "LoggingConfig::default_level")]
    pub level: String,
}

impl LoggingConfig {
    fn default_level() -> String {
        "info,lapin=warn,sqlx=warn,kube=warn,tower_http=warn".into()
    }
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            level: Self::default_level(),
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// How long SIGTERM waits for in-flight work before giving up on it.
    #[serde(default = "ShutdownConfig::default_timeout")]
    pub timeout: JobDuration,
}

impl ShutdownConfig {
    fn default_timeout() -> JobDuration {
        JobDuration(Duration::from_secs(20))
    }
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            timeout: Self::default_timeout(),
        }
    }
}
