//! How big the pods are: `driver` and `executor` (a catalog node type or explicit cpu and
//! memory, within bounds), the executor count (`instances` or `dynamicAllocation`) and `spot`.

use super::fields::{in_bounds, memory_amount, quantity};
use crate::model::{DriverSpec, DynamicAllocation, ExecutorScaling, ExecutorSpec, Resources};
use crate::quantity::{CpuMillis, MemoryBytes, parse_cpu};
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, Obj};

/// Smallest and largest amounts a single pod may ask for.
const MIN_CPU: CpuMillis = CpuMillis(100);
const MAX_CPU: CpuMillis = CpuMillis(256_000);
const MIN_MEMORY: MemoryBytes = MemoryBytes::from_mib(32);
pub(super) const MAX_MEMORY: MemoryBytes = MemoryBytes::from_mib(4 * 1024 * 1024);

/// The pods part of a job.
#[derive(Debug, PartialEq)]
pub(super) struct Pods {
    pub(super) driver: DriverSpec,
    pub(super) executor: ExecutorSpec,
    pub(super) spot: bool,
}

/// Driver, executor and spot, all checked before any is given up on.
pub(super) fn pods(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Pods> {
    let defaults = ctx.catalog.defaults();
    let driver = role(ctx, obj, "driver", defaults.driver_node_type.as_deref())
        .map(|(resources, _)| DriverSpec { resources });
    let executor = role(ctx, obj, "executor", defaults.executor_node_type.as_deref()).map(
        |(resources, scaling)| ExecutorSpec {
            resources,
            scaling: scaling.unwrap_or(ExecutorScaling::Instances(defaults.executor_instances)),
        },
    );
    let spot = spot(ctx, obj, executor.as_ref());
    Some(Pods {
        driver: driver?,
        executor: executor?,
        spot,
    })
}

/// `spot`, checked against the placements the catalog has for the executor's node type.
fn spot(ctx: &mut Ctx<'_>, obj: &Obj<'_>, executor: Option<&ExecutorSpec>) -> bool {
    let spot = obj
        .get("spot")
        .and_then(|(v, at)| ctx.boolean(v, &at))
        .unwrap_or(false);
    if spot && let Some(exec) = executor {
        let node_type = match &exec.resources {
            Resources::NodeType(n) => Some(n.as_str()),
            Resources::Explicit { .. } => None,
        };
        if ctx.catalog.spot_placement(node_type).is_none() {
            let what = node_type.map_or("explicit executor resources".to_owned(), |n| {
                format!("node type {n:?}")
            });
            ctx.push(
                P::SpotUnavailable,
                &obj.path("spot"),
                format!("no spot placement is configured for {what}; ask an admin or drop spot"),
            );
        }
    }
    spot
}

/// `driver` or `executor`: a node type or explicit amounts, and for executors their count.
fn role(
    ctx: &mut Ctx<'_>,
    parent: &Obj<'_>,
    key: &str,
    default_type: Option<&str>,
) -> Option<(Resources, Option<ExecutorScaling>)> {
    let is_executor = key == "executor";
    let Some((value, path)) = parent.get(key) else {
        return match default_type {
            Some(t) => Some((Resources::NodeType(t.to_owned()), None)),
            None => {
                ctx.push(
                    P::MissingField,
                    &parent.path(key),
                    format!("{key} is required: give nodeType, or cores and memory"),
                );
                None
            }
        };
    };
    let fields: &[&str] = if is_executor {
        &[
            "nodeType",
            "cores",
            "memory",
            "memoryOverhead",
            "instances",
            "dynamicAllocation",
        ]
    } else {
        &["nodeType", "cores", "memory", "memoryOverhead"]
    };
    let obj = ctx.object(value, &path, fields, &[])?;
    let resources = resources(ctx, &obj, key, default_type);
    let scaling = if is_executor {
        scaling(ctx, &obj)?
    } else {
        None
    };
    Some((resources?, scaling))
}

/// A node type, or explicit cores and memory (never both).
fn resources(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    role: &str,
    default_type: Option<&str>,
) -> Option<Resources> {
    let node_type = obj.get("nodeType").and_then(|(v, at)| {
        let n = ctx.string(v, &at, 63, false)?;
        if ctx.catalog.node_type(n).is_some() {
            return Some(n.to_owned());
        }
        let known: Vec<&str> = ctx.catalog.node_type_names().collect();
        ctx.push(
            P::UnknownNodeType,
            &at,
            format!(
                "node type {n:?} is not defined; defined node types: {}",
                known.join(", ")
            ),
        );
        None
    });
    let explicit_keys = ["cores", "memory", "memoryOverhead"];
    if obj.has("nodeType") {
        for k in explicit_keys.iter().filter(|k| obj.has(k)) {
            ctx.push(
                P::ConflictingFields,
                &obj.path(k),
                format!(
                    "{k} cannot be combined with nodeType: the node type fixes the {role}'s size"
                ),
            );
        }
        return node_type.map(Resources::NodeType);
    }
    if !explicit_keys.iter().any(|k| obj.has(k)) {
        return match default_type {
            Some(t) => Some(Resources::NodeType(t.to_owned())),
            None => {
                ctx.push(
                    P::MissingField,
                    &obj.path("nodeType"),
                    format!("the {role} needs a size: give nodeType, or cores and memory"),
                );
                None
            }
        };
    }
    let cores = match obj.get("cores") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("cores"),
                "cores is required with memory (or use nodeType)",
            );
            None
        }
        Some((v, at)) => quantity(ctx, v, &at, "cores", |s| parse_cpu(s).map(|c| c.0))
            .and_then(|m| in_bounds(ctx, &at, CpuMillis(m), MIN_CPU, MAX_CPU)),
    };
    let memory = match obj.get("memory") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("memory"),
                "memory is required with cores (or use nodeType)",
            );
            None
        }
        Some((v, at)) => {
            memory_amount(ctx, v, &at).and_then(|m| in_bounds(ctx, &at, m, MIN_MEMORY, MAX_MEMORY))
        }
    };
    let overhead = match obj.get("memoryOverhead") {
        None => Some(None),
        Some((v, at)) => memory_amount(ctx, v, &at)
            .and_then(|m| in_bounds(ctx, &at, m, MemoryBytes(0), MAX_MEMORY))
            .map(Some),
    };
    Some(Resources::Explicit {
        cores: cores?,
        memory: memory?,
        memory_overhead: overhead?,
    })
}

/// `Some(None)`: neither given (the default count applies).
fn scaling(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Option<ExecutorScaling>> {
    let max = ctx.catalog.limits().max_executors;
    if obj.has("instances") && obj.has("dynamicAllocation") {
        ctx.push(
            P::ConflictingFields,
            &obj.path("dynamicAllocation"),
            "give either instances or dynamicAllocation, not both",
        );
        return None;
    }
    if let Some((v, at)) = obj.get("instances") {
        return ctx
            .integer(v, &at, 1, max)
            .map(|n| Some(ExecutorScaling::Instances(n)));
    }
    let Some((v, at)) = obj.get("dynamicAllocation") else {
        return Some(None);
    };
    let da = ctx.object(
        v,
        &at,
        &["minExecutors", "maxExecutors", "initialExecutors"],
        &[],
    )?;
    let min = da
        .get("minExecutors")
        .map_or(Some(0), |(v, at)| ctx.integer(v, &at, 0, max));
    let max_e = match da.get("maxExecutors") {
        None => {
            ctx.push(
                P::MissingField,
                &da.path("maxExecutors"),
                "maxExecutors is required for dynamic allocation",
            );
            None
        }
        Some((v, at)) => ctx.integer(v, &at, 1, max),
    };
    let initial = da
        .get("initialExecutors")
        .map(|(v, at)| ctx.integer(v, &at, 0, max));
    let (min, max_e) = (min?, max_e?);
    let initial = match initial {
        None => None,
        Some(i) => Some(i?),
    };
    if min > max_e {
        ctx.push(
            P::OutOfRange,
            &da.path("minExecutors"),
            format!("minExecutors ({min}) must not exceed maxExecutors ({max_e})"),
        );
        return None;
    }
    if let Some(i) = initial
        && !(min..=max_e).contains(&i)
    {
        ctx.push(
            P::OutOfRange,
            &da.path("initialExecutors"),
            format!(
                "initialExecutors ({i}) must be between minExecutors ({min}) and maxExecutors ({max_e})"
            ),
        );
        return None;
    }
    Some(Some(ExecutorScaling::DynamicAllocation(
        DynamicAllocation {
            min_executors: min,
            max_executors: max_e,
            initial_executors: initial,
        },
    )))
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
