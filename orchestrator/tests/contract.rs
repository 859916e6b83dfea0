//! The public contract, generated from the code and committed: `orchestrator/openapi.json` is
//! what `GET /openapi.json` serves, `schemas/job.schema.json` what `GET /v1/schema/job` serves,
//! and the document's `JobMessage` is that same schema. Regenerate both files after a change
//! with `UPDATE_CONTRACT=1 cargo nextest run -p orchestrator --test contract`.
//!
//! Refusals follow the schemas: a body the published schema refuses answers 400, one that
//! conforms but breaks the config's rules 422.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN, TestApi};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Compares a served document with its committed file (rewriting it under `UPDATE_CONTRACT`).
fn check_committed(relative: &str, served: &Value) {
    let path = root().join(relative);
    let rendered = serde_json::to_string_pretty(served).unwrap() + "\n";
    if std::env::var_os("UPDATE_CONTRACT").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{relative} differs from what the server serves; regenerate it with \
         UPDATE_CONTRACT=1 cargo nextest run -p orchestrator --test contract"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_contract_is_what_the_server_serves() {
    let api = TestApi::start().await;
    let doc = api.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    check_committed("orchestrator/openapi.json", &doc.body);

    let schema = api.request(Method::GET, "/v1/schema/job", None, None).await;
    assert_eq!(schema.status, 200, "the job schema is public");
    assert_eq!(
        schema.headers["content-type"], "application/schema+json",
        "{:?}",
        schema.headers
    );
    check_committed("schemas/job.schema.json", &schema.body);

    // The document's JobMessage and the types it uses are the served schema's.
    let mut components = doc.body["components"]["schemas"].clone();
    jobs::model::message::rewrite_refs(&mut components);
    for (name, def) in schema.body["$defs"].as_object().unwrap() {
        assert_eq!(&components[name], def, "{name}");
    }
    let mut root_schema = schema.body.clone();
    let root_map = root_schema.as_object_mut().unwrap();
    for key in ["$schema", "$id", "$defs"] {
        root_map.remove(key);
    }
    assert_eq!(components["JobMessage"], root_schema);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_lists_the_refusals_its_extractors_give() {
    let api = TestApi::start().await;
    let doc = api
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let codes: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let open = !path.starts_with("/v1/") || path == "/v1/schema/job";
            if !open {
                assert!(codes.contains(&"401"), "{method} {path}: {codes:?}");
            }
            if op.get("requestBody").is_some() {
                for c in ["400", "413", "415"] {
                    assert!(codes.contains(&c), "{method} {path} lacks {c}: {codes:?}");
                }
            }
        }
    }
    // Unknown fields are refused wherever serde refuses them.
    let schemas = &doc["components"]["schemas"];
    for name in [
        "JobMessage",
        "ScheduleRequest",
        "DriverMessage",
        "ExecutorMessage",
    ] {
        assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
    }
    api.finish().await;
}

fn job(name: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": namespace,
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "mainClass": "org.apache.spark.examples.SparkPi",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structural_refusals_are_400_and_semantic_ones_422() {
    let api = TestApi::start().await;
    let cases = [
        // The schema refuses these.
        (job("Bad_Name", "team-a"), 400, "invalid-name"),
        (
            {
                let mut j = job("colour", "team-a");
                j["colour"] = json!("blue");
                j
            },
            400,
            "unknown-field",
        ),
        (json!({"apiVersion": "v1"}), 400, "missing-field"),
        // These conform; the config refuses them.
        (job("elsewhere", "team-z"), 422, "unknown-namespace"),
        (
            {
                let mut j = job("huge", "team-a");
                j["driver"] = json!({"nodeType": "huge"});
                j
            },
            422,
            "unknown-node-type",
        ),
        (
            {
                let mut j = job("reserved", "team-a");
                j["sparkConf"] = json!({"spark.executor.memory": "8g"});
                j
            },
            422,
            "reserved-key",
        ),
    ];
    for (body, status, code) in cases {
        let a = api.post("/v1/jobs", ADMIN, &body).await;
        assert_eq!(a.status, status, "{body}: {}", a.text);
        assert_eq!(a.body["error"], "invalid-job");
        let codes: Vec<&str> = a.body["problems"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["code"].as_str())
            .collect();
        assert!(codes.contains(&code), "{body}: {codes:?}");
    }

    let schedule = |template: Value, cron: &str| json!({"name": "nightly", "cron": cron, "jobTemplate": template});
    let bad_cron = api
        .post(
            "/v1/schedules",
            ADMIN,
            &schedule(job("n", "team-a"), "not a cron"),
        )
        .await;
    assert_eq!(bad_cron.status, 422, "{}", bad_cron.text);
    let bad_template = api
        .post(
            "/v1/schedules",
            ADMIN,
            &schedule(job("N", "team-a"), "@daily"),
        )
        .await;
    assert_eq!(bad_template.status, 400, "{}", bad_template.text);
    assert_eq!(bad_template.body["error"], "invalid-schedule");

    for (query, status) in [
        ("/v1/jobs?namespace=", 400),
        ("/v1/jobs?namespace=Team_A", 400),
        ("/v1/jobs?namespace=team-z", 422),
        ("/v1/queues?namespace=team-z", 422),
        ("/v1/jobs?namespace=team-a", 200),
        // Found by schemathesis: a NUL used to reach PostgreSQL (500).
        ("/v1/dlq?namespace=%00x", 400),
        ("/v1/schedules/a%00b", 404),
    ] {
        let a = api.get(query, ADMIN).await;
        assert_eq!(a.status, status, "{query}: {}", a.text);
    }
    let a = api
        .post("/v1/dlq/purge", ADMIN, &json!({"namespace": "\u{0}"}))
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    api.finish().await;
}

/// The selector rule of requeue and purge ("exactly one of id, namespace/reason, all") is
/// stated by their schemas: a body conforms exactly when the server does not answer 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dead_letter_selector_schemas_say_what_the_server_accepts() {
    let api = TestApi::start().await;
    let bodies = [
        json!({}),
        json!({"all": false}),
        json!({"all": true}),
        json!({"id": 1}),
        json!({"id": 1, "all": false}),
        json!({"id": 1, "all": true}),
        json!({"id": 1, "namespace": "team-a"}),
        json!({"id": null}),
        json!({"id": null, "all": true}),
        json!({"namespace": "team-a"}),
        json!({"reason": "expired"}),
        json!({"namespace": "team-a", "reason": "expired"}),
        json!({"namespace": "team-a", "all": true}),
        json!({"namespace": null, "reason": null}),
        json!({"reason": "soon"}),
        json!({"colour": "blue", "all": true}),
        json!({"id": 2.0}),
        json!({"id": 1.5}),
    ];
    for (path, name, extra) in [
        ("/v1/dlq/requeue", "RequeueRequest", "resetAttempts"),
        ("/v1/dlq/purge", "PurgeRequest", "includeRequeued"),
    ] {
        let schema = orchestrator::http::contract::component_schema(name);
        let validator = jsonschema::validator_for(&schema).unwrap();
        let mut with_extra = json!({"all": true});
        with_extra[extra] = json!(true);
        for body in bodies.iter().chain([&with_extra]) {
            let a = api.post(path, ADMIN, body).await;
            // 404: a well-formed selector naming a record that does not exist.
            assert!(
                [200, 400, 404].contains(&a.status),
                "{path} {body}: {}",
                a.text
            );
            assert_eq!(
                validator.is_valid(body),
                a.status != 400,
                "{path} {body}: {}",
                a.text
            );
        }
    }
    api.finish().await;
}
