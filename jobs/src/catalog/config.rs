//! The catalog sections of the config file as admins write them: namespaces, node types and
//! their placements, priority classes, job defaults and limits. Parsing is strict (unknown keys
//! are errors); [`super::Catalog::new`] checks what parses.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::JobDuration;
use crate::model::{AppType, PullPolicy};
use crate::quantity::{CpuMillis, MemoryBytes};
use crate::retry::{Backoff, RetryPolicy};

/// The catalog sections of the config file, as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    /// Namespaces served, by name.
    pub namespaces: BTreeMap<String, NamespaceConfig>,
    /// Pod sizes users pick by name.
    #[serde(default)]
    pub node_types: BTreeMap<String, NodeTypeConfig>,
    /// Kubernetes PriorityClass names per queue level.
    #[serde(default)]
    pub priorities: PrioritiesConfig,
    /// Values a job gets when it does not say.
    #[serde(default)]
    pub defaults: DefaultsConfig,
    /// Bounds on what a job may ask for.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where spot executors go when their node type has no spot placement of its own.
    #[serde(default)]
    pub spot: Option<NodeSelection>,
}

/// One served namespace.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NamespaceConfig {
    /// Share of the cluster relative to other namespaces (default 1) when it has no quota.
    #[serde(default)]
    pub weight: Option<f64>,
    /// The namespace's entitlement; fairness compares usage against it.
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Pending jobs held in the store per priority; beyond it the backlog stays in RabbitMQ.
    #[serde(default)]
    pub max_pending: Option<u32>,
    /// Free text for operators.
    #[serde(default)]
    pub description: Option<String>,
}

/// A resource entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// CPU, e.g. `"64"`.
    pub cpu: CpuMillis,
    /// Memory, e.g. `"256Gi"`.
    pub memory: MemoryBytes,
}

/// A named pod size: the cpu and memory it requests and where it may run.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTypeConfig {
    /// CPU request of the pod.
    pub cpu: CpuMillis,
    /// Memory request of the pod, Spark's overhead included: the heap is derived from it.
    pub memory: MemoryBytes,
    /// Node labels the pod must match.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pod tolerates.
    #[serde(default)]
    pub tolerations: Vec<TolerationConfig>,
    /// NodeSelection for executors of jobs with `spot: true`.
    #[serde(default)]
    pub spot: Option<NodeSelection>,
    /// Free text for users choosing a type.
    #[serde(default)]
    pub description: Option<String>,
}

/// Node selection: labels to match and taints to tolerate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSelection {
    /// Node labels the pod must match.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pod tolerates.
    #[serde(default)]
    pub tolerations: Vec<TolerationConfig>,
}

/// A Kubernetes toleration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TolerationConfig {
    /// Taint key; empty with `Exists` tolerates everything.
    #[serde(default)]
    pub key: Option<String>,
    /// `Equal` (default) or `Exists`.
    #[serde(default)]
    pub operator: TolerationOperator,
    /// Taint value for `Equal`.
    #[serde(default)]
    pub value: Option<String>,
    /// Effect to tolerate; all when absent.
    #[serde(default)]
    pub effect: Option<TaintEffectConfig>,
    /// For `NoExecute`: how long the pod stays after the taint appears.
    #[serde(default)]
    pub toleration_seconds: Option<i64>,
}

/// TolerationConfig operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
pub enum TolerationOperator {
    /// Key and value must match.
    #[default]
    Equal,
    /// Key must exist (any value).
    Exists,
}

/// Taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum TaintEffectConfig {
    /// Not scheduled without a toleration.
    NoSchedule,
    /// Avoided without a toleration.
    PreferNoSchedule,
    /// Evicted without a toleration.
    NoExecute,
}

/// PriorityClass names per queue level.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrioritiesConfig {
    /// For high jobs.
    #[serde(default = "PriorityClassNames::default_high")]
    pub high: PriorityClassNames,
    /// For normal jobs.
    #[serde(default = "PriorityClassNames::default_normal")]
    pub normal: PriorityClassNames,
}

impl Default for PrioritiesConfig {
    fn default() -> Self {
        Self {
            high: PriorityClassNames::default_high(),
            normal: PriorityClassNames::default_normal(),
        }
    }
}

/// The classes set on driver and executor pods.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityClassNames {
    /// Driver pods (and executors unless `executor` is set).
    pub priority_class_name: String,
    /// Executor pods, when they should differ (e.g. preemptible executors, protected drivers).
    #[serde(default)]
    pub executor_priority_class_name: Option<String>,
}

impl PriorityClassNames {
    fn default_high() -> Self {
        Self {
            priority_class_name: "spark-high".into(),
            executor_priority_class_name: None,
        }
    }

    fn default_normal() -> Self {
        Self {
            priority_class_name: "spark-normal".into(),
            executor_priority_class_name: None,
        }
    }

    /// The class for executor pods.
    pub fn executor(&self) -> &str {
        self.executor_priority_class_name
            .as_deref()
            .unwrap_or(&self.priority_class_name)
    }
}

/// Defaults applied to jobs that leave a field out.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsConfig {
    /// Container image.
    #[serde(default)]
    pub image: Option<String>,
    /// Spark version of that image.
    #[serde(default)]
    pub spark_version: Option<String>,
    /// Application type.
    #[serde(default = "default_app_type", rename = "type")]
    pub app_type: AppType,
    /// Image pull policy.
    #[serde(default)]
    pub image_pull_policy: Option<PullPolicy>,
    /// Node type of drivers that do not say.
    #[serde(default)]
    pub driver_node_type: Option<String>,
    /// Node type of executors that do not say.
    #[serde(default)]
    pub executor_node_type: Option<String>,
    /// Executor count when a job gives neither instances nor dynamic allocation.
    #[serde(default = "default_instances")]
    pub executor_instances: u32,
    /// Time a job may wait to start.
    #[serde(default)]
    pub ttl: Option<JobDuration>,
    /// Retry policy.
    #[serde(default)]
    pub retry: RetryDefaults,
}

impl Default for DefaultsConfig {
    fn default() -> Self {
        Self {
            image: None,
            spark_version: None,
            app_type: default_app_type(),
            image_pull_policy: None,
            driver_node_type: None,
            executor_node_type: None,
            executor_instances: default_instances(),
            ttl: None,
            retry: RetryDefaults::default(),
        }
    }
}

fn default_app_type() -> AppType {
    AppType::Scala
}

fn default_instances() -> u32 {
    1
}

/// Default retry policy.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDefaults {
    /// Attempts in total.
    #[serde(default = "RetryDefaults::default_attempts")]
    pub max_attempts: u32,
    /// First delay.
    #[serde(default = "RetryDefaults::default_initial")]
    pub initial_backoff: JobDuration,
    /// Largest delay.
    #[serde(default = "RetryDefaults::default_max")]
    pub max_backoff: JobDuration,
    /// Growth per attempt.
    #[serde(default = "RetryDefaults::default_multiplier")]
    pub multiplier: f64,
}

impl RetryDefaults {
    fn default_attempts() -> u32 {
        3
    }
    fn default_initial() -> JobDuration {
        JobDuration(Duration::from_secs(30))
    }
    fn default_max() -> JobDuration {
        JobDuration(Duration::from_secs(600))
    }
    fn default_multiplier() -> f64 {
        2.0
    }

    /// As a job's policy.
    pub fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts,
            backoff: Backoff {
                initial: self.initial_backoff,
                max: self.max_backoff,
                multiplier: self.multiplier,
            },
        }
    }
}

impl Default for RetryDefaults {
    fn default() -> Self {
        Self {
            max_attempts: Self::default_attempts(),
            initial_backoff: Self::default_initial(),
            max_backoff: Self::default_max(),
            multiplier: Self::default_multiplier(),
        }
    }
}

/// Bounds on what a single job may ask for.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest message body accepted, in bytes.
    #[serde(default = "LimitsConfig::default_message_bytes")]
    pub max_message_bytes: usize,
    /// Most executors a job may ask for (instances or maxExecutors).
    #[serde(default = "LimitsConfig::default_executors")]
    pub max_executors: u32,
    /// Most attempts a retry policy may allow.
    #[serde(default = "LimitsConfig::default_attempts")]
    pub max_attempts: u32,
    /// Longest ttl.
    #[serde(default = "LimitsConfig::default_ttl")]
    pub max_ttl: JobDuration,
    /// Longest run timeout.
    #[serde(default = "LimitsConfig::default_timeout")]
    pub max_timeout: JobDuration,
}

impl LimitsConfig {
    fn default_message_bytes() -> usize {
        1024 * 1024
    }
    fn default_executors() -> u32 {
        1000
    }
    fn default_attempts() -> u32 {
        10
    }
    fn default_ttl() -> JobDuration {
        JobDuration(Duration::from_secs(30 * 24 * 3600))
    }
    fn default_timeout() -> JobDuration {
        JobDuration(Duration::from_secs(7 * 24 * 3600))
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: Self::default_message_bytes(),
            max_executors: Self::default_executors(),
            max_attempts: Self::default_attempts(),
            max_ttl: Self::default_ttl(),
            max_timeout: Self::default_timeout(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CatalogConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn omitted_sections_take_their_defaults() {
        let c = parse("[namespaces.a]\n").unwrap();
        assert!(c.node_types.is_empty());
        assert!(c.spot.is_none());
        assert_eq!(c.priorities.high.priority_class_name, "spark-high");
        assert_eq!(c.priorities.normal.priority_class_name, "spark-normal");
        assert_eq!(c.defaults.app_type, AppType::Scala);
        assert_eq!(c.defaults.executor_instances, 1);
        assert_eq!(c.defaults.ttl, None);
        let r = c.defaults.retry;
        assert_eq!(
            (
                r.max_attempts,
                r.initial_backoff,
                r.max_backoff,
                r.multiplier
            ),
            (
                3,
                JobDuration(Duration::from_secs(30)),
                JobDuration(Duration::from_secs(600)),
                2.0
            )
        );
        let l = c.limits;
        assert_eq!(
            (l.max_message_bytes, l.max_executors, l.max_attempts),
            (1024 * 1024, 1000, 10)
        );
        assert_eq!(l.max_ttl, JobDuration(Duration::from_secs(30 * 24 * 3600)));
        assert_eq!(
            l.max_timeout,
            JobDuration(Duration::from_secs(7 * 24 * 3600))
        );
    }

    #[test]
    fn a_partly_given_section_keeps_the_other_defaults() {
        let c = parse(
            "[namespaces.a]\n[defaults.retry]\nmax_attempts = 5\n[limits]\nmax_executors = 7\n",
        )
        .unwrap();
        assert_eq!(c.defaults.retry.max_attempts, 5);
        assert_eq!(c.defaults.retry.multiplier, 2.0);
        assert_eq!(c.limits.max_executors, 7);
        assert_eq!(c.limits.max_attempts, 10);
    }

    #[test]
    fn executor_priority_class_falls_back_to_the_driver_class() {
        for (executor, want) in [(None, "drivers"), (Some("preemptible"), "preemptible")] {
            let names = PriorityClassNames {
                priority_class_name: "drivers".into(),
                executor_priority_class_name: executor.map(Into::into),
            };
            assert_eq!(names.executor(), want);
        }
    }

    #[test]
    fn retry_defaults_become_a_job_policy() {
        let d = RetryDefaults {
            max_attempts: 4,
            initial_backoff: JobDuration(Duration::from_secs(5)),
            max_backoff: JobDuration(Duration::from_secs(50)),
            multiplier: 1.5,
        };
        assert_eq!(
            d.policy(),
            RetryPolicy {
                max_attempts: 4,
                backoff: Backoff {
                    initial: d.initial_backoff,
                    max: d.max_backoff,
                    multiplier: 1.5,
                },
            }
        );
    }

    #[test]
    fn placements_and_tolerations_are_strict_too() {
        let ok = parse(
            r#"
            [namespaces.a]
            [node_types.s]
            cpu = "1"
            memory = "4g"
            tolerations = [{ key = "gpu", operator = "Exists", effect = "NoExecute", toleration_seconds = 60 }]
            "#,
        )
        .unwrap();
        let t = &ok.node_types["s"].tolerations[0];
        assert_eq!(t.operator, TolerationOperator::Exists);
        assert_eq!(t.effect, Some(TaintEffectConfig::NoExecute));
        assert_eq!(t.toleration_seconds, Some(60));
        for bad in [
            "[namespaces.a]\n[spot]\nnode_selectors = {}\n",
            "[namespaces.a]\n[spot]\ntolerations = [{ key = \"k\", efect = \"NoSchedule\" }]\n",
            "[namespaces.a]\n[spot]\ntolerations = [{ key = \"k\", effect = \"Sometimes\" }]\n",
            "[namespaces.a]\n[spot]\ntolerations = [{ operator = \"exists\" }]\n",
            "[namespaces.a]\n[priorities.high]\nexecutor_priority_class_name = \"x\"\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
