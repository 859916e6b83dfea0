//! `sparkConf`'s `spark.driver.memoryOverhead` and `spark.executor.memoryOverhead`: Spark users
//! set them by habit, and they mean exactly what the structured `memoryOverhead` field means.
//! So they are folded into it: the value moves from `sparkConf` to the role's explicit
//! resources, where the footprint (capacity demand = pod requests) and the emitted
//! SparkApplication read it — one source of truth, never two values that could disagree.
//! Where the structured field would be refused (with a `nodeType`, which fixes the pod's memory
//! overhead included) or is also set, the key gives `conflicting-fields`.

use std::collections::BTreeMap;

use super::resources::{MAX_MEMORY, Pods};
use crate::model::Resources;
use crate::quantity::parse_memory;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, JsonPath};

/// The keys, with the role each sizes.
pub(super) const KEYS: [(&str, &str); 2] = [
    ("spark.driver.memoryOverhead", "driver"),
    ("spark.executor.memoryOverhead", "executor"),
];

/// Moves each key's amount into its role's `memoryOverhead`; reports bad amounts and
/// conflicts at the key. `pods` is `None` when the pods part had problems of its own: the
/// amounts are still checked.
pub(super) fn fold(
    ctx: &mut Ctx<'_>,
    spark_conf: &mut BTreeMap<String, String>,
    mut pods: Option<&mut Pods>,
) {
    for (key, role) in KEYS {
        let Some(value) = spark_conf.remove(key) else {
            continue;
        };
        let at = JsonPath::root().key("sparkConf").key(key);
        let amount = match parse_memory(&value) {
            Ok(m) if m <= MAX_MEMORY => m,
            Ok(m) => {
                ctx.push(
                    P::OutOfRange,
                    &at,
                    format!("{m} is out of range: it must be at most {MAX_MEMORY}"),
                );
                continue;
            }
            Err(e) => {
                ctx.push(P::InvalidQuantity, &at, e.to_string());
                continue;
            }
        };
        let Some(pods) = pods.as_deref_mut() else {
            continue;
        };
        let resources = if role == "driver" {
            &mut pods.driver.resources
        } else {
            &mut pods.executor.resources
        };
        match resources {
            Resources::NodeType(name) => ctx.push(
                P::ConflictingFields,
                &at,
                format!(
                    "{key} cannot be combined with the {role}'s node type {name:?}: it fixes the pod's memory, overhead included; give {role}.cores and {role}.memory to size the pod yourself"
                ),
            ),
            Resources::Explicit {
                memory_overhead: Some(_),
                ..
            } => ctx.push(
                P::ConflictingFields,
                &at,
                format!("{key} and {role}.memoryOverhead set the same thing; keep one"),
            ),
            Resources::Explicit {
                memory_overhead, ..
            } => *memory_overhead = Some(amount),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::conf::conf;
    use super::super::resources::pods;
    use super::super::testing::{problems_at, run};
    use super::*;
    use crate::quantity::{CpuMillis, MemoryBytes};

    /// A name, the job fields, the resources after folding, the keys left, the problems.
    type Case<'a> = (
        &'a str,
        Value,
        Option<(Resources, Resources)>,
        Vec<&'a str>,
        Vec<(P, &'a str)>,
    );

    /// The driver's and executor's resources after folding, and what stays in `sparkConf`.
    type Folded = (Option<(Resources, Resources)>, Vec<String>);

    fn folded(value: &Value) -> (Folded, super::super::testing::Problems) {
        run(value, |ctx, obj| {
            let mut conf = conf(ctx, obj);
            let mut pods = pods(ctx, obj);
            fold(ctx, &mut conf.spark_conf, pods.as_mut());
            (
                pods.map(|p| (p.driver.resources, p.executor.resources)),
                conf.spark_conf.into_keys().collect(),
            )
        })
    }

    fn explicit(cores: u64, memory_mib: u64, overhead_mib: Option<u64>) -> Resources {
        Resources::Explicit {
            cores: CpuMillis(cores * 1000),
            memory: MemoryBytes::from_mib(memory_mib),
            memory_overhead: overhead_mib.map(MemoryBytes::from_mib),
        }
    }

    #[test]
    fn the_keys_fold_into_the_structured_field_or_conflict_with_it() {
        let small = || Resources::NodeType("small".into());
        let sized = json!({"cores": 1, "memory": "2g"});
        let cases: Vec<Case<'_>> = vec![
            (
                "executor key folds, other keys stay",
                json!({"driver": sized, "executor": sized, "sparkConf": {
                    "spark.executor.memoryOverhead": "512m", "spark.sql.shuffle.partitions": "8"}}),
                Some((explicit(1, 2048, None), explicit(1, 2048, Some(512)))),
                vec!["spark.sql.shuffle.partitions"],
                vec![],
            ),
            (
                "both keys fold",
                json!({"driver": sized, "executor": sized, "sparkConf": {
                    "spark.driver.memoryOverhead": "1g", "spark.executor.memoryOverhead": "384m"}}),
                Some((explicit(1, 2048, Some(1024)), explicit(1, 2048, Some(384)))),
                vec![],
                vec![],
            ),
            (
                "structured field too",
                json!({"driver": sized, "executor": {"cores": 1, "memory": "2g", "memoryOverhead": "1g"},
                    "sparkConf": {"spark.executor.memoryOverhead": "512m"}}),
                Some((explicit(1, 2048, None), explicit(1, 2048, Some(1024)))),
                vec![],
                vec![(
                    P::ConflictingFields,
                    "$.sparkConf[\"spark.executor.memoryOverhead\"]",
                )],
            ),
            (
                "a node type fixes the pod (the driver's here is the catalog default)",
                json!({"executor": sized, "sparkConf": {"spark.driver.memoryOverhead": "512m"}}),
                Some((small(), explicit(1, 2048, None))),
                vec![],
                vec![(
                    P::ConflictingFields,
                    "$.sparkConf[\"spark.driver.memoryOverhead\"]",
                )],
            ),
            (
                "not an amount",
                json!({"driver": sized, "executor": sized, "sparkConf": {"spark.executor.memoryOverhead": "lots"}}),
                Some((explicit(1, 2048, None), explicit(1, 2048, None))),
                vec![],
                vec![(
                    P::InvalidQuantity,
                    "$.sparkConf[\"spark.executor.memoryOverhead\"]",
                )],
            ),
            (
                "too large",
                json!({"driver": sized, "executor": sized, "sparkConf": {"spark.executor.memoryOverhead": "5000000g"}}),
                Some((explicit(1, 2048, None), explicit(1, 2048, None))),
                vec![],
                vec![(
                    P::OutOfRange,
                    "$.sparkConf[\"spark.executor.memoryOverhead\"]",
                )],
            ),
            (
                "checked even when the pods are wrong",
                json!({"executor": {"cores": 1}, "sparkConf": {"spark.executor.memoryOverhead": "-1g"}}),
                None,
                vec![],
                vec![
                    (P::MissingField, "$.executor.memory"),
                    (
                        P::InvalidQuantity,
                        "$.sparkConf[\"spark.executor.memoryOverhead\"]",
                    ),
                ],
            ),
        ];
        for (name, value, resources, kept, problems) in cases {
            let ((got, left), found) = folded(&value);
            assert_eq!(found, problems_at(&problems), "{name}");
            assert_eq!(got, resources, "{name}");
            assert_eq!(left, kept, "{name}");
        }
    }
}
