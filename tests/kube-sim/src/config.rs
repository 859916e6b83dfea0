//! The simulator's configuration: node pools, namespaces, quotas, priority classes,
//! timings and faults. Parsed from TOML (`deny_unknown_fields`) or built in code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::error::{Error, Result};
use crate::faults::FaultConfig;
use crate::quantity;

/// Everything the simulator needs to start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    /// Clock speed and emulated delays.
    pub simulation: SimulationConfig,
    /// Scheduler options.
    pub scheduler: SchedulerConfig,
    /// Node pools; nodes are named `<pool>-<index>` (index zero-padded to 4 digits).
    pub pools: Vec<PoolConfig>,
    /// Namespaces created at start (besides `default`, `kube-system`, `kube-public`, `kube-node-lease`).
    pub namespaces: Vec<NamespaceConfig>,
    /// ResourceQuotas created at start.
    pub quotas: Vec<QuotaConfig>,
    /// PriorityClasses created at start (besides the two `system-*` ones).
    pub priority_classes: Vec<PriorityClassConfig>,
    /// Fault injection in force from the start.
    pub faults: FaultConfig,
    /// `[auth]`: bearer tokens and RBAC enforcement; absent, every request is allowed.
    pub auth: Option<AuthConfig>,
    /// Multi-document YAML files whose objects are created at start (e.g. the output of
    /// `kubectl kustomize deploy/base`); kinds kube-sim does not serve are skipped.
    /// Relative paths are relative to the configuration file.
    pub manifests: Vec<PathBuf>,
    /// Objects to create at start, added in code ([`SimConfig::with_manifest_yaml`]).
    #[serde(skip)]
    pub objects: Vec<serde_json::Value>,
}

/// `[simulation]`: the virtual clock and the emulated delays (in simulated time).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SimulationConfig {
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Bound pod → Running.
    #[serde(with = "humantime_serde_compat")]
    pub pod_start_delay: Duration,
    /// Graceful deletion → gone (capped by the pod's grace period).
    #[serde(with = "humantime_serde_compat")]
    pub termination_delay: Duration,
    /// SparkApplication created → driver pod created ("spark-submit").
    #[serde(with = "humantime_serde_compat")]
    pub submit_delay: Duration,
    /// Driver Running → executor pods requested.
    #[serde(with = "humantime_serde_compat")]
    pub executor_request_delay: Duration,
    /// Runtime of an application without a `kube-sim.dev/runtime` annotation.
    #[serde(with = "humantime_serde_compat")]
    pub default_runtime: Duration,
    /// Wall-clock interval between watch BOOKMARK events.
    #[serde(with = "humantime_serde_compat")]
    pub bookmark_interval: Duration,
    /// Watch events kept per resource for resumption (older versions get 410).
    pub watch_history: usize,
    /// Seed of the random generator (names, fault injection).
    pub seed: u64,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            speed: 1.0,
            pod_start_delay: Duration::from_secs(2),
            termination_delay: Duration::from_secs(1),
            submit_delay: Duration::from_secs(1),
            executor_request_delay: Duration::from_secs(1),
            default_runtime: Duration::from_secs(5),
            bookmark_interval: Duration::from_secs(1),
            watch_history: 10_000,
            seed: 1,
        }
    }
}

/// How the scheduler scores feasible nodes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum Scoring {
    /// Prefer the node with the most free room (kube-scheduler's default `LeastAllocated`).
    #[default]
    LeastAllocated,
    /// Prefer the fullest node that fits (bin packing, `MostAllocated`).
    MostAllocated,
}

/// `[scheduler]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Node scoring; ties go to the node whose name sorts first.
    pub scoring: Scoring,
}

/// A taint in config form.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaintConfig {
    /// Key.
    pub key: String,
    /// Value (optional).
    #[serde(default)]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

/// `[[pools]]`: `count` identical nodes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name; nodes are `<name>-0000`, `<name>-0001`, ...
    pub name: String,
    /// Number of nodes.
    pub count: usize,
    /// Allocatable CPU per node (quantity, e.g. `"8"` or `"7500m"`).
    pub cpu: String,
    /// Allocatable memory per node (quantity, e.g. `"32Gi"`).
    pub memory: String,
    /// Maximum pods per node.
    #[serde(default = "default_pods")]
    pub pods: u32,
    /// Node labels (added to the standard `kubernetes.io/*` ones).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Node taints.
    #[serde(default)]
    pub taints: Vec<TaintConfig>,
    /// `node.kubernetes.io/instance-type` label (defaults to the pool name).
    #[serde(default)]
    pub instance_type: Option<String>,
}

fn default_pods() -> u32 {
    110
}

impl PoolConfig {
    /// A pool of `count` nodes with `cpu` and `memory` each and the label `pool=<name>`.
    pub fn new(name: &str, count: usize, cpu: &str, memory: &str) -> Self {
        PoolConfig {
            name: name.to_string(),
            count,
            cpu: cpu.to_string(),
            memory: memory.to_string(),
            pods: default_pods(),
            labels: BTreeMap::from([("pool".to_string(), name.to_string())]),
            taints: Vec::new(),
            instance_type: None,
        }
    }

    /// Add a taint `key=value:effect`.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(TaintConfig {
            key: key.into(),
            value: Some(value.into()),
            effect: effect.into(),
        });
        self
    }

    /// Add a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Set the pod capacity.
    pub fn max_pods(mut self, pods: u32) -> Self {
        self.pods = pods;
        self
    }
}

/// `[[namespaces]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Name.
    pub name: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// `[[quotas]]`: a ResourceQuota.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `spec.hard`, e.g. `{ "requests.cpu" = "16", pods = "20" }`.
    pub hard: BTreeMap<String, String>,
}

/// `[[priority_classes]]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PriorityClassConfig {
    /// Name.
    pub name: String,
    /// Priority value.
    pub value: i32,
    /// Whether pods without a class get this one.
    #[serde(default)]
    pub global_default: bool,
    /// `PreemptLowerPriority` (default) or `Never`.
    #[serde(default)]
    pub preemption_policy: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
}

impl SimConfig {
    /// Parse and validate TOML. Errors name the offending key.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        let cfg: SimConfig = toml::from_str(s).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read, parse and validate a TOML file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Self::from_toml_str(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for m in &mut cfg.manifests {
            if m.is_relative() {
                *m = dir.join(&*m);
            }
        }
        Ok(cfg)
    }

    /// Turn authentication and RBAC on with these tokens.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Create the objects of a multi-document YAML text at start (kinds kube-sim does
    /// not serve are skipped); fails on YAML that does not parse.
    pub fn with_manifest_yaml(mut self, yaml: &str) -> Result<Self> {
        self.objects
            .extend(crate::manifests::parse(yaml).map_err(Error::Config)?);
        Ok(self)
    }

    /// A cluster of one pool `general` with `count` nodes of `cpu`/`memory`.
    pub fn uniform(count: usize, cpu: &str, memory: &str) -> Self {
        SimConfig::default().with_pool(PoolConfig::new("general", count, cpu, memory))
    }

    /// Add a node pool.
    pub fn with_pool(mut self, pool: PoolConfig) -> Self {
        self.pools.push(pool);
        self
    }

    /// Add a namespace.
    pub fn with_namespace(mut self, name: &str) -> Self {
        self.namespaces.push(NamespaceConfig {
            name: name.into(),
            labels: BTreeMap::new(),
        });
        self
    }

    /// Add a ResourceQuota, e.g. `&[("requests.cpu", "4"), ("pods", "10")]`.
    pub fn with_quota(mut self, namespace: &str, name: &str, hard: &[(&str, &str)]) -> Self {
        self.quotas.push(QuotaConfig {
            namespace: namespace.into(),
            name: name.into(),
            hard: hard
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        self
    }

    /// Add a PriorityClass.
    pub fn with_priority_class(mut self, name: &str, value: i32, never_preempt: bool) -> Self {
        self.priority_classes.push(PriorityClassConfig {
            name: name.into(),
            value,
            global_default: false,
            preemption_policy: never_preempt.then(|| "Never".to_string()),
            description: None,
        });
        self
    }

    /// Set the clock speed.
    pub fn with_speed(mut self, speed: f64) -> Self {
        self.simulation.speed = speed;
        self
    }

    /// Check values serde cannot: quantities, effects, duplicates, speed.
    pub fn validate(&self) -> Result<()> {
        let bad = |key: String, msg: String| Err(Error::Config(format!("{key}: {msg}")));
        if let Some(a) = &self.auth {
            a.validate().map_err(Error::Config)?;
        }
        if !(self.simulation.speed > 0.0 && self.simulation.speed.is_finite()) {
            return bad(
                "simulation.speed".into(),
                format!("must be a positive number, got {}", self.simulation.speed),
            );
        }
        if self.simulation.watch_history == 0 {
            return bad(
                "simulation.watch_history".into(),
                "must be at least 1".into(),
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, p) in self.pools.iter().enumerate() {
            if p.name.is_empty() || !crate::validation::is_dns_label(&p.name) {
                return bad(
                    format!("pools[{i}].name"),
                    format!("{:?} is not a DNS label", p.name),
                );
            }
            if !names.insert(p.name.clone()) {
                return bad(
                    format!("pools[{i}].name"),
                    format!("duplicate pool {:?}", p.name),
                );
            }
            if quantity::cpu_millis(&p.cpu).is_none_or(|v| v <= 0) {
                return bad(
                    format!("pools[{i}].cpu"),
                    format!("{:?} is not a positive quantity", p.cpu),
                );
            }
            if quantity::units(&p.memory).is_none_or(|v| v <= 0) {
                return bad(
                    format!("pools[{i}].memory"),
                    format!("{:?} is not a positive quantity", p.memory),
                );
            }
            for (j, t) in p.taints.iter().enumerate() {
                if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
                    return bad(
                        format!("pools[{i}].taints[{j}].effect"),
                        format!(
                            "{:?} is not one of NoSchedule, PreferNoSchedule, NoExecute",
                            t.effect
                        ),
                    );
                }
            }
        }
        for (i, q) in self.quotas.iter().enumerate() {
            for (k, v) in &q.hard {
                if quantity::parse_resource(k, v).is_none() {
                    return bad(
                        format!("quotas[{i}].hard.{k}"),
                        format!("{v:?} is not a quantity"),
                    );
                }
            }
        }
        for (i, pc) in self.priority_classes.iter().enumerate() {
            if let Some(p) = &pc.preemption_policy
                && p != "Never"
                && p != "PreemptLowerPriority"
            {
                return bad(
                    format!("priority_classes[{i}].preemption_policy"),
                    format!("{p:?} is not one of PreemptLowerPriority, Never"),
                );
            }
        }
        if self
            .priority_classes
            .iter()
            .filter(|p| p.global_default)
            .count()
            > 1
        {
            return bad(
                "priority_classes".into(),
                "at most one class may be global_default".into(),
            );
        }
        self.faults
            .validate()
            .map_err(|m| Error::Config(format!("faults: {m}")))?;
        Ok(())
    }
}

/// Durations as humantime strings (`"90s"`, `"5m"`, `"250ms"`).
pub(crate) mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_example_cluster() {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/cluster.toml"
        ));
        let cfg = SimConfig::from_toml_str(text).unwrap();
        assert!(cfg.pools.iter().any(|p| p.name == "spot"));
        assert!(
            cfg.priority_classes
                .iter()
                .any(|p| p.name == "spark-placeholder")
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let err = SimConfig::from_toml_str("[simulation]\nsped = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sped"), "{err}");
    }

    #[test]
    fn bad_quantity_is_named() {
        let err = SimConfig::from_toml_str(
            "[[pools]]\nname = \"a\"\ncount = 1\ncpu = \"lots\"\nmemory = \"1Gi\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("pools[0].cpu"), "{err}");
    }

    #[test]
    fn bad_duration_is_reported() {
        let err = SimConfig::from_toml_str("[simulation]\npod_start_delay = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pod_start_delay") || err.contains("soon"),
            "{err}"
        );
    }
}
