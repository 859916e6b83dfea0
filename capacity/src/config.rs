//! Configuration of the capacity checker (the `[capacity]` section of the daemon's file):
//! the strategy, how to recognise pools and Spark roles, the ledger TTL, autoscaling pools,
//! and the dry-run and placeholder settings. Pure to parse; [`CapacityConfig::validate`]
//! says what is wrong before anything starts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{Resources, Taint, TaintEffect};
use crate::quantity::{parse_millis, parse_units};
use crate::view::AutoscalePool;

/// Which strategy answers `check` (all share the snapshot cache and the ledger).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Watch-cached cluster state and gang bin packing.
    #[default]
    Snapshot,
    /// The snapshot, then server-side `dryRun=All` creates for admission's verdict.
    DryRun,
    /// The snapshot, then low-priority placeholder pods the real scheduler must bind.
    Placeholders,
}

impl Strategy {
    /// Metric label and config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Snapshot => "snapshot",
            Strategy::DryRun => "dry-run",
            Strategy::Placeholders => "placeholders",
        }
    }
}

/// The `[capacity]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityConfig {
    /// Strategy (`snapshot`, `dry-run`, `placeholders`).
    #[serde(default)]
    pub strategy: Strategy,
    /// Node label whose value names a node's pool (`pool`).
    #[serde(default = "default_pool_label")]
    pub pool_label: String,
    /// Pod label carrying Spark's role, `driver`/`executor` (`spark-role`): lets the ledger
    /// convert the right share of a reservation when a pod appears.
    #[serde(default = "default_role_label")]
    pub role_label: String,
    /// How long a reservation lasts if its pods never appear.
    #[serde(default = "default_ledger_ttl", with = "humantime_serde")]
    pub ledger_ttl: Duration,
    /// Placements are binding (default): the submitter pins each admitted gang's pods to the
    /// nodes planned for them, and the nodes of a gang with pods on the way are offered to no
    /// other gang until they are all bound. The scheduler cannot see reservations; without
    /// this, pods scored onto another gang's promised room leave its executors Pending.
    /// `false`: placements only prove that room exists and the scheduler places pods as it
    /// likes.
    #[serde(default = "default_true")]
    pub binding_placements: bool,
    /// How often expired reservations are dropped and cluster gauges refreshed.
    #[serde(default = "default_housekeeping", with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    /// Autoscaling pools: capacity that can still appear.
    #[serde(default)]
    pub pools: Vec<PoolConfig>,
    /// Dry-run settings.
    #[serde(default)]
    pub dry_run: DryRunConfig,
    /// Placeholder settings.
    #[serde(default)]
    pub placeholders: PlaceholderConfig,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            strategy: Strategy::default(),
            pool_label: default_pool_label(),
            role_label: default_role_label(),
            ledger_ttl: default_ledger_ttl(),
            binding_placements: true,
            housekeeping_interval: default_housekeeping(),
            pools: Vec::new(),
            dry_run: DryRunConfig::default(),
            placeholders: PlaceholderConfig::default(),
        }
    }
}

/// One autoscaling pool (cluster-autoscaler node group, Karpenter NodePool): the shape of a
/// node it adds and how many it may have. The number it has now is counted from the nodes
/// carrying `pool_label=<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name: the value of the pool label on its nodes.
    pub name: String,
    /// Allocatable cpu of a new node (`"7910m"`).
    pub cpu: String,
    /// Allocatable memory of a new node (`"30Gi"`).
    pub memory: String,
    /// Pod slots of a new node.
    #[serde(default = "default_pods")]
    pub pods: u64,
    /// Most nodes the pool may have.
    pub max: u32,
    /// Labels of its nodes besides the pool label (for node selectors).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints of its nodes.
    #[serde(default)]
    pub taints: Vec<TaintConfig>,
}

/// A taint in config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaintConfig {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: String,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: TaintEffect,
}

/// Dry-run settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunConfig {
    /// Image of the probe pods (never pulled: nothing is stored).
    #[serde(default = "default_pause_image")]
    pub image: String,
    /// Field manager sent with the creates.
    #[serde(default = "default_field_manager")]
    pub field_manager: String,
}

impl Default for DryRunConfig {
    fn default() -> Self {
        DryRunConfig {
            image: default_pause_image(),
            field_manager: default_field_manager(),
        }
    }
}

/// Placeholder settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceholderConfig {
    /// PriorityClass of the placeholder pods; created if missing, with `value` below and
    /// `preemptionPolicy: Never` so placeholders never evict anyone and anyone evicts them.
    #[serde(default = "default_placeholder_class")]
    pub priority_class: String,
    /// Its value (negative: below every real workload).
    #[serde(default = "default_placeholder_priority")]
    pub priority: i32,
    /// Pause image.
    #[serde(default = "default_pause_image")]
    pub image: String,
    /// How long all placeholders of a gang may take to be bound before the verdict is Wait.
    #[serde(default = "default_placeholder_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Placeholders (and their owner Leases) older than this that no check in this process is
    /// waiting on are orphans (a crash) and are deleted by the sweeper.
    #[serde(default = "default_placeholder_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// How often the sweeper runs.
    #[serde(default = "default_sweep_interval", with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Ask the snapshot first and create placeholders only when it says Fits (the default);
    /// `false` lets placeholders try even when the snapshot says Wait (e.g. to trigger a
    /// cluster autoscaler the pool config does not describe). Never verdicts always stand.
    #[serde(default = "default_true")]
    pub require_snapshot_fit: bool,
    /// Value of `app.kubernetes.io/managed-by` on placeholders and owners (one per
    /// orchestrator installation, so two installations never sweep each other's).
    #[serde(default = "default_field_manager")]
    pub managed_by: String,
    /// Namespace for placeholders; default: the gang's own namespace. A dedicated namespace
    /// keeps placeholders out of team quotas (the snapshot still checks those).
    #[serde(default)]
    pub namespace: Option<String>,
}

impl Default for PlaceholderConfig {
    fn default() -> Self {
        PlaceholderConfig {
            priority_class: default_placeholder_class(),
            priority: default_placeholder_priority(),
            image: default_pause_image(),
            timeout: default_placeholder_timeout(),
            max_age: default_placeholder_max_age(),
            sweep_interval: default_sweep_interval(),
            require_snapshot_fit: true,
            managed_by: default_field_manager(),
            namespace: None,
        }
    }
}

/// A config problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capacity.{key}: {message}")]
pub struct ConfigError {
    /// Dotted key under `capacity`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl CapacityConfig {
    /// Every problem at once.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errors = Vec::new();
        let mut err = |key: String, message: &str| {
            errors.push(ConfigError {
                key,
                message: message.to_string(),
            })
        };
        if self.pool_label.is_empty() {
            err("pool_label".into(), "must not be empty");
        }
        if self.ledger_ttl.is_zero() {
            err("ledger_ttl".into(), "must be positive");
        }
        if self.housekeeping_interval.is_zero() {
            err("housekeeping_interval".into(), "must be positive");
        }
        for (i, p) in self.pools.iter().enumerate() {
            if p.name.is_empty() {
                err(format!("pools[{i}].name"), "must not be empty");
            }
            if self.pools[..i].iter().any(|q| q.name == p.name) {
                err(format!("pools[{i}].name"), "duplicate pool name");
            }
            if parse_millis(&p.cpu).is_none() {
                err(
                    format!("pools[{i}].cpu"),
                    "not a quantity (e.g. \"8\" or \"7910m\")",
                );
            }
            if parse_units(&p.memory).is_none() {
                err(
                    format!("pools[{i}].memory"),
                    "not a quantity (e.g. \"32Gi\")",
                );
            }
        }
        let ph = &self.placeholders;
        if ph.timeout.is_zero() || ph.sweep_interval.is_zero() {
            err(
                "placeholders".into(),
                "timeout and sweep_interval must be positive",
            );
        }
        if ph.max_age <= ph.timeout {
            err(
                "placeholders.max_age".into(),
                "must be longer than placeholders.timeout",
            );
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The pools as [`AutoscalePool`]s with `current` 0 (the cache counts nodes), labels
    /// including `pool_label=<name>`.
    pub fn autoscale_pools(&self) -> Vec<AutoscalePool> {
        self.pools
            .iter()
            .map(|p| {
                let mut labels = p.labels.clone();
                labels.insert(self.pool_label.clone(), p.name.clone());
                AutoscalePool {
                    name: p.name.clone(),
                    labels,
                    taints: p
                        .taints
                        .iter()
                        .map(|t| Taint {
                            key: t.key.clone(),
                            value: t.value.clone(),
                            effect: t.effect,
                        })
                        .collect(),
                    allocatable: Resources {
                        cpu_millis: parse_millis(&p.cpu).unwrap_or(0),
                        memory_bytes: parse_units(&p.memory).unwrap_or(0),
                        pods: p.pods,
                    },
                    current: 0,
                    max: p.max,
                }
            })
            .collect()
    }
}

fn default_pool_label() -> String {
    "pool".into()
}
fn default_role_label() -> String {
    "spark-role".into()
}
fn default_ledger_ttl() -> Duration {
    Duration::from_secs(600)
}
fn default_housekeeping() -> Duration {
    Duration::from_secs(5)
}
fn default_pods() -> u64 {
    110
}
fn default_pause_image() -> String {
    "registry.k8s.io/pause:3.10".into()
}
fn default_field_manager() -> String {
    "spark-orchestrator".into()
}
fn default_placeholder_class() -> String {
    "spark-placeholder".into()
}
fn default_placeholder_priority() -> i32 {
    -10
}
fn default_placeholder_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_placeholder_max_age() -> Duration {
    Duration::from_secs(600)
}
fn default_sweep_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_section() {
        let cfg: CapacityConfig = toml::from_str(
            r#"
            strategy = "placeholders"
            pool_label = "node-pool"
            ledger_ttl = "15m"
            [[pools]]
            name = "spot"
            cpu = "8"
            memory = "32Gi"
            max = 20
            taints = [{ key = "spot", value = "true", effect = "NoSchedule" }]
            [placeholders]
            timeout = "45s"
            priority = -100
            "#,
        )
        .unwrap();
        assert_eq!(cfg.strategy, Strategy::Placeholders);
        assert_eq!(cfg.ledger_ttl, Duration::from_secs(900));
        assert_eq!(cfg.placeholders.timeout, Duration::from_secs(45));
        assert_eq!(cfg.placeholders.priority_class, "spark-placeholder");
        assert!(cfg.validate().is_ok());
        let pools = cfg.autoscale_pools();
        assert_eq!(
            pools[0].labels.get("node-pool").map(String::as_str),
            Some("spot")
        );
        assert_eq!(
            pools[0].allocatable,
            Resources {
                cpu_millis: 8000,
                memory_bytes: 32 << 30,
                pods: 110
            }
        );
        assert_eq!(pools[0].taints[0].effect, TaintEffect::NoSchedule);
    }

    #[test]
    fn refuses_unknown_keys_and_reports_every_problem() {
        assert!(toml::from_str::<CapacityConfig>("strategy = \"magic\"").is_err());
        assert!(toml::from_str::<CapacityConfig>("colour = 1").is_err());
        let cfg: CapacityConfig = toml::from_str(
            r#"
            ledger_ttl = "0s"
            [[pools]]
            name = "a"
            cpu = "lots"
            memory = "1Gi"
            max = 1
            [[pools]]
            name = "a"
            cpu = "1"
            memory = "x"
            max = 1
            "#,
        )
        .unwrap();
        let keys: Vec<String> = cfg
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "ledger_ttl",
                "pools[0].cpu",
                "pools[1].name",
                "pools[1].memory"
            ]
        );
    }
}
