//! The size cache: a pending job is sized once across rounds, anew for a new attempt or new
//! PriorityClass values, and forgotten once it is no longer pending.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use jobs::{Catalog, CatalogConfig, JobState, parse_job};
use queues::store::PendingJob;
use serde_json::json;
use submitter::footprint::Footprint;
use submitter::sizes::{Size, Sizes};

const CATALOG: &str = r#"
    [namespaces.team-a]
    [node_types.small]
    cpu = "1"
    memory = "4Gi"
    [priorities.high]
    priority_class_name = "spark-high"
    [defaults]
    image = "apache/spark:3.5.3"
    spark_version = "3.5.3"
"#;

fn catalog() -> Catalog {
    catalog_with("")
}

fn catalog_with(extra: &str) -> Catalog {
    Catalog::new(toml::from_str::<CatalogConfig>(&format!("{CATALOG}{extra}")).unwrap()).unwrap()
}

fn pending(catalog: &Catalog, name: &str, attempt: u32, node_type: &str) -> PendingJob {
    let body = json!({
        "apiVersion": "v1", "namespace": "team-a", "name": name, "priority": "high",
        "mainClass": "Main", "mainApplicationFile": "local:///app.jar",
        "driver": {"nodeType": node_type}, "executor": {"instances": 2, "nodeType": "small"}
    });
    PendingJob {
        job: parse_job(&serde_json::to_vec(&body).unwrap(), catalog)
            .unwrap()
            .into(),
        state: JobState::Queued,
        attempt,
        enqueued_at: Utc::now(),
        queued_at: Utc::now(),
        waiting: None,
        position: 1,
    }
}

fn sized(results: Vec<Result<Size, submitter::footprint::FootprintError>>) -> Vec<Size> {
    results.into_iter().map(Result::unwrap).collect()
}

#[test]
fn a_pending_job_is_sized_once_and_anew_when_what_its_size_depends_on_changes() {
    let catalog = catalog();
    let a = pending(&catalog, "a", 1, "small");
    let b = pending(&catalog, "b", 1, "small");
    let high = BTreeMap::from([("spark-high".to_owned(), 1000)]);
    let mut sizes = Sizes::default();

    let first = sized(sizes.of_all(&[a.clone(), b.clone()], &catalog, &high));
    assert_eq!(
        *first[0].footprint,
        Footprint::of(&a.job, &catalog).unwrap()
    );
    assert_eq!(first[0].gang.pods.len(), 3, "a driver and two executors");
    assert!(first[0].gang.pods.iter().all(|p| p.priority == 1000));

    // Next round, same jobs: the very same sizes, not recomputed.
    let again = sized(sizes.of_all(&[a.clone(), b.clone()], &catalog, &high));
    assert!(Arc::ptr_eq(&first[0].gang, &again[0].gang));
    assert!(Arc::ptr_eq(&first[1].footprint, &again[1].footprint));

    // The jobs are kept for the next read of the heads.
    let known = sizes.known_jobs();
    assert!(Arc::ptr_eq(&known[&(a.job.id, 1)], &a.job));

    // `b` no longer pending: forgotten.
    sizes.of_all(std::slice::from_ref(&a), &catalog, &high);
    assert_eq!(sizes.len(), 1);

    // A new attempt of `a` is a new key (a retry may change the spec).
    let a2 = pending(&catalog, "a", 2, "small");
    let retried = sized(sizes.of_all(std::slice::from_ref(&a2), &catalog, &high));
    assert!(!Arc::ptr_eq(&first[0].gang, &retried[0].gang));
    assert_ne!(first[0].gang.key, retried[0].gang.key);

    // New PriorityClass values: everything sized again with them.
    let higher = BTreeMap::from([("spark-high".to_owned(), 2000)]);
    let resized = sized(sizes.of_all(std::slice::from_ref(&a2), &catalog, &higher));
    assert!(resized[0].gang.pods.iter().all(|p| p.priority == 2000));
}

#[test]
fn a_job_that_cannot_be_sized_is_an_error_and_not_remembered() {
    // Accepted when its node type existed; the catalog reloaded without it.
    let before = catalog_with("[node_types.gone]\ncpu = \"1\"\nmemory = \"4Gi\"\n");
    let bad = pending(&before, "bad", 1, "gone");
    let mut sizes = Sizes::default();
    let out = sizes.of_all(&[bad], &catalog(), &BTreeMap::new());
    assert!(
        out[0]
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("no longer defined")
    );
    assert!(sizes.is_empty());
}
