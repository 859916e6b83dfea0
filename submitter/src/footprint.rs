//! Job → the pods Spark will create, sized exactly as Spark sizes them. The SparkApplication
//! emitter and the capacity demand both read this one computation, so what we ask the cluster
//! to hold is what Spark will request.
//!
//! Spark's rule (Apache Spark `BasicDriverFeatureStep`/`BasicExecutorFeatureStep`,
//! `ResourceProfile`): pod memory = heap + overhead (+ off-heap and PySpark memory for
//! executors), overhead = `memoryOverhead` if set, else `max(factor × heap, minimum)` with
//! factor 0.1 for JVM applications and 0.4 for Python/R unless configured, minimum 384 MiB.
//! A node type fixes the pod's total instead: we derive the heap and pin the overhead
//! explicitly so that the pod comes out at exactly the node type's memory.

use std::collections::BTreeMap;

use capacity::{PodDemand, PodRole, Resources, TaintEffect, Toleration};
use jobs::Catalog;
use jobs::catalog::{NodeSelection, TaintEffectConfig, TolerationConfig, TolerationOperator};
use jobs::model::{AppType, Job, Resources as JobResources};
use jobs::quantity::{CpuMillis, MemoryBytes, parse_memory};

const MIB: u64 = 1024 * 1024;
/// Spark's default overhead floor (`ResourceProfile.MEMORY_OVERHEAD_MIN_MIB`).
const MIN_OVERHEAD_MIB: u64 = 384;
/// Spark refuses heaps below 450 MiB (1.5 × its 300 MiB reserved memory).
const MIN_HEAP_MIB: u64 = 450;

/// Annotation the orchestrator sets on a job (never the publisher: the domain is reserved) when
/// an attempt's executors were killed for memory: the next attempt's executor memory grows by it.
pub const EXECUTOR_MEMORY_FACTOR: &str = "spark-orchestrator.dev/executor-memory-factor";
/// The same for the driver.
pub const DRIVER_MEMORY_FACTOR: &str = "spark-orchestrator.dev/driver-memory-factor";

/// The memory growth the orchestrator applied to a role after out-of-memory failures (1.0 when
/// none): bounded so a corrupt value cannot ask for the moon.
pub fn memory_factor(job: &Job, annotation: &str) -> f64 {
    job.annotations
        .get(annotation)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .map_or(1.0, |f| f.clamp(1.0, crate::app_status::OOM_GROWTH_CAP))
}

/// Why a job cannot be sized (its node type leaves no heap once the extras are counted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FootprintError(pub String);

/// One role's size, in the units Spark and Kubernetes use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSize {
    /// `spark.*.cores`: whole cores, at least 1.
    pub cores: u64,
    /// The pod's CPU request (`coreRequest`).
    pub core_request: CpuMillis,
    /// JVM heap in MiB (`memory`).
    pub heap_mib: u64,
    /// Overhead in MiB (`memoryOverhead`), pinned explicitly when derived from a node type.
    pub overhead_mib: u64,
    /// Whether the overhead must be written out (`memoryOverhead`) or Spark derives the same.
    pub explicit_overhead: bool,
    /// Off-heap and PySpark memory in MiB (executors only).
    pub extra_mib: u64,
    /// Where the pod may run.
    pub placement: NodeSelection,
    /// PriorityClass of the pod.
    pub priority_class: String,
}

impl RoleSize {
    /// The pod's memory request (= limit) in MiB.
    pub fn pod_memory_mib(&self) -> u64 {
        self.heap_mib + self.overhead_mib + self.extra_mib
    }

    /// The pod's requests.
    pub fn requests(&self) -> Resources {
        Resources {
            cpu_millis: self.core_request.0,
            memory_bytes: self.pod_memory_mib() * MIB,
            pods: 1,
        }
    }

    fn demand(&self, role: PodRole, priorities: &BTreeMap<String, i32>) -> PodDemand {
        PodDemand {
            role,
            requests: self.requests(),
            node_selector: self.placement.node_selector.clone(),
            tolerations: self
                .placement
                .tolerations
                .iter()
                .map(capacity_toleration)
                .collect(),
            priority: priorities.get(&self.priority_class).copied().unwrap_or(0),
        }
    }
}

/// A job's pods: one driver, `executors` executors to start with, up to `max_executors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// The driver.
    pub driver: RoleSize,
    /// One executor.
    pub executor: RoleSize,
    /// Executors needed to make progress (the gang).
    pub executors: u32,
}

impl Footprint {
    /// Sizes a job's pods.
    pub fn of(job: &Job, catalog: &Catalog) -> Result<Self, FootprintError> {
        let classes = catalog.priority_classes(job.priority);
        let driver = role_size(
            job,
            catalog,
            &job.driver.resources,
            Role::Driver,
            classes.priority_class_name.clone(),
        )?;
        let executor = role_size(
            job,
            catalog,
            &job.executor.resources,
            Role::Executor,
            classes.executor().to_owned(),
        )?;
        Ok(Self {
            driver,
            executor,
            executors: job.executor.scaling.required(),
        })
    }

    /// Everything the job holds while it runs with its required executors.
    pub fn total(&self) -> Resources {
        let executors = self.executor.requests();
        (0..self.executors).fold(self.driver.requests(), |acc, _| {
            acc.saturating_add(&executors)
        })
    }

    /// The capacity demand: the driver, then the required executors. `pod_labels` must match
    /// the labels the application's pods will carry.
    pub fn gang(
        &self,
        key: String,
        namespace: &str,
        pod_labels: BTreeMap<String, String>,
        priorities: &BTreeMap<String, i32>,
    ) -> capacity::GangDemand {
        let mut pods = vec![self.driver.demand(PodRole::Driver, priorities)];
        pods.extend(
            (0..self.executors).map(|_| self.executor.demand(PodRole::Executor, priorities)),
        );
        capacity::GangDemand {
            key,
            namespace: namespace.to_owned(),
            pod_labels,
            pods,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Driver,
    Executor,
}

impl Role {
    fn conf(self) -> &'static str {
        match self {
            Role::Driver => "driver",
            Role::Executor => "executor",
        }
    }
}

fn role_size(
    job: &Job,
    catalog: &Catalog,
    resources: &JobResources,
    role: Role,
    priority_class: String,
) -> Result<RoleSize, FootprintError> {
    let factor = overhead_factor(job, role);
    let growth = memory_factor(
        job,
        if role == Role::Executor {
            EXECUTOR_MEMORY_FACTOR
        } else {
            DRIVER_MEMORY_FACTOR
        },
    );
    let grow = |mib: u64| (mib as f64 * growth).ceil() as u64;
    let min_overhead = min_overhead_mib(job, role);
    let extra_mib = if role == Role::Executor {
        executor_extra_mib(job)
    } else {
        0
    };
    let spot = role == Role::Executor && job.spot;
    match resources {
        JobResources::NodeType(name) => {
            let t = catalog.node_type(name).ok_or_else(|| {
                FootprintError(format!("node type {name:?} is no longer defined"))
            })?;
            // After an out-of-memory failure the pod outgrows its node type, deliberately.
            let total = grow(t.memory.ceil_mib());
            let available = total.saturating_sub(extra_mib);
            // The smallest overhead Spark would accept for the heap that fills the rest.
            let overhead =
                min_overhead.max(((available as f64) * factor / (1.0 + factor)).ceil() as u64);
            let heap = available.saturating_sub(overhead);
            if heap < MIN_HEAP_MIB {
                return Err(FootprintError(format!(
                    "node type {name:?} ({}) leaves {heap} MiB of heap for the {} after {overhead} MiB overhead and {extra_mib} MiB off-heap/PySpark memory; Spark needs at least {MIN_HEAP_MIB} MiB",
                    t.memory,
                    role.conf()
                )));
            }
            let placement = match spot.then(|| catalog.spot_placement(Some(name))).flatten() {
                Some(spot) => spot.clone(),
                None => NodeSelection {
                    node_selector: t.node_selector.clone(),
                    tolerations: t.tolerations.clone(),
                },
            };
            Ok(RoleSize {
                cores: t.cpu.ceil_cores(),
                core_request: t.cpu,
                heap_mib: heap,
                overhead_mib: overhead,
                explicit_overhead: true,
                extra_mib,
                placement,
                priority_class,
            })
        }
        JobResources::Explicit {
            cores,
            memory,
            memory_overhead,
        } => {
            let heap = grow(memory.ceil_mib());
            let (overhead, explicit) = match memory_overhead {
                Some(o) => (grow(o.ceil_mib()), true),
                None => (
                    min_overhead.max((factor * heap as f64).floor() as u64),
                    false,
                ),
            };
            let placement = if spot {
                catalog.spot_placement(None).cloned().unwrap_or_default()
            } else {
                NodeSelection::default()
            };
            Ok(RoleSize {
                cores: cores.ceil_cores(),
                core_request: *cores,
                heap_mib: heap,
                overhead_mib: overhead,
                // A non-default minimum (Spark 4's minMemoryOverhead) is passed through
                // sparkConf; pinning the value keeps old and new Sparks identical.
                explicit_overhead: explicit || min_overhead != MIN_OVERHEAD_MIB,
                extra_mib,
                placement,
                priority_class,
            })
        }
    }
}

/// Spark's overhead factor for a role: the role's own setting, else the Kubernetes-wide one,
/// else 0.1 for JVM and 0.4 for Python/R applications.
fn overhead_factor(job: &Job, role: Role) -> f64 {
    let conf = |k: &str| {
        job.spark_conf
            .get(k)
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    conf(&format!("spark.{}.memoryOverheadFactor", role.conf()))
        .or_else(|| conf("spark.kubernetes.memoryOverheadFactor"))
        .unwrap_or(if job.app_type.is_jvm() { 0.1 } else { 0.4 })
}

/// Spark 4 makes the 384 MiB floor configurable; older versions ignore the setting.
fn min_overhead_mib(job: &Job, role: Role) -> u64 {
    let spark4 = job
        .spark_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|m| m >= 4);
    let key = format!("spark.{}.minMemoryOverhead", role.conf());
    match job
        .spark_conf
        .get(&key)
        .filter(|_| spark4)
        .and_then(|v| parse_memory(v).ok())
    {
        Some(m) => m.ceil_mib(),
        None => MIN_OVERHEAD_MIB,
    }
}

/// Off-heap memory (when enabled) and PySpark worker memory (Python applications).
fn executor_extra_mib(job: &Job) -> u64 {
    let mib = |k: &str| {
        job.spark_conf
            .get(k)
            .and_then(|v| parse_memory(v).ok())
            .map_or(0, MemoryBytes::ceil_mib)
    };
    let off_heap = if job
        .spark_conf
        .get("spark.memory.offHeap.enabled")
        .is_some_and(|v| v == "true")
    {
        mib("spark.memory.offHeap.size")
    } else {
        0
    };
    let pyspark = if job.app_type == AppType::Python {
        mib("spark.executor.pyspark.memory")
    } else {
        0
    };
    off_heap + pyspark
}

fn capacity_toleration(t: &TolerationConfig) -> Toleration {
    Toleration {
        key: t.key.clone(),
        exists: t.operator == TolerationOperator::Exists,
        value: t.value.clone(),
        effect: t.effect.map(|e| match e {
            TaintEffectConfig::NoSchedule => TaintEffect::NoSchedule,
            TaintEffectConfig::PreferNoSchedule => TaintEffect::PreferNoSchedule,
            TaintEffectConfig::NoExecute => TaintEffect::NoExecute,
        }),
    }
}
