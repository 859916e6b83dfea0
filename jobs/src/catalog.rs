//! The catalog: what the orchestrator serves and what jobs may ask for, set by admins in the
//! config file — namespaces (with quota or weight), node types, priority classes, job defaults
//! and limits.
//!
//! Parsing is strict (unknown keys are errors) and checking reports every problem with the
//! dotted key it concerns, e.g. `node_types.small.cpu`. A [`Catalog`] only exists once checked.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::JobDuration;
use crate::model::{AppType, Priority, PullPolicy};
use crate::names;
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

/// One thing wrong in the config, and the dotted key it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// Dotted key, e.g. `node_types.small.cpu`.
    pub key: String,
    /// What is wrong, for humans.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.key, self.message)
    }
}

/// A checked catalog: every name valid, every reference resolved, every bound sane.
#[derive(Debug, Clone)]
pub struct Catalog {
    config: CatalogConfig,
}

impl Catalog {
    /// Checks the config and reports every problem found.
    pub fn new(config: CatalogConfig) -> Result<Self, Vec<ConfigProblem>> {
        let problems = check(&config);
        if problems.is_empty() {
            Ok(Self { config })
        } else {
            Err(problems)
        }
    }

    /// The config it was built from.
    pub fn config(&self) -> &CatalogConfig {
        &self.config
    }

    /// A served namespace.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceConfig> {
        self.config.namespaces.get(name)
    }

    /// Names of the served namespaces, sorted.
    pub fn namespace_names(&self) -> impl Iterator<Item = &str> {
        self.config.namespaces.keys().map(String::as_str)
    }

    /// A node type.
    pub fn node_type(&self, name: &str) -> Option<&NodeTypeConfig> {
        self.config.node_types.get(name)
    }

    /// Node type names, sorted.
    pub fn node_type_names(&self) -> impl Iterator<Item = &str> {
        self.config.node_types.keys().map(String::as_str)
    }

    /// PriorityClass names for a level.
    pub fn priority_classes(&self, priority: Priority) -> &PriorityClassNames {
        match priority {
            Priority::High => &self.config.priorities.high,
            Priority::Normal => &self.config.priorities.normal,
        }
    }

    /// Job defaults.
    pub fn defaults(&self) -> &DefaultsConfig {
        &self.config.defaults
    }

    /// Job limits.
    pub fn limits(&self) -> &LimitsConfig {
        &self.config.limits
    }

    /// Spot placement for executors of a node type (`None` for explicit resources), falling
    /// back to the catalog-wide spot placement.
    pub fn spot_placement(&self, node_type: Option<&str>) -> Option<&NodeSelection> {
        node_type
            .and_then(|n| self.node_type(n))
            .and_then(|t| t.spot.as_ref())
            .or(self.config.spot.as_ref())
    }
}

fn check(config: &CatalogConfig) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let mut problem = |key: String, message: String| problems.push(ConfigProblem { key, message });

    if config.namespaces.is_empty() {
        problem("namespaces".into(), "serve at least one namespace".into());
    }
    for (name, ns) in &config.namespaces {
        let key = format!("namespaces.{name}");
        if let Err(why) = names::check_dns_label(name) {
            problem(
                key.clone(),
                format!("{name:?} is not a Kubernetes namespace name: {why}"),
            );
        }
        if let Some(w) = ns.weight
            && !(w.is_finite() && w > 0.0 && w <= 1e6)
        {
            problem(
                format!("{key}.weight"),
                format!("weight must be a positive number up to 1000000, not {w}"),
            );
        }
        if let Some(q) = ns.quota
            && (q.cpu.0 == 0 || q.memory.0 == 0)
        {
            problem(
                format!("{key}.quota"),
                "quota cpu and memory must be greater than zero".into(),
            );
        }
        if ns.max_pending == Some(0) {
            problem(
                format!("{key}.max_pending"),
                "max_pending must be at least 1".into(),
            );
        }
    }

    for (name, t) in &config.node_types {
        let key = format!("node_types.{name}");
        if let Err(why) = names::check_dns_label(name) {
            problem(
                key.clone(),
                format!("node type name {name:?} is invalid: {why}"),
            );
        }
        if t.cpu.0 == 0 {
            problem(format!("{key}.cpu"), "cpu must be greater than zero".into());
        }
        // Spark adds at least 384 MiB overhead; a smaller pod leaves no heap at all.
        if t.memory < MemoryBytes::from_mib(512) {
            problem(
                format!("{key}.memory"),
                format!(
                    "memory {} is too small: a Spark pod needs at least 512m (384m of it is Spark's overhead floor)",
                    t.memory
                ),
            );
        }
        check_placement(&mut problem, &key, &t.node_selector, &t.tolerations);
        if let Some(spot) = &t.spot {
            check_placement(
                &mut problem,
                &format!("{key}.spot"),
                &spot.node_selector,
                &spot.tolerations,
            );
        }
    }
    if let Some(spot) = &config.spot {
        check_placement(&mut problem, "spot", &spot.node_selector, &spot.tolerations);
    }

    for (level, classes) in [
        ("high", &config.priorities.high),
        ("normal", &config.priorities.normal),
    ] {
        let key = format!("priorities.{level}");
        if let Err(why) = names::check_dns_subdomain(&classes.priority_class_name) {
            problem(
                format!("{key}.priority_class_name"),
                format!("not a PriorityClass name: {why}"),
            );
        }
        if let Some(e) = &classes.executor_priority_class_name
            && let Err(why) = names::check_dns_subdomain(e)
        {
            problem(
                format!("{key}.executor_priority_class_name"),
                format!("not a PriorityClass name: {why}"),
            );
        }
    }

    let d = &config.defaults;
    if let Some(image) = &d.image
        && let Err(why) = names::check_image(image)
    {
        problem("defaults.image".into(), why);
    }
    if let Some(v) = &d.spark_version
        && let Err(why) = names::check_spark_version(v)
    {
        problem("defaults.spark_version".into(), why);
    }
    for (field, node_type) in [
        ("driver_node_type", &d.driver_node_type),
        ("executor_node_type", &d.executor_node_type),
    ] {
        if let Some(n) = node_type
            && !config.node_types.contains_key(n)
        {
            problem(
                format!("defaults.{field}"),
                format!("unknown node type {n:?} (define it under [node_types])"),
            );
        }
    }
    let limits = &config.limits;
    if d.executor_instances == 0 || d.executor_instances > limits.max_executors {
        problem(
            "defaults.executor_instances".into(),
            format!(
                "must be between 1 and limits.max_executors ({})",
                limits.max_executors
            ),
        );
    }
    if let Some(ttl) = d.ttl
        && (ttl.0.is_zero() || ttl > limits.max_ttl)
    {
        problem(
            "defaults.ttl".into(),
            format!(
                "must be positive and at most limits.max_ttl ({})",
                limits.max_ttl
            ),
        );
    }
    let r = &d.retry;
    if r.max_attempts == 0 || r.max_attempts > limits.max_attempts {
        problem(
            "defaults.retry.max_attempts".into(),
            format!(
                "must be between 1 and limits.max_attempts ({})",
                limits.max_attempts
            ),
        );
    }
    if let Err((field, why)) = r.policy().backoff.check() {
        problem(format!("defaults.retry.{}", backoff_key(field)), why);
    }

    if limits.max_message_bytes < 1024 || limits.max_message_bytes > 64 * 1024 * 1024 {
        problem(
            "limits.max_message_bytes".into(),
            "must be between 1024 and 67108864".into(),
        );
    }
    if limits.max_executors == 0 {
        problem("limits.max_executors".into(), "must be at least 1".into());
    }
    if limits.max_attempts == 0 || limits.max_attempts > 100 {
        problem(
            "limits.max_attempts".into(),
            "must be between 1 and 100".into(),
        );
    }
    problems
}

fn backoff_key(field: &str) -> &'static str {
    match field {
        "initial" => "initial_backoff",
        "max" => "max_backoff",
        _ => "multiplier",
    }
}

fn check_placement(
    problem: &mut impl FnMut(String, String),
    key: &str,
    selector: &BTreeMap<String, String>,
    tolerations: &[TolerationConfig],
) {
    for (k, v) in selector {
        if let Err(why) = names::check_label_key(k) {
            problem(
                format!("{key}.node_selector.{k}"),
                format!("invalid label key: {why}"),
            );
        }
        if let Err(why) = names::check_label_value(v) {
            problem(
                format!("{key}.node_selector.{k}"),
                format!("invalid label value {v:?}: {why}"),
            );
        }
    }
    for (i, t) in tolerations.iter().enumerate() {
        let tkey = format!("{key}.tolerations[{i}]");
        match (t.operator, &t.key, &t.value) {
            (TolerationOperator::Exists, _, Some(_)) => {
                problem(tkey.clone(), "operator Exists takes no value".into())
            }
            (TolerationOperator::Equal, None, _) => {
                problem(tkey.clone(), "operator Equal needs a key".into())
            }
            _ => {}
        }
        if let Some(k) = &t.key
            && let Err(why) = names::check_label_key(k)
        {
            problem(format!("{tkey}.key"), format!("invalid taint key: {why}"));
        }
        if t.toleration_seconds.is_some() && t.effect != Some(TaintEffectConfig::NoExecute) {
            problem(
                format!("{tkey}.toleration_seconds"),
                "only meaningful with effect NoExecute".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Catalog, Vec<ConfigProblem>> {
        let config: CatalogConfig = toml::from_str(text).map_err(|e| {
            vec![ConfigProblem {
                key: String::new(),
                message: e.to_string(),
            }]
        })?;
        Catalog::new(config)
    }

    const GOOD: &str = r#"
        [namespaces.team-a]
        quota = { cpu = "64", memory = "256Gi" }
        [namespaces.team-b]
        weight = 2.0
        [node_types.small]
        cpu = "1"
        memory = "4g"
        node_selector = { pool = "general" }
        spot = { node_selector = { pool = "spot" }, tolerations = [{ key = "spot", value = "true", effect = "NoSchedule" }] }
        [defaults]
        image = "apache/spark:3.5.3"
        spark_version = "3.5.3"
        driver_node_type = "small"
    "#;

    #[test]
    fn good_catalog_is_accepted_with_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(
            c.namespace_names().collect::<Vec<_>>(),
            ["team-a", "team-b"]
        );
        assert_eq!(c.node_type("small").unwrap().cpu, CpuMillis(1000));
        assert_eq!(
            c.priority_classes(Priority::High).priority_class_name,
            "spark-high"
        );
        assert_eq!(
            c.priority_classes(Priority::Normal).executor(),
            "spark-normal"
        );
        assert_eq!(c.defaults().retry.max_attempts, 3);
        assert_eq!(c.limits().max_message_bytes, 1024 * 1024);
        assert_eq!(
            c.spot_placement(Some("small")).unwrap().node_selector["pool"],
            "spot"
        );
        assert!(c.spot_placement(None).is_none());
    }

    #[test]
    fn every_semantic_problem_names_its_key() {
        let text = r#"
            [namespaces.Team_A]
            weight = -1.0
            [namespaces.ok]
            max_pending = 0
            [node_types.tiny]
            cpu = "0"
            memory = "100m"
            node_selector = { "bad key!" = "x" }
            tolerations = [{ operator = "Exists", value = "x" }, { effect = "NoSchedule" }]
            [priorities.high]
            priority_class_name = "Not_Valid"
            [defaults]
            image = "has space"
            spark_version = "three"
            driver_node_type = "missing"
            executor_instances = 0
            retry = { max_attempts = 0, initial_backoff = "0s", multiplier = 0.5 }
            [limits]
            max_message_bytes = 10
        "#;
        let problems = parse(text).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "namespaces.Team_A",
            "namespaces.Team_A.weight",
            "namespaces.ok.max_pending",
            "node_types.tiny.cpu",
            "node_types.tiny.memory",
            "node_types.tiny.node_selector.bad key!",
            "node_types.tiny.tolerations[0]",
            "node_types.tiny.tolerations[1]",
            "priorities.high.priority_class_name",
            "defaults.image",
            "defaults.spark_version",
            "defaults.driver_node_type",
            "defaults.executor_instances",
            "defaults.retry.max_attempts",
            "defaults.retry.initial_backoff",
            "limits.max_message_bytes",
        ] {
            assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_are_parse_errors() {
        let err = toml::from_str::<CatalogConfig>("[namespaces.a]\nwieght = 1.0\n").unwrap_err();
        assert!(err.to_string().contains("wieght"), "{err}");
        let err = toml::from_str::<CatalogConfig>(
            "[namespaces.a]\n[node_types.s]\ncpu = \"lots\"\nmemory = \"1g\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid cpu quantity"), "{err}");
        assert!(
            parse("[limits]\n").unwrap_err()[0]
                .message
                .contains("namespaces")
        );
    }

    #[test]
    fn empty_namespace_list_is_refused() {
        let problems = parse("namespaces = {}\n").unwrap_err();
        assert_eq!(problems[0].key, "namespaces");
    }
}
