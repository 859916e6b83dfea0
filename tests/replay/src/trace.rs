//! The workload trace: JSON lines, one job per line, in submit order.
//!
//! ```json
//! {"at": 12.5, "name": "etl-0007", "namespace": "ns-03", "priority": "high",
//!  "driver": {"nodeType": "medium"},
//!  "executor": {"nodeType": "large", "instances": 4},
//!  "runtime": 900, "outcome": "Succeeded", "tag": "cron"}
//! ```
//!
//! `at` and `runtime` are simulated seconds. `driver` and `executor` use the job message's own
//! shapes (a catalog `nodeType`, or explicit `cores` + `memory`), and the executor count is
//! `instances` or a `dynamicAllocation` range, so a trace line maps one-to-one onto a job
//! message ([`TraceJob::job_message`]). Parsing is strict: a line that is not exactly this —
//! unknown fields, wrong types, numbers out of range, oversize lines — is refused with its line
//! number and what is wrong, never skipped.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Longest accepted line, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// Most jobs in one trace.
pub const MAX_JOBS: usize = 200_000;
/// Latest submit offset and longest runtime (simulated seconds): 30 days.
pub const MAX_SECONDS: f64 = 30.0 * 86_400.0;
/// Most executors one job may ask for.
pub const MAX_EXECUTORS: u32 = 1000;

/// Why a trace was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TraceError {
    /// A line is malformed or out of range.
    #[error("trace line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The trace as a whole is unusable.
    #[error("trace: {0}")]
    Trace(String),
}

/// Job priority, as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Business-critical.
    High,
    /// Everything else.
    Normal,
}

impl Priority {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Normal => "normal",
        }
    }
}

/// How the application ends (kube-sim's `kube-sim.dev/outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The driver exits 0.
    Succeeded,
    /// The driver exits 1.
    Failed,
}

/// A driver or executor size: a catalog node type, or explicit Spark amounts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodShape {
    /// Catalog node type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Explicit cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<f64>,
    /// Explicit heap (`4g`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Spark dynamic allocation bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DynamicAllocation {
    /// Lower bound.
    pub min_executors: u32,
    /// Upper bound.
    pub max_executors: u32,
    /// At start (default `min`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_executors: Option<u32>,
}

/// The executors: their size and how many.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutorShape {
    /// Catalog node type of one executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Explicit cores of one executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<f64>,
    /// Explicit heap of one executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Fixed count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Or a dynamic range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_allocation: Option<DynamicAllocation>,
}

impl ExecutorShape {
    /// The size of one executor.
    pub fn shape(&self) -> PodShape {
        PodShape {
            node_type: self.node_type.clone(),
            cores: self.cores,
            memory: self.memory.clone(),
        }
    }

    /// Executors the application starts with (and needs to make progress).
    pub fn required(&self) -> u32 {
        match (self.instances, self.dynamic_allocation) {
            (Some(n), _) => n,
            (None, Some(da)) => da.min_executors.max(da.initial_executors.unwrap_or(0)),
            (None, None) => 1,
        }
    }
}

/// One job of a trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TraceJob {
    /// Submit offset from the start of the replay, simulated seconds.
    pub at: f64,
    /// Job name (unique within the trace).
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Queue level.
    pub priority: Priority,
    /// Driver size.
    pub driver: PodShape,
    /// Executor size and count.
    pub executor: ExecutorShape,
    /// Work the application does with all its executors running, simulated seconds.
    pub runtime: f64,
    /// How it ends.
    pub outcome: Outcome,
    /// Where the line came from (`background`, `burst`, `cron`, `critical`, …), for analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

impl TraceJob {
    /// The job message this line stands for (the AMQP body), with the given id; kube-sim's
    /// annotations carry the runtime and outcome.
    pub fn job_message(&self, id: &str) -> Value {
        let shape = |s: &PodShape| {
            let mut v = serde_json::Map::new();
            if let Some(t) = &s.node_type {
                v.insert("nodeType".into(), json!(t));
            }
            if let Some(c) = s.cores {
                v.insert("cores".into(), json!(c));
            }
            if let Some(m) = &s.memory {
                v.insert("memory".into(), json!(m));
            }
            v
        };
        let mut executor = shape(&self.executor.shape());
        if let Some(n) = self.executor.instances {
            executor.insert("instances".into(), json!(n));
        }
        if let Some(da) = self.executor.dynamic_allocation {
            executor.insert("dynamicAllocation".into(), json!(da));
        }
        let outcome = match self.outcome {
            Outcome::Succeeded => "Succeeded",
            Outcome::Failed => "Failed",
        };
        json!({
            "apiVersion": "v1",
            "id": id,
            "name": self.name,
            "namespace": self.namespace,
            "priority": self.priority.as_str(),
            "mainClass": "org.apache.spark.examples.SparkPi",
            "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
            "driver": Value::Object(shape(&self.driver)),
            "executor": Value::Object(executor),
            "annotations": {
                "kube-sim.dev/runtime": format!("{}s", self.runtime.ceil().max(1.0) as u64),
                "kube-sim.dev/outcome": outcome,
            }
        })
    }

    fn check(&self) -> Result<(), String> {
        if !self.at.is_finite() || self.at < 0.0 || self.at > MAX_SECONDS {
            return Err(format!(
                "at: {} is not a submit offset between 0 and {MAX_SECONDS} seconds",
                self.at
            ));
        }
        if !self.runtime.is_finite() || self.runtime <= 0.0 || self.runtime > MAX_SECONDS {
            return Err(format!(
                "runtime: {} is not a duration between 0 (exclusive) and {MAX_SECONDS} seconds",
                self.runtime
            ));
        }
        check_name("name", &self.name, 53)?;
        check_name("namespace", &self.namespace, 63)?;
        check_shape("driver", &self.driver)?;
        check_shape("executor", &self.executor.shape())?;
        match (self.executor.instances, self.executor.dynamic_allocation) {
            (Some(_), Some(_)) => {
                return Err("executor: give instances or dynamicAllocation, not both".to_owned());
            }
            (None, None) => {
                return Err("executor: instances or dynamicAllocation is required".to_owned());
            }
            (Some(n), None) if n == 0 || n > MAX_EXECUTORS => {
                return Err(format!(
                    "executor.instances: {n} is not between 1 and {MAX_EXECUTORS}"
                ));
            }
            (None, Some(da)) => {
                let initial = da.initial_executors.unwrap_or(da.min_executors);
                if da.max_executors == 0
                    || da.max_executors > MAX_EXECUTORS
                    || da.min_executors > initial
                    || initial > da.max_executors
                {
                    return Err(format!(
                        "executor.dynamicAllocation: need 0 ≤ min ≤ initial ≤ max, 1 ≤ max ≤ \
                         {MAX_EXECUTORS}; got min {}, initial {initial}, max {}",
                        da.min_executors, da.max_executors
                    ));
                }
            }
            _ => {}
        }
        if let Some(tag) = &self.tag
            && (tag.len() > 64 || tag.chars().any(char::is_control))
        {
            return Err("tag: at most 64 printable characters".to_owned());
        }
        Ok(())
    }
}

fn check_name(field: &str, s: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: {:?} must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ and be at most {max} \
             characters",
            s.chars().take(80).collect::<String>()
        ))
    }
}

fn check_shape(field: &str, s: &PodShape) -> Result<(), String> {
    match (&s.node_type, s.cores, &s.memory) {
        (Some(t), None, None) => check_name(&format!("{field}.nodeType"), t, 63),
        (None, Some(c), Some(m)) => {
            if !c.is_finite() || c <= 0.0 || c > 1024.0 {
                return Err(format!("{field}.cores: {c} is not between 0 and 1024"));
            }
            if m.is_empty() || m.len() > 16 || !m.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "{field}.memory: {:?} is not an amount like 4g",
                    m.chars().take(20).collect::<String>()
                ));
            }
            Ok(())
        }
        _ => Err(format!(
            "{field}: give either nodeType, or cores and memory (not both)"
        )),
    }
}

/// Parses a whole trace (see the module docs). Blank lines are allowed; jobs must be in
/// non-decreasing `at` order and names unique.
pub fn parse(text: &str) -> Result<Vec<TraceJob>, TraceError> {
    let mut jobs = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut last_at = 0.0f64;
    for (i, line) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| TraceError::Line { line: n, message };
        if line.len() > MAX_LINE_BYTES {
            return Err(err(format!(
                "{} bytes; a line may have at most {MAX_LINE_BYTES}",
                line.len()
            )));
        }
        if jobs.len() == MAX_JOBS {
            return Err(TraceError::Trace(format!(
                "more than {MAX_JOBS} jobs; split the trace"
            )));
        }
        let job: TraceJob = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
        job.check().map_err(err)?;
        if job.at < last_at {
            return Err(err(format!(
                "at: {} is before the previous line's {last_at}; lines must be in submit order",
                job.at
            )));
        }
        last_at = job.at;
        if let Some(first) = names.insert(job.name.clone(), n) {
            return Err(err(format!(
                "name: {:?} is already used on line {first}",
                job.name
            )));
        }
        jobs.push(job);
    }
    if jobs.is_empty() {
        return Err(TraceError::Trace("no jobs".to_owned()));
    }
    Ok(jobs)
}

/// Reads and parses a trace file; bytes that are not UTF-8 are refused with their line.
pub fn read(path: &std::path::Path) -> Result<Vec<TraceJob>, TraceError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TraceError::Trace(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        TraceError::Line {
            line: upto.iter().filter(|&&b| b == b'\n').count() + 1,
            message: "not valid UTF-8".to_owned(),
        }
    })?;
    parse(&text)
}

/// Renders a trace as JSON lines.
pub fn render(jobs: &[TraceJob]) -> String {
    let mut out = String::new();
    for j in jobs {
        // Serializing plain data cannot fail.
        let line = serde_json::to_string(j).unwrap_or_default();
        let _ = writeln!(out, "{line}");
    }
    out
}

#[cfg(test)]
#[path = "trace_tests.rs"]
mod tests;
