//! The job message as publishers write it, described as types so its JSON Schema (2020-12,
//! `schemas/job.schema.json`, served at `GET /v1/schema/job`) and the OpenAPI document's
//! `JobMessage` are generated from code rather than written by hand.
//!
//! These types carry the rules a JSON Schema can state — required fields, types, enums, name
//! patterns, lengths, item and entry counts, bounds that do not depend on the config, and
//! `additionalProperties: false` wherever [`crate::validate::parse_job`] refuses unknown
//! fields. What depends on the config (served namespaces, node types, limits, defaults) or
//! spans fields (node type *or* explicit size, reserved `sparkConf` keys, URI schemes) is
//! checked by `parse_job` only. So the schema is never stricter than the validator: a message
//! the schema refuses is always refused, one it accepts may still be refused by the config's
//! rules (the API answers `422` then, `400` when the schema already refuses it).
//!
//! The validator reads JSON by hand to report every problem at once; these types deserialize
//! too (strictly), which the tests use to hold the two together.

#![allow(
    unused_qualifications,
    reason = "utoipa's ToSchema derive expands `Option<T>` fields to qualified paths"
)]

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use super::{AppType, Deps, Priority, PullPolicy};

/// No control characters (what `parse_job` calls `invalid-character`).
pub const NO_CONTROL: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// The message version; only `v1` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
pub enum ApiVersion {
    /// The first and only version.
    #[serde(rename = "v1")]
    V1,
}

/// A Spark job request: the body of an AMQP message or of `POST /v1/jobs`. Fields left out
/// take the config's defaults (`image`, `sparkVersion`, `type`, `driver`, `executor`,
/// `retry`, `ttl`); `null` is the same as leaving a field out.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(
    title = "Spark job message v1",
    examples(json!({
        "apiVersion": "v1",
        "name": "spark-pi",
        "namespace": "team-a",
        "type": "Scala",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
        "arguments": ["1000"],
        "driver": {"nodeType": "small"},
        "executor": {"nodeType": "small", "instances": 2}
    }))
)]
pub struct JobMessage {
    /// Message version.
    pub api_version: ApiVersion,
    /// Idempotency key: the same id never runs twice. Generated (UUID v7) when absent; the nil
    /// UUID is refused.
    #[schema(format = Uuid)]
    pub id: Option<Uuid>,
    /// The job's name (a DNS label, at most 53 characters: it names Kubernetes objects).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 53
    )]
    pub name: String,
    /// A namespace the orchestrator serves (its config's `[namespaces]`).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub namespace: String,
    /// Queue level (default `normal`, or the AMQP queue's level).
    pub priority: Option<Priority>,
    /// Application language (default: the config's `defaults.type`).
    #[serde(rename = "type")]
    pub app_type: Option<AppType>,
    /// Container image reference (default: the config's `defaults.image`).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x20\x7F-\x9F]*$"
    )]
    pub image: Option<String>,
    /// Image pull policy.
    pub image_pull_policy: Option<PullPolicy>,
    /// Names of pull Secrets in the job's namespace (DNS subdomains).
    #[schema(max_items = 16, value_type = Option<Vec<SecretName>>)]
    pub image_pull_secrets: Option<Vec<String>>,
    /// The program: `local:///…`, `s3a://…`, `https://…` (no whitespace or commas).
    #[schema(
        min_length = 1,
        max_length = 4096,
        pattern = r"^[^\x00-\x20\x7F-\x9F,]*$"
    )]
    pub main_application_file: String,
    /// Entry class (dotted Java identifier), JVM types only.
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub main_class: Option<String>,
    /// Program arguments.
    #[schema(max_items = 1000, value_type = Option<Vec<FreeText>>)]
    pub arguments: Option<Vec<String>>,
    /// Spark version of the image, like `3.5.3` (default: the config's `defaults.spark_version`).
    #[schema(
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub spark_version: Option<String>,
    /// Extra Spark settings (keys start with `spark.`). Keys the orchestrator derives from
    /// structured fields (memory, cores, instances, image, …) are refused with the field to use.
    #[schema(schema_with = spark_conf_schema)]
    pub spark_conf: Option<BTreeMap<String, String>>,
    /// Hadoop settings (become `spark.hadoop.*`).
    #[schema(schema_with = hadoop_conf_schema)]
    pub hadoop_conf: Option<BTreeMap<String, String>>,
    /// Environment variables of driver and executors (names `[A-Za-z_][A-Za-z0-9_]*`).
    #[schema(schema_with = env_schema)]
    pub env: Option<BTreeMap<String, String>>,
    /// Extra JVM options of driver and executors; `-Xmx`/`-Xms` are refused (set memory).
    #[schema(max_length = 8192, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub java_options: Option<String>,
    /// Jars, files and packages spark-submit fetches.
    pub deps: Option<Deps>,
    /// The driver's size (default: the config's `defaults.driver_node_type`).
    pub driver: Option<DriverMessage>,
    /// The executors' size and count (defaults: `defaults.executor_node_type`,
    /// `defaults.executor_instances`).
    pub executor: Option<ExecutorMessage>,
    /// Run executors on spot capacity (refused when no spot placement is configured).
    pub spot: Option<bool>,
    /// Kubernetes labels on the application and its pods (label keys and values; Kubernetes,
    /// Spark, Spark Operator and `spark-orchestrator.dev/` keys are reserved).
    #[schema(schema_with = tags_schema)]
    pub tags: Option<BTreeMap<String, String>>,
    /// Kubernetes annotations on the application (same key rules as `tags`).
    #[schema(schema_with = annotations_schema)]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Volumes mounted at the same path in driver and executors.
    #[schema(max_items = 32)]
    pub volumes: Option<Vec<VolumeMessage>>,
    /// How failed attempts are retried (missing parts come from `defaults.retry`).
    pub retry: Option<RetryMessage>,
    /// Give up (dead letter `expired`) if not started within this long (`90s`, `15m`, `2h30m`,
    /// `7d`); at most the config's `limits.max_ttl`.
    #[schema(value_type = Option<DurationText>)]
    pub ttl: Option<String>,
    /// Give up if not finished by this time (RFC 3339).
    #[schema(format = DateTime, max_length = 64)]
    pub deadline: Option<String>,
    /// Stop the application if it runs longer than this; at most `limits.max_timeout`.
    #[schema(value_type = Option<DurationText>)]
    pub timeout: Option<String>,
}

/// A Secret name (DNS subdomain).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(
    pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    min_length = 1,
    max_length = 253
)]
pub struct SecretName(pub String);

/// Free text without control characters (each argument at most 64 KiB).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(max_length = 65536, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
pub struct FreeText(pub String);

/// An entry of `deps`: a URI, a Maven coordinate or a repository URL (at most 4 KiB).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(
    min_length = 1,
    max_length = 4096,
    pattern = r"^[^\x00-\x1F\x7F-\x9F]*$"
)]
pub struct DepEntry(pub String);

/// A setting's value: text without control characters other than tab and line breaks.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(
    max_length = 65536,
    pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
)]
pub struct ConfText(pub String);

/// A Kubernetes label value: empty, or at most 63 of `[A-Za-z0-9_.-]` starting and ending
/// with a letter or digit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(
    max_length = 63,
    pattern = "^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
)]
pub struct LabelValue(pub String);

/// A duration written the human way: `90s`, `15m`, `2h30m`, `7d`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
pub struct DurationText(pub String);

/// CPU, Kubernetes style: a number of cores (`2`, `0.5`) or a string (`"2"`, `"500m"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CpuAmount {
    /// Cores.
    Cores(f64),
    /// Cores or millicores as text.
    Text(String),
}

/// Built by hand: the derive cannot put bounds on an untagged variant's value.
impl PartialSchema for CpuAmount {
    fn schema() -> RefOr<Schema> {
        let number = ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(0));
        let text = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(64))
            .pattern(Some(NO_CONTROL));
        OneOfBuilder::new()
            .item(number)
            .item(text)
            .description(Some(
                "CPU: cores as a number (2, 0.5) or a string (\"2\", \"500m\"); 0.1 to 256.",
            ))
            .into()
    }
}

impl ToSchema for CpuAmount {}

/// Memory, Spark style, always with a unit: `512m`, `2g` (binary), `2Gi`, `1.5g`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
pub struct MemoryAmount(pub String);

/// The driver pod's size: `{"nodeType": …}` (a node type of the config) or explicit
/// `{"cores": …, "memory": …, "memoryOverhead"?: …}` (`memory` is the JVM heap), not both.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DriverMessage {
    /// A node type defined in the config.
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub node_type: Option<String>,
    /// Explicit cores (0.1–256), with `memory`.
    pub cores: Option<CpuAmount>,
    /// Explicit JVM heap (32Mi–4Ti), with `cores`.
    pub memory: Option<MemoryAmount>,
    /// Overrides Spark's computed memory overhead.
    pub memory_overhead: Option<MemoryAmount>,
}

/// The executors: a size as for the driver, plus `instances` **or** `dynamicAllocation`
/// (count default: the config's `defaults.executor_instances`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorMessage {
    /// A node type defined in the config.
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub node_type: Option<String>,
    /// Explicit cores (0.1–256), with `memory`.
    pub cores: Option<CpuAmount>,
    /// Explicit JVM heap (32Mi–4Ti), with `cores`.
    pub memory: Option<MemoryAmount>,
    /// Overrides Spark's computed memory overhead.
    pub memory_overhead: Option<MemoryAmount>,
    /// A fixed number of executors (1 to the config's `limits.max_executors`).
    #[schema(minimum = 1)]
    pub instances: Option<u32>,
    /// Spark dynamic allocation bounds instead of `instances`.
    pub dynamic_allocation: Option<DynamicAllocationMessage>,
}

/// Spark dynamic allocation: `minExecutors ≤ initialExecutors ≤ maxExecutors ≤
/// limits.max_executors`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicAllocationMessage {
    /// Lower bound (default 0).
    pub min_executors: Option<u32>,
    /// Executors at start (default `minExecutors`).
    pub initial_executors: Option<u32>,
    /// Upper bound.
    #[schema(minimum = 1)]
    pub max_executors: u32,
}

/// A volume: `name`, `mountPath`, `readOnly`, and exactly one source (`hostPath` is refused).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMessage {
    /// DNS label, unique in the job.
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    pub name: String,
    /// Absolute path in the containers, unique in the job.
    #[schema(pattern = "^/", max_length = 1024)]
    pub mount_path: String,
    /// Mount read-only (default false).
    pub read_only: Option<bool>,
    /// Scratch space living as long as the pod.
    pub empty_dir: Option<EmptyDirMessage>,
    /// An existing claim in the job's namespace.
    pub persistent_volume_claim: Option<ClaimMessage>,
    /// A ConfigMap in the job's namespace.
    pub config_map: Option<ConfigMapMessage>,
    /// A Secret in the job's namespace.
    pub secret: Option<SecretMessage>,
}

/// `emptyDir`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirMessage {
    /// Size limit (memory amount).
    pub size_limit: Option<MemoryAmount>,
    /// `"Memory"` for a tmpfs (counted against the container's memory), else `""`.
    #[schema(schema_with = medium_schema)]
    pub medium: Option<EmptyDirMedium>,
}

/// Where an `emptyDir` lives (its schema is [`medium_schema`]: the derive drops the empty name).
#[derive(Debug, Clone, Copy, Deserialize)]
pub enum EmptyDirMedium {
    /// The node's disk.
    #[serde(rename = "")]
    Disk,
    /// A tmpfs.
    Memory,
}

fn medium_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([Value::from(""), Value::from("Memory"), Value::Null]))
        .description(Some(
            "`\"Memory\"` for a tmpfs (counted against the container's memory), else `\"\"`.",
        ))
        .into()
}

/// `persistentVolumeClaim`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimMessage {
    /// The claim's name (a DNS subdomain).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        min_length = 1,
        max_length = 253
    )]
    pub claim_name: String,
}

/// `configMap`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapMessage {
    /// The ConfigMap's name (a DNS subdomain).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        min_length = 1,
        max_length = 253
    )]
    pub name: String,
}

/// `secret`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretMessage {
    /// The Secret's name (a DNS subdomain).
    #[schema(
        pattern = "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        min_length = 1,
        max_length = 253
    )]
    pub secret_name: String,
}

/// `retry`: `1 ≤ maxAttempts ≤ limits.max_attempts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryMessage {
    /// Attempts in total, the first included (1 = never retry).
    #[schema(minimum = 1)]
    pub max_attempts: Option<u32>,
    /// Delay between attempts.
    pub backoff: Option<BackoffMessage>,
}

/// Exponential backoff with jitter: `1s ≤ initial ≤ max ≤ 24h`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackoffMessage {
    /// First delay.
    pub initial: Option<DurationText>,
    /// Largest delay.
    pub max: Option<DurationText>,
    /// Growth per attempt.
    #[schema(minimum = 1, maximum = 10)]
    pub multiplier: Option<f64>,
}

/// Label keys: `[prefix/]name`, the prefix a DNS subdomain.
const LABEL_KEY: &str = "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";

/// A nullable object of strings: at most `max` entries, keys matching `keys` (at most
/// `key_len` characters), values as `value`. (Maps need a hand-built schema: the derive has
/// no `maxProperties` or `propertyNames` for fields.)
fn string_map(max: usize, keys: &str, key_len: usize, value: RefOr<Schema>) -> Schema {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(keys))
        .max_length(Some(key_len));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(value))
        .property_names(Some(key))
        .max_properties(Some(max))
        .into()
}

fn spark_conf_schema() -> Schema {
    string_map(
        500,
        r"^spark\.[^\x00-\x20=\x7F-\x9F]*$",
        256,
        ConfText::schema(),
    )
}

fn hadoop_conf_schema() -> Schema {
    string_map(500, r"^[^\x00-\x20=\x7F-\x9F]+$", 256, ConfText::schema())
}

fn env_schema() -> Schema {
    string_map(200, "^[A-Za-z_][A-Za-z0-9_]*$", 256, ConfText::schema())
}

fn tags_schema() -> Schema {
    string_map(64, LABEL_KEY, 317, LabelValue::schema())
}

fn annotations_schema() -> Schema {
    string_map(64, LABEL_KEY, 317, ConfText::schema())
}

/// Where the API serves the JSON Schema of the job message.
pub const JOB_SCHEMA_PATH: &str = "/v1/schema/job";

/// The schema's `$id`: a stable name, not a download location (each daemon serves it at
/// [`JOB_SCHEMA_PATH`]).
pub const JOB_SCHEMA_ID: &str = "https://spark-orchestrator.dev/schemas/job/v1";

/// The JSON Schema (2020-12) of the job message: [`JobMessage`] at the root, every type it
/// uses under `$defs`. The same schemas appear in the OpenAPI document's components.
pub fn job_schema() -> Value {
    let mut defs = Vec::new();
    <JobMessage as ToSchema>::schemas(&mut defs);
    let mut root = to_value(&<JobMessage as PartialSchema>::schema());
    let defs: serde_json::Map<String, Value> = defs
        .into_iter()
        .map(|(name, schema)| (name, to_value(&schema)))
        .collect();
    if let Value::Object(map) = &mut root {
        let mut head = serde_json::Map::new();
        head.insert(
            "$schema".into(),
            "https://json-schema.org/draft/2020-12/schema".into(),
        );
        head.insert("$id".into(), JOB_SCHEMA_ID.into());
        head.extend(std::mem::take(map));
        head.insert("$defs".into(), Value::Object(defs));
        *map = head;
    }
    root
}

/// A utoipa schema as JSON, its component references pointing at `$defs`.
fn to_value(schema: &RefOr<Schema>) -> Value {
    let mut v = serde_json::to_value(schema).unwrap_or(Value::Null);
    rewrite_refs(&mut v);
    v
}

/// Points `#/components/schemas/…` references at `#/$defs/…`, turning OpenAPI component
/// schemas into a standalone JSON Schema.
pub fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "$ref"
                    && let Value::String(s) = child
                    && let Some(name) = s.strip_prefix("#/components/schemas/")
                {
                    *s = format!("#/$defs/{name}");
                } else {
                    rewrite_refs(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_has_exactly_the_fields_the_validator_reads() {
        let schema = job_schema();
        let mut properties: Vec<&str> = schema["properties"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut fields = crate::validate::rules::TOP_FIELDS.to_vec();
        properties.sort_unstable();
        fields.sort_unstable();
        assert_eq!(properties, fields);
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(
            schema["required"],
            serde_json::json!(["apiVersion", "name", "namespace", "mainApplicationFile"])
        );
    }
}
