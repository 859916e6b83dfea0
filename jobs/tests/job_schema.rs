//! The job message's JSON Schema (`schemas/job.schema.json`), generated from
//! `jobs::model::JobMessage`: the committed file is what the code generates
//! (`UPDATE_CONTRACT=1` rewrites it), every valid example validates, and every invalid case of
//! the validation table whose fault the schema can state fails it — so a client that checks
//! its messages against the schema never sends one the orchestrator refuses for a structural
//! reason, and the schema never refuses a message the orchestrator accepts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::path::{Path, PathBuf};

use jobs::ProblemCode as P;
use jobs::model::job_schema;
use serde_json::Value;
use test_support::cases;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&job_schema()).expect("the generated schema compiles")
}

fn errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = root().join("schemas/job.schema.json");
    let generated = serde_json::to_string_pretty(&job_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_CONTRACT").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: regenerate it with UPDATE_CONTRACT=1 cargo nextest run -p jobs --test job_schema",
        path.display()
    );
    let schema: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

/// Every message the repository presents as valid: the sample jobs, the validation table's
/// base message, the shared test fixture, and their normalised forms (what `validate`
/// prints, itself a valid message).
fn valid_messages() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let dir = root().join("examples/jobs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples/jobs has its samples");
    for f in files {
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        out.push((f.display().to_string(), v));
    }
    out.push(("cases::base".into(), cases::base()));
    // Every optional field may be null (the same as absent), and the less common shapes.
    let mut rich = cases::base();
    for key in [
        "id", "priority", "type", "image", "deps", "driver", "spot", "retry", "ttl",
    ] {
        rich[key] = Value::Null;
    }
    rich["volumes"] = serde_json::json!([
        {"name": "a", "mountPath": "/a", "emptyDir": {"medium": ""}},
        {"name": "b", "mountPath": "/b", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
        {"name": "c", "mountPath": "/c", "readOnly": true, "configMap": {"name": "conf"}},
    ]);
    rich["executor"] = serde_json::json!({"cores": "500m", "memory": "2g", "dynamicAllocation": {"maxExecutors": 4}});
    out.push(("nulls and volumes".into(), rich));
    let body = test_support::fixtures::job_body("team-a", "fixture", jobs::JobId::generate());
    out.push((
        "fixtures::job_body".into(),
        serde_json::from_slice(&body).unwrap(),
    ));
    let catalog = test_support::fixtures::catalog();
    let normalised: Vec<(String, Value)> = out
        .iter()
        .filter_map(|(name, v)| {
            let bytes = serde_json::to_vec(v).unwrap();
            let job = jobs::parse_job(&bytes, &catalog)
                .or_else(|_| jobs::parse_job(&bytes, &cases::catalog()))
                .ok()?;
            Some((
                format!("{name} (normalised)"),
                serde_json::to_value(job).unwrap(),
            ))
        })
        .collect();
    assert!(!normalised.is_empty());
    out.extend(normalised);
    out
}

#[test]
fn every_valid_example_validates() {
    let v = validator();
    for (name, message) in valid_messages() {
        let errors = errors(&v, &message);
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        // The schema's types read it too (strict serde, unknown fields refused).
        serde_json::from_value::<jobs::model::JobMessage>(message)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Problem codes whose every occurrence in the table breaks a rule the schema states.
const STRUCTURAL: &[P] = &[
    P::MissingField,
    P::UnsupportedApiVersion,
    P::WrongType,
    P::InvalidName,
    P::InvalidCharacter,
    P::UnknownField,
    P::TooManyItems,
    P::ValueTooLong,
    P::InvalidEnvName,
    P::InvalidLabelKey,
    P::InvalidLabelValue,
];

/// Cases with a structural code whose fault still depends on the config or on two fields
/// together, which a JSON Schema of one message cannot know: the catalog has no default
/// executor node type; cores without memory (and the reverse) are allowed apart.
const NOT_STATABLE: &[&str] = &[
    "executor missing size",
    "driver cores only",
    "driver memory only",
];

/// Cases whose fault the schema states although their code is not structural: enumerations,
/// patterns and bounds it carries.
const ALSO_STATED: &[&str] = &[
    "priority unknown",
    "priority wrong case",
    "type unknown",
    "image with space",
    "pull policy unknown",
    "pull secret bad",
    "main file comma",
    "conf not spark key",
    "conf key with space",
    "hadoop key with =",
    "java options newline",
    "executor instances zero",
    "executor instances negative",
    "volume hostPath",
    "volume relative path",
    "volume claim bad",
    "retry attempts zero",
    "retry backoff multiplier",
    "name with NUL",
];

#[test]
fn invalid_cases_with_a_structural_fault_fail_the_schema() {
    let v = validator();
    let mut wrong = Vec::new();
    for (case, path, new, code, _) in cases::invalid_cases() {
        let message = cases::with(cases::base(), path, new);
        assert!(cases::parse(&message).is_err(), "{case} is refused");
        let structural = (STRUCTURAL.contains(&code) && !NOT_STATABLE.contains(&case))
            || ALSO_STATED.contains(&case);
        let refused = !v.is_valid(&message);
        if structural != refused {
            wrong.push(format!(
                "{case} ({code}): structural {structural}, schema refuses {refused}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_invalid_example_fails_the_schema() {
    let path = root().join("examples/invalid/many-mistakes.json");
    let message: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let errors = errors(&validator(), &message);
    // An unknown field, a bad name, a bad priority, a number where a string belongs, hostPath.
    assert!(errors.len() >= 5, "{errors:#?}");
}
