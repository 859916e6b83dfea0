//! The shipped files, embedded so that tests and tools need no path juggling. The files in
//! the crate directory are the source; these are compile-time copies of them.

/// `grafana/<name>.json`: (file name, JSON text), in the order the README lists them.
pub const DASHBOARDS: [(&str, &str); 4] = [
    ("queues.json", include_str!("../grafana/queues.json")),
    ("capacity.json", include_str!("../grafana/capacity.json")),
    ("jobs-cron.json", include_str!("../grafana/jobs-cron.json")),
    ("history.json", include_str!("../grafana/history.json")),
];

/// `prometheus/alerts.yml`: the alert rules.
pub const ALERTS: &str = include_str!("../prometheus/alerts.yml");

/// `prometheus/alerts.test.yml`: `promtool test rules` cases for [`ALERTS`].
pub const ALERTS_TEST: &str = include_str!("../prometheus/alerts.test.yml");

/// `prometheus/prometheus.yml`: an example scrape configuration.
pub const PROMETHEUS_CONFIG: &str = include_str!("../prometheus/prometheus.yml");

/// `provisioning/datasources.yml`: Grafana datasources.
pub const GRAFANA_DATASOURCES: &str = include_str!("../provisioning/datasources.yml");

/// `provisioning/dashboards.yml`: Grafana dashboard provider.
pub const GRAFANA_DASHBOARDS: &str = include_str!("../provisioning/dashboards.yml");

/// The scrape job name the example config and the `OrchestratorDown` alert agree on.
pub const SCRAPE_JOB: &str = "spark-orchestrator";
