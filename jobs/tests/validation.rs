//! Every validation rule, table-driven: a valid base message, one change per case, and the
//! exact problem code and JSON path it must produce (or, for valid cases, the normalised
//! value it must yield). Plus property tests: no input makes the parser panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::time::Duration;

use jobs::duration::JobDuration;
use jobs::model::{ExecutorScaling, Resources, VolumeSource};
use jobs::quantity::{CpuMillis, MemoryBytes};
use jobs::{Catalog, CatalogConfig, Job, Priority, ProblemCode as P, parse_job};
use proptest::prelude::*;
use serde_json::{Value, json};

use cases::{CATALOG, base, catalog, invalid_cases, parse, with};
use test_support::cases;

#[test]
fn base_message_is_valid_and_normalised() {
    let job = parse(&base()).unwrap();
    assert_eq!(job.priority, Priority::Normal);
    assert_eq!(job.image, "apache/spark:3.5.3", "image comes from defaults");
    assert_eq!(job.spark_version, "3.5.3");
    assert_eq!(
        job.driver.resources,
        Resources::NodeType("small".into()),
        "driver size from defaults"
    );
    assert_eq!(job.executor.scaling, ExecutorScaling::Instances(2));
    assert_eq!(
        job.ttl,
        Some(JobDuration(Duration::from_secs(3600))),
        "ttl from defaults"
    );
    assert_eq!(job.retry.max_attempts, 3);
    assert_eq!(job.id.0.get_version_num(), 7, "generated ids are UUID v7");
}

#[test]
fn normalised_output_is_itself_a_valid_message() {
    let job = parse(&base()).unwrap();
    let again = parse(&serde_json::to_value(&job).unwrap()).unwrap();
    assert_eq!(job, again, "validate(normalise(x)) == normalise(x)");
    let strict: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
    assert_eq!(strict, job, "the serde model reads what it writes");
}

#[test]
fn every_invalid_case_reports_its_code_at_its_path() {
    let mut failures = Vec::new();
    for (case, path, value, code, at) in invalid_cases() {
        let msg = with(base(), path, value);
        match parse(&msg) {
            Ok(_) => failures.push(format!("{case}: accepted")),
            Err(r) => {
                if !r.problems.iter().any(|p| p.code == code && p.path == at) {
                    failures.push(format!(
                        "{case}: expected {code} at {at}, got {:?}",
                        r.problems
                    ));
                }
                if r.problems.iter().any(|p| p.message.trim().is_empty()) {
                    failures.push(format!("{case}: a problem without a message"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let text = include_str!("../../examples/invalid/many-mistakes.json");
    let config: CatalogConfig = toml::from_str(CATALOG).unwrap();
    let r = parse_job(text.as_bytes(), &Catalog::new(config).unwrap()).unwrap_err();
    let found: Vec<(P, &str)> = r
        .problems
        .iter()
        .map(|p| (p.code, p.path.as_str()))
        .collect();
    for expected in [
        (P::UnknownField, "$.colour"),
        (P::InvalidName, "$.name"),
        (P::UnknownNamespace, "$.namespace"),
        (P::InvalidValue, "$.priority"),
        (P::InvalidUri, "$.mainApplicationFile"),
        (P::ReservedKey, "$.sparkConf[\"spark.executor.memory\"]"),
        (
            P::WrongType,
            "$.sparkConf[\"spark.sql.shuffle.partitions\"]",
        ),
        (P::InvalidEnvName, "$.env[\"1BAD\"]"),
        (P::UnknownNodeType, "$.driver.nodeType"),
        (P::InvalidQuantity, "$.executor.cores"),
        (P::InvalidQuantity, "$.executor.memory"),
        (P::OutOfRange, "$.executor.dynamicAllocation.minExecutors"),
        (P::Forbidden, "$.volumes[0].hostPath"),
        (P::OutOfRange, "$.retry.maxAttempts"),
        (P::InvalidDuration, "$.ttl"),
    ] {
        assert!(
            found.contains(&expected),
            "missing {expected:?} in {found:#?}"
        );
    }
}

#[test]
fn valid_variants_normalise_as_documented() {
    let parse_ok = |path: &[&str], v: Value| parse(&with(base(), path, Some(v))).unwrap();

    let job = parse_ok(
        &["executor"],
        json!({"cores": "500m", "memory": "1.5g", "memoryOverhead": "512m", "instances": 3}),
    );
    assert_eq!(
        job.executor.resources,
        Resources::Explicit {
            cores: CpuMillis(500),
            memory: MemoryBytes::from_mib(1536),
            memory_overhead: Some(MemoryBytes::from_mib(512))
        }
    );

    let job = parse_ok(
        &["executor"],
        json!({"nodeType": "small", "dynamicAllocation": {"minExecutors": 1, "maxExecutors": 8}}),
    );
    let ExecutorScaling::DynamicAllocation(da) = job.executor.scaling else {
        panic!("dynamic allocation expected")
    };
    assert_eq!(
        (da.min_executors, da.initial(), da.max_executors),
        (1, 1, 8)
    );

    let job = parse_ok(&["executor"], json!({"nodeType": "small"}));
    assert_eq!(
        job.executor.scaling,
        ExecutorScaling::Instances(1),
        "defaults.executor_instances"
    );

    let job = parse_ok(&["executor"], json!({"nodeType": "small", "instances": 4}));
    let job2 = parse(&with(
        with(
            base(),
            &["executor"],
            Some(json!({"nodeType": "small", "instances": 4})),
        ),
        &["spot"],
        Some(json!(true)),
    ))
    .unwrap();
    assert!(
        !job.spot && job2.spot,
        "spot works with a node type that has a spot placement"
    );

    for executor in [
        json!({"nodeType": "large", "instances": 1}),
        json!({"cores": 1, "memory": "2g", "instances": 1}),
    ] {
        let no_spot = with(
            with(base(), &["executor"], Some(executor)),
            &["spot"],
            Some(json!(true)),
        );
        let r = parse(&no_spot).unwrap_err();
        assert_eq!(
            (r.problems[0].code, r.problems[0].path.as_str()),
            (P::SpotUnavailable, "$.spot"),
            "{r:?}"
        );
    }

    let job = parse_ok(&["priority"], json!("high"));
    assert_eq!(job.priority, Priority::High);

    let job = parse_ok(&["id"], json!("0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01"));
    assert_eq!(
        job.id.to_string(),
        "0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01",
        "a given id is kept"
    );

    let job = parse_ok(&["ttl"], json!("90m"));
    assert_eq!(job.ttl, Some(JobDuration(Duration::from_secs(5400))));

    let job = parse_ok(&["retry"], json!({"maxAttempts": 5}));
    assert_eq!(
        (job.retry.max_attempts, job.retry.backoff.initial.0),
        (5, Duration::from_secs(30)),
        "partial retry keeps default backoff"
    );

    let job = parse_ok(
        &["volumes"],
        json!([{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true, "configMap": {"name": "cfg"}}]),
    );
    assert_eq!(
        job.volumes[0].source,
        VolumeSource::ConfigMap { name: "cfg".into() }
    );
    assert!(job.volumes[0].read_only);

    let job = parse_ok(
        &["sparkConf"],
        json!({"spark.executor.pyspark.memory": "1g", "spark.executor.memoryOverheadFactor": "0.2"}),
    );
    assert_eq!(job.spark_conf.len(), 2);

    let job = parse_ok(&["tags"], json!({"team": "", "example.com/owner": "ops"}));
    assert_eq!(job.tags.len(), 2);

    let job = parse_ok(&["deadline"], json!("2026-12-01T00:00:00+01:00"));
    assert_eq!(
        job.deadline.unwrap().to_rfc3339(),
        "2026-11-30T23:00:00+00:00"
    );

    let job = parse(&with(base(), &["priority"], Some(Value::Null))).unwrap();
    assert_eq!(job.priority, Priority::Normal, "null means absent");
}

#[test]
fn body_level_problems() {
    let c = catalog();
    for (bytes, code) in [
        (b"".to_vec(), P::MalformedJson),
        (b"   \n".to_vec(), P::MalformedJson),
        (b"{\"apiVersion\":".to_vec(), P::MalformedJson),
        (b"[1,2]".to_vec(), P::WrongType),
        (b"null".to_vec(), P::WrongType),
        (b"\"job\"".to_vec(), P::WrongType),
        (vec![0xff, 0xfe, b'{', b'}'], P::NotUtf8),
        (br#"{"name":"a","name":"b"}"#.to_vec(), P::DuplicateKey),
        (vec![b' '; 65537], P::TooLarge),
        (
            format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes(),
            P::MalformedJson,
        ),
    ] {
        let r = parse_job(&bytes, &c).unwrap_err();
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(r.problems[0].code, code, "{:?}", r.problems);
        assert_eq!(r.problems[0].path, "$");
    }
}

#[test]
fn problems_serialise_as_documented() {
    let r = parse(&with(base(), &["name"], Some(json!("Bad")))).unwrap_err();
    let v = serde_json::to_value(&r.problems[0]).unwrap();
    assert_eq!(v["code"], "invalid-name");
    assert_eq!(v["path"], "$.name");
    assert!(v["message"].as_str().unwrap().contains("Bad"));
    for p in &r.problems {
        assert_eq!(
            serde_json::to_value(p.code).unwrap(),
            json!(p.code.as_str())
        );
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("team-a"),
            Just("small"),
            Just("v1"),
            Just("2g"),
            Just("500m"),
            Just("local:///a.jar")
        ]
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let keys = prop_oneof![
            Just("apiVersion".to_owned()),
            Just("name".to_owned()),
            Just("namespace".to_owned()),
            Just("driver".to_owned()),
            Just("executor".to_owned()),
            Just("nodeType".to_owned()),
            Just("cores".to_owned()),
            Just("memory".to_owned()),
            Just("instances".to_owned()),
            Just("dynamicAllocation".to_owned()),
            Just("volumes".to_owned()),
            Just("retry".to_owned()),
            Just("backoff".to_owned()),
            Just("sparkConf".to_owned()),
            Just("tags".to_owned()),
            Just("mainApplicationFile".to_owned()),
            "[a-zA-Z.]{1,12}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        match parse_job(&bytes, &catalog()) {
            Ok(job) => prop_assert!(!job.name.is_empty()),
            Err(r) => prop_assert!(!r.problems.is_empty()),
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in arbitrary_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        match parse_job(&text, &catalog()) {
            Ok(job) => {
                // Whatever is accepted is normalised and re-validates to itself.
                let again = parse(&serde_json::to_value(&job).unwrap());
                prop_assert_eq!(again.ok(), Some(job));
            }
            Err(r) => {
                prop_assert!(!r.problems.is_empty());
                for p in &r.problems {
                    prop_assert!(p.path.starts_with('$'));
                    prop_assert!(!p.message.is_empty());
                }
            }
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(key in prop_oneof![Just("name"), Just("executor"), Just("driver"), Just("retry"), Just("volumes"), Just("tags")], value in arbitrary_json()) {
        let msg = with(base(), &[key], Some(value));
        let text = serde_json::to_vec(&msg).unwrap();
        let _ = parse_job(&text, &catalog());
    }
}
