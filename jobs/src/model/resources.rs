//! The driver's and executors' sizes and counts, and the flat wire shape they share.

use serde::{Deserialize, Serialize};

use crate::quantity::{CpuMillis, MemoryBytes};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
