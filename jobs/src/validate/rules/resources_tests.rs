//! Unit tests of the pod-size rules (a file of their own to keep `resources.rs` short).

use serde_json::json;

use super::super::testing::{bare_catalog, problems_at, run, run_in, table};
use super::*;
use crate::validate::MessageDefaults;

fn explicit(cores: u64, memory_mib: u64, overhead_mib: Option<u64>) -> Option<Resources> {
    Some(Resources::Explicit {
        cores: CpuMillis(cores),
        memory: MemoryBytes::from_mib(memory_mib),
        memory_overhead: overhead_mib.map(MemoryBytes::from_mib),
    })
}

fn node_type(n: &str) -> Option<Resources> {
    Some(Resources::NodeType(n.into()))
}

#[test]
fn a_size_is_a_node_type_or_explicit_amounts() {
    table(
        vec![
            (json!({"nodeType": "large"}), node_type("large"), &[]),
            (json!({}), node_type("small"), &[]),
            (
                json!({"cores": 2, "memory": "8g"}),
                explicit(2000, 8192, None),
                &[],
            ),
            (
                json!({"cores": "500m", "memory": "1g", "memoryOverhead": "512m"}),
                explicit(500, 1024, Some(512)),
                &[],
            ),
            (
                json!({"nodeType": "huge"}),
                None,
                &[(P::UnknownNodeType, "$.nodeType")],
            ),
            (
                // Reported; the value read is the node type (the problems refuse the job).
                json!({"nodeType": "small", "cores": 1, "memoryOverhead": "1g"}),
                node_type("small"),
                &[
                    (P::ConflictingFields, "$.cores"),
                    (P::ConflictingFields, "$.memoryOverhead"),
                ],
            ),
            (json!({"cores": 1}), None, &[(P::MissingField, "$.memory")]),
            (
                json!({"memory": "1g"}),
                None,
                &[(P::MissingField, "$.cores")],
            ),
            (
                json!({"memoryOverhead": "1g"}),
                None,
                &[(P::MissingField, "$.cores"), (P::MissingField, "$.memory")],
            ),
        ],
        |ctx, obj| resources(ctx, obj, "driver", Some("small")),
    );
}

#[test]
fn explicit_amounts_are_bounded() {
    table(
        vec![
            (
                json!({"cores": "100m", "memory": "32m"}),
                explicit(100, 32, None),
                &[],
            ),
            (
                json!({"cores": 256, "memory": "4096g"}),
                explicit(256_000, 4 * 1024 * 1024, None),
                &[],
            ),
            (
                json!({"cores": "99m", "memory": "1g"}),
                None,
                &[(P::OutOfRange, "$.cores")],
            ),
            (
                json!({"cores": 257, "memory": "1g"}),
                None,
                &[(P::OutOfRange, "$.cores")],
            ),
            (
                json!({"cores": 1, "memory": "31m"}),
                None,
                &[(P::OutOfRange, "$.memory")],
            ),
            (
                json!({"cores": 1, "memory": "4097g"}),
                None,
                &[(P::OutOfRange, "$.memory")],
            ),
            (
                json!({"cores": 1, "memory": "1g", "memoryOverhead": "4097g"}),
                None,
                &[(P::OutOfRange, "$.memoryOverhead")],
            ),
            (
                json!({"cores": -1, "memory": "1g"}),
                None,
                &[(P::InvalidQuantity, "$.cores")],
            ),
            (
                json!({"cores": 1, "memory": 1024}),
                None,
                &[(P::WrongType, "$.memory")],
            ),
            (
                json!({"cores": [1], "memory": "1g"}),
                None,
                &[(P::WrongType, "$.cores")],
            ),
        ],
        |ctx, obj| resources(ctx, obj, "executor", None),
    );
}

#[test]
fn without_a_default_a_size_is_required() {
    let (got, problems) = run(&json!({}), |ctx, obj| resources(ctx, obj, "executor", None));
    assert_eq!(
        (got, problems),
        (None, problems_at(&[(P::MissingField, "$.nodeType")]))
    );
}

#[test]
fn executor_count_is_instances_or_dynamic_allocation() {
    let dynamic = |min, max, initial| {
        Some(Some(ExecutorScaling::DynamicAllocation(
            DynamicAllocation {
                min_executors: min,
                max_executors: max,
                initial_executors: initial,
            },
        )))
    };
    table(
        vec![
            (json!({}), Some(None), &[]),
            (
                json!({"instances": 3}),
                Some(Some(ExecutorScaling::Instances(3))),
                &[],
            ),
            (
                json!({"dynamicAllocation": {"maxExecutors": 10}}),
                dynamic(0, 10, None),
                &[],
            ),
            (
                json!({"dynamicAllocation": {"minExecutors": 2, "maxExecutors": 10, "initialExecutors": 4}}),
                dynamic(2, 10, Some(4)),
                &[],
            ),
            (
                json!({"instances": 0}),
                None,
                &[(P::OutOfRange, "$.instances")],
            ),
            (
                json!({"instances": 101}),
                None,
                &[(P::OutOfRange, "$.instances")],
            ),
            (
                json!({"instances": "3"}),
                None,
                &[(P::WrongType, "$.instances")],
            ),
            (
                json!({"instances": 2, "dynamicAllocation": {"maxExecutors": 3}}),
                None,
                &[(P::ConflictingFields, "$.dynamicAllocation")],
            ),
            (
                json!({"dynamicAllocation": {}}),
                None,
                &[(P::MissingField, "$.dynamicAllocation.maxExecutors")],
            ),
            (
                json!({"dynamicAllocation": {"maxExecutors": 2, "minExecutors": 3}}),
                None,
                &[(P::OutOfRange, "$.dynamicAllocation.minExecutors")],
            ),
            (
                json!({"dynamicAllocation": {"maxExecutors": 5, "minExecutors": 2, "initialExecutors": 6}}),
                None,
                &[(P::OutOfRange, "$.dynamicAllocation.initialExecutors")],
            ),
            (
                json!({"dynamicAllocation": {"maxExecutors": 101}}),
                None,
                &[(P::OutOfRange, "$.dynamicAllocation.maxExecutors")],
            ),
            (
                json!({"dynamicAllocation": {"maxExecutors": 5, "enabled": true}}),
                dynamic(0, 5, None),
                &[(P::UnknownField, "$.dynamicAllocation.enabled")],
            ),
        ],
        scaling,
    );
}

#[test]
fn spot_needs_a_placement_for_the_executor() {
    let on = |resources: Resources| ExecutorSpec {
        resources,
        scaling: ExecutorScaling::Instances(1),
    };
    let small = on(Resources::NodeType("small".into()));
    let large = on(Resources::NodeType("large".into()));
    let sized = on(explicit(1000, 1024, None).unwrap());
    for (body, executor, want_problems) in [
        (json!({}), Some(&large), vec![]),
        (json!({"spot": false}), Some(&large), vec![]),
        (json!({"spot": true}), Some(&small), vec![]),
        (
            json!({"spot": true}),
            Some(&large),
            problems_at(&[(P::SpotUnavailable, "$.spot")]),
        ),
        (
            json!({"spot": true}),
            Some(&sized),
            problems_at(&[(P::SpotUnavailable, "$.spot")]),
        ),
        // An executor that failed its own checks is not blamed twice.
        (json!({"spot": true}), None, vec![]),
        (
            json!({"spot": "yes"}),
            Some(&small),
            problems_at(&[(P::WrongType, "$.spot")]),
        ),
    ] {
        let (_, problems) = run(&body, |ctx, obj| spot(ctx, obj, executor));
        assert_eq!(problems, want_problems, "{body} {executor:?}");
    }
}

#[test]
fn pods_apply_the_catalog_defaults() {
    let (got, problems) = run(&json!({"executor": {"nodeType": "large"}}), pods);
    assert_eq!(problems, vec![]);
    assert_eq!(
        got,
        Some(Pods {
            driver: DriverSpec {
                resources: Resources::NodeType("small".into())
            },
            executor: ExecutorSpec {
                resources: Resources::NodeType("large".into()),
                scaling: ExecutorScaling::Instances(1),
            },
            spot: false,
        })
    );
}

#[test]
fn pods_report_driver_then_executor_then_spot() {
    let (got, problems) = run_in(
        &bare_catalog(),
        MessageDefaults::default(),
        &json!({"driver": {"nodeType": "nope"}, "spot": true}),
        pods,
    );
    assert_eq!(got, None);
    assert_eq!(
        problems,
        problems_at(&[
            (P::UnknownNodeType, "$.driver.nodeType"),
            (P::MissingField, "$.executor"),
        ]),
        "spot is not blamed for a missing executor"
    );
    let (_, problems) = run(&json!({"driver": [], "executor": {"cores": 1}}), pods);
    assert_eq!(
        problems,
        problems_at(&[
            (P::WrongType, "$.driver"),
            (P::MissingField, "$.executor.memory"),
        ])
    );
}
