//! The job message: what publishers send (AMQP body or HTTP body) and what the store keeps.
//!
//! These types are the *normalised* job: every default applied, every value checked. Untrusted
//! bytes never deserialize straight into them; they go through [`crate::validate::parse_job`],
//! which reports every problem at once. The serde derives (strict, camelCase) are for our own
//! round trips: the job store, the verdict sent back, the `validate` command's output.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::duration::JobDuration;

use crate::retry::RetryPolicy;

pub mod message;
mod resources;
mod volume;

pub use message::{JOB_SCHEMA_ID, JOB_SCHEMA_PATH, JobMessage, NO_CONTROL, job_schema};
pub use resources::{DriverSpec, DynamicAllocation, ExecutorScaling, ExecutorSpec, Resources};
pub use volume::{Volume, VolumeSource};

/// The only message version this build understands.
pub const API_VERSION: &str = "v1";

/// A job's identity and idempotency key: the same id twice never runs twice.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, format = Uuid)]
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
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deps {
    /// `--jars`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub jars: Vec<String>,
    /// `--files`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub files: Vec<String>,
    /// `--py-files`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub py_files: Vec<String>,
    /// `--archives`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub archives: Vec<String>,
    /// `--packages` (Maven coordinates `group:artifact:version`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub packages: Vec<String>,
    /// `--exclude-packages` (`group:artifact`)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 1000, nullable, value_type = Vec<message::DepEntry>)]
    pub exclude_packages: Vec<String>,
    /// `--repositories`
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100, nullable, value_type = Vec<message::DepEntry>)]
    pub repositories: Vec<String>,
}

impl Deps {
    /// True when no dependency is listed.
    pub fn is_empty(&self) -> bool {
        self == &Deps::default()
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
}
