//! The job message: what publishers send (AMQP body or HTTP body) and what the store keeps.
//!
//! These types are the *normalised* job: every default applied, every value checked. Untrusted
//! bytes never deserialize straight into them; they go through [`crate::validate::parse_job`],
//! which reports every problem at once. The serde derives (strict, camelCase) are for our own
//! round trips: the job store, the verdict sent back, the `validate` command's output.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::quantity::{CpuMillis, MemoryBytes};

/// The only message version this build understands.
pub const API_VERSION: &str = "v1";

/// A job's identity and idempotency key: the same id twice never runs twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub Uuid);

impl JobId {
    /// A fresh, time-ordered id (UUID v7), so ids sort roughly by creation.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    /// Ten hex digits from the id's random tail: short and stable, for object names. (The head
    /// of a v7 id is its timestamp, shared by every job created in the same minute.)
    pub fn short(&self) -> String {
        let hex = self.0.simple().to_string();
        hex[hex.len() - 10..].to_owned()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// The two queue levels of every namespace.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Business-critical: considered before any normal job of any namespace.
    High,
    /// The default level.
    #[default]
    Normal,
}

impl Priority {
    /// Both levels, high first.
    pub const ALL: [Priority; 2] = [Priority::High, Priority::Normal];

    /// The wire name, also used in queue names and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "high" => Ok(Priority::High),
            "normal" => Ok(Priority::Normal),
            other => Err(format!(
                "unknown priority {other:?} (expected high or normal)"
            )),
        }
    }
}

/// The application language, as the Spark Operator names it; it decides Spark's memory overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppType {
    /// JVM application written in Scala.
    Scala,
    /// JVM application written in Java.
    Java,
    /// PySpark application (non-JVM memory overhead factor 0.4).
    Python,
    /// SparkR application (non-JVM memory overhead factor 0.4).
    R,
}

impl AppType {
    /// The wire and CRD name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Scala => "Scala",
            AppType::Java => "Java",
            AppType::Python => "Python",
            AppType::R => "R",
        }
    }

    /// Whether the main program runs in the JVM (Spark's overhead factor is 0.1 instead of 0.4).
    pub fn is_jvm(self) -> bool {
        matches!(self, AppType::Scala | AppType::Java)
    }
}

/// Kubernetes image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull when the node does not have the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

/// A validated job, normalised: defaults applied, ready to store and to submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Job {
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// Idempotency key; generated when the message had none.
    pub id: JobId,
    /// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, at most 53 characters.
    pub name: String,
    /// A namespace the orchestrator serves.
    pub namespace: String,
    /// Queue level.
    pub priority: Priority,
    /// Application language.
    #[serde(rename = "type")]
    pub app_type: AppType,
    /// Container image for driver and executors.
    pub image: String,
    /// Image pull policy, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// Names of pull secrets in the job's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// The program: `local:///…`, `s3a://…`, ….
    pub main_application_file: String,
    /// Entry class for JVM applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_class: Option<String>,
    /// Program arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Spark version of the image.
    pub spark_version: String,
    /// Extra `spark.*` settings (the footprint-defining ones are structured fields instead).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, String>,
    /// Hadoop settings (become `spark.hadoop.*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hadoop_conf: BTreeMap<String, String>,
    /// Environment variables for driver and executors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Extra JVM options for driver and executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_options: Option<String>,
    /// Jars, files, packages.
    #[serde(default, skip_serializing_if = "Deps::is_empty")]
    pub deps: Deps,
    /// Driver resources.
    pub driver: DriverSpec,
    /// Executor resources and count.
    pub executor: ExecutorSpec,
    /// Run executors on spot capacity (through the node type's spot placement).
    #[serde(default)]
    pub spot: bool,
    /// Labels on the SparkApplication and its pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Annotations on the SparkApplication.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Volumes mounted into driver and executors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// How failures are retried.
    pub retry: RetryPolicy,
    /// Give up (dead letter `expired`) if not started within this long after intake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<JobDuration>,
    /// Give up if not finished by this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// Stop the application if it runs longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<JobDuration>,
}

/// `deps`: what spark-submit fetches before the program starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deps {
    /// `--jars`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// `--files`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// `--py-files`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// `--archives`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub archives: Vec<String>,
    /// `--packages` (Maven coordinates `group:artifact:version`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<String>,
    /// `--exclude-packages` (`group:artifact`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_packages: Vec<String>,
    /// `--repositories`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
}

impl Deps {
    /// True when no dependency is listed.
    pub fn is_empty(&self) -> bool {
        self == &Deps::default()
    }
}

/// Where a pod's size comes from: an admin-defined node type, or explicit amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resources {
    /// A catalog node type: its cpu and memory are the pod's requests.
    NodeType(String),
    /// Spark-style amounts: `memory` is the JVM heap; Spark adds the overhead on top.
    Explicit {
        /// Cores (`spark.*.cores` rounds up; the pod requests exactly this).
        cores: CpuMillis,
        /// Heap (`spark.*.memory`).
        memory: MemoryBytes,
        /// Overrides Spark's computed overhead.
        memory_overhead: Option<MemoryBytes>,
    },
}

/// The driver pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoleWire", into = "RoleWire")]
pub struct DriverSpec {
    /// Its size.
    pub resources: Resources,
}

/// The executor pods: their size and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RoleWire", into = "RoleWire")]
pub struct ExecutorSpec {
    /// Size of one executor.
    pub resources: Resources,
    /// Fixed count or dynamic allocation.
    pub scaling: ExecutorScaling,
}

/// Executor count: fixed, or Spark dynamic allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorScaling {
    /// `executor.instances`
    Instances(u32),
    /// `executor.dynamicAllocation`
    DynamicAllocation(DynamicAllocation),
}

impl ExecutorScaling {
    /// Executors the application needs to make progress: the gang the capacity checker admits.
    /// For dynamic allocation that is `max(min, initial)`, as Spark starts `initialExecutors`.
    pub fn required(&self) -> u32 {
        match *self {
            ExecutorScaling::Instances(n) => n,
            ExecutorScaling::DynamicAllocation(da) => da.min_executors.max(da.initial()),
        }
    }
}

/// Spark dynamic allocation bounds; `min ≤ initial ≤ max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicAllocation {
    /// Lower bound (may be 0).
    pub min_executors: u32,
    /// Upper bound (at least 1).
    pub max_executors: u32,
    /// Executors at start; defaults to `min_executors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_executors: Option<u32>,
}

impl DynamicAllocation {
    /// Executors Spark starts with.
    pub fn initial(&self) -> u32 {
        self.initial_executors.unwrap_or(self.min_executors)
    }
}

/// The flat wire shape shared by `driver` and `executor` (`{"nodeType": "small", "instances": 2}`),
/// so the normalised job reads exactly like the message a publisher writes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cores: Option<CpuMillis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory: Option<MemoryBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    memory_overhead: Option<MemoryBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    instances: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dynamic_allocation: Option<DynamicAllocation>,
}

impl RoleWire {
    fn resources(&self) -> Result<Resources, String> {
        match (&self.node_type, self.cores, self.memory) {
            (Some(name), None, None) if self.memory_overhead.is_none() => {
                Ok(Resources::NodeType(name.clone()))
            }
            (None, Some(cores), Some(memory)) => Ok(Resources::Explicit {
                cores,
                memory,
                memory_overhead: self.memory_overhead,
            }),
            _ => Err(
                "give either nodeType, or cores and memory (with optional memoryOverhead)".into(),
            ),
        }
    }

    fn from_resources(resources: Resources) -> Self {
        match resources {
            Resources::NodeType(name) => RoleWire {
                node_type: Some(name),
                ..RoleWire::default()
            },
            Resources::Explicit {
                cores,
                memory,
                memory_overhead,
            } => RoleWire {
                cores: Some(cores),
                memory: Some(memory),
                memory_overhead,
                ..RoleWire::default()
            },
        }
    }
}

impl TryFrom<RoleWire> for DriverSpec {
    type Error = String;
    fn try_from(wire: RoleWire) -> Result<Self, String> {
        if wire.instances.is_some() || wire.dynamic_allocation.is_some() {
            return Err("the driver has no instances or dynamicAllocation".into());
        }
        Ok(DriverSpec {
            resources: wire.resources()?,
        })
    }
}

impl From<DriverSpec> for RoleWire {
    fn from(spec: DriverSpec) -> Self {
        RoleWire::from_resources(spec.resources)
    }
}

impl TryFrom<RoleWire> for ExecutorSpec {
    type Error = String;
    fn try_from(wire: RoleWire) -> Result<Self, String> {
        let scaling = match (wire.instances, wire.dynamic_allocation) {
            (Some(n), None) => ExecutorScaling::Instances(n),
            (None, Some(da)) => ExecutorScaling::DynamicAllocation(da),
            _ => return Err("give either instances or dynamicAllocation".into()),
        };
        Ok(ExecutorSpec {
            resources: wire.resources()?,
            scaling,
        })
    }
}

impl From<ExecutorSpec> for RoleWire {
    fn from(spec: ExecutorSpec) -> Self {
        let mut wire = RoleWire::from_resources(spec.resources);
        match spec.scaling {
            ExecutorScaling::Instances(n) => wire.instances = Some(n),
            ExecutorScaling::DynamicAllocation(da) => wire.dynamic_allocation = Some(da),
        }
        wire
    }
}

/// A volume mounted at the same path in driver and executors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "VolumeWire", into = "VolumeWire")]
pub struct Volume {
    /// DNS-1123 label, unique in the job.
    pub name: String,
    /// Absolute path in the containers.
    pub mount_path: String,
    /// Mount read-only.
    pub read_only: bool,
    /// What backs it.
    pub source: VolumeSource,
}

/// The allowed volume kinds. `hostPath` is deliberately absent: jobs must not reach into nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// Scratch space that lives as long as the pod (`emptyDir: {sizeLimit, medium}`).
    EmptyDir {
        /// Optional size limit.
        size_limit: Option<MemoryBytes>,
        /// `medium: "Memory"`: a tmpfs, counted against the container's memory.
        in_memory: bool,
    },
    /// An existing claim in the job's namespace (`persistentVolumeClaim: {claimName}`).
    PersistentVolumeClaim {
        /// Claim name.
        claim_name: String,
    },
    /// A ConfigMap in the job's namespace (`configMap: {name}`).
    ConfigMap {
        /// ConfigMap name.
        name: String,
    },
    /// A Secret in the job's namespace (`secret: {secretName}`).
    Secret {
        /// Secret name.
        secret_name: String,
    },
}

/// Volume wire shape, Kubernetes style: one source key beside `name` and `mountPath`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct VolumeWire {
    pub(crate) name: String,
    pub(crate) mount_path: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) read_only: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) empty_dir: Option<EmptyDirWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) persistent_volume_claim: Option<ClaimWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) config_map: Option<ConfigMapWire>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) secret: Option<SecretWire>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct EmptyDirWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) size_limit: Option<MemoryBytes>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) medium: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ClaimWire {
    pub(crate) claim_name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfigMapWire {
    pub(crate) name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct SecretWire {
    pub(crate) secret_name: String,
}

impl TryFrom<VolumeWire> for Volume {
    type Error = String;
    fn try_from(w: VolumeWire) -> Result<Self, String> {
        let mut sources = Vec::new();
        if let Some(e) = w.empty_dir {
            let in_memory = match e.medium.as_deref() {
                None | Some("") => false,
                Some("Memory") => true,
                Some(other) => {
                    return Err(format!(
                        "emptyDir medium {other:?} is not \"\" or \"Memory\""
                    ));
                }
            };
            sources.push(VolumeSource::EmptyDir {
                size_limit: e.size_limit,
                in_memory,
            });
        }
        if let Some(c) = w.persistent_volume_claim {
            sources.push(VolumeSource::PersistentVolumeClaim {
                claim_name: c.claim_name,
            });
        }
        if let Some(c) = w.config_map {
            sources.push(VolumeSource::ConfigMap { name: c.name });
        }
        if let Some(s) = w.secret {
            sources.push(VolumeSource::Secret {
                secret_name: s.secret_name,
            });
        }
        let source = match sources.len() {
            1 => sources.remove(0),
            _ => {
                return Err(
                    "give exactly one of emptyDir, persistentVolumeClaim, configMap, secret".into(),
                );
            }
        };
        Ok(Volume {
            name: w.name,
            mount_path: w.mount_path,
            read_only: w.read_only,
            source,
        })
    }
}

impl From<Volume> for VolumeWire {
    fn from(v: Volume) -> Self {
        let mut w = VolumeWire {
            name: v.name,
            mount_path: v.mount_path,
            read_only: v.read_only,
            ..VolumeWire::default()
        };
        match v.source {
            VolumeSource::EmptyDir {
                size_limit,
                in_memory,
            } => {
                w.empty_dir = Some(EmptyDirWire {
                    size_limit,
                    medium: in_memory.then(|| "Memory".to_owned()),
                })
            }
            VolumeSource::PersistentVolumeClaim { claim_name } => {
                w.persistent_volume_claim = Some(ClaimWire { claim_name })
            }
            VolumeSource::ConfigMap { name } => w.config_map = Some(ConfigMapWire { name }),
            VolumeSource::Secret { secret_name } => w.secret = Some(SecretWire { secret_name }),
        }
        w
    }
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

/// Exponential backoff: `initial × multiplier^(attempt-1)`, capped at `max`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// First delay.
    pub initial: JobDuration,
    /// Largest delay.
    pub max: JobDuration,
    /// Growth factor per attempt.
    pub multiplier: f64,
}

/// A duration written the human way (`90s`, `15m`, `2h30m`, `7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobDuration(pub Duration);

impl fmt::Display for JobDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl FromStr for JobDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim()).map(Self).map_err(|e| {
            format!("invalid duration {s:?}: {e} (write e.g. \"90s\", \"15m\", \"2h30m\", \"7d\")")
        })
    }
}

impl Serialize for JobDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_v7_and_ordered() {
        let a = JobId::generate();
        let b = JobId::generate();
        assert_eq!(a.0.get_version_num(), 7);
        assert!(a < b, "v7 ids sort by creation");
        assert_eq!(a.short().len(), 10);
        assert_ne!(
            a.short(),
            b.short(),
            "ids made in the same instant differ in their short form"
        );
        assert_eq!(a.to_string().parse::<JobId>().unwrap(), a);
    }

    #[test]
    fn scaling_required_executors() {
        assert_eq!(ExecutorScaling::Instances(3).required(), 3);
        let da = |min, initial, max| {
            ExecutorScaling::DynamicAllocation(DynamicAllocation {
                min_executors: min,
                max_executors: max,
                initial_executors: initial,
            })
        };
        assert_eq!(da(1, None, 10).required(), 1);
        assert_eq!(da(1, Some(4), 10).required(), 4);
        assert_eq!(da(0, None, 10).required(), 0);
    }

    #[test]
    fn durations_parse_and_print() {
        let d: JobDuration = "2h30m".parse().unwrap();
        assert_eq!(d.0, Duration::from_secs(9000));
        assert_eq!(d.to_string(), "2h 30m");
        assert!("soon".parse::<JobDuration>().unwrap_err().contains("90s"));
    }
}
