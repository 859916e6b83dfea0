//! Store fixtures shared by the store test crates: a fresh store, jobs, submissions, the
//! outbox's events. (Included with `#[path]`.)

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test crate uses a different part, and a panic is how a test fails"
)]

use std::sync::Arc;

use jobs::quantity::{CpuMillis, MemoryBytes};
use jobs::{Job, JobId, parse_job};
use queues::Names;
use queues::metrics::Metrics;
use queues::store::{FootprintRecord, JobStore, Submission, Target};
use serde_json::Value;

use super::support::{TestDb, catalog, job_body, unique};

pub async fn store() -> (TestDb, JobStore) {
    let db = TestDb::new(&queues::store::MIGRATOR).await;
    let store = JobStore::new(
        db.pool.clone(),
        Names::new(unique("p")).unwrap(),
        Arc::new(Metrics::default()),
    );
    (db, store)
}

pub fn job(namespace: &str, name: &str) -> Job {
    parse_job(&job_body(namespace, name, JobId::generate()), &catalog()).unwrap()
}

pub fn job_with(namespace: &str, extra: Value) -> Job {
    let mut v: Value =
        serde_json::from_slice(&job_body(namespace, "etl", JobId::generate())).unwrap();
    if let (Some(obj), Value::Object(extra)) = (v.as_object_mut(), extra) {
        obj.extend(extra);
    }
    parse_job(&serde_json::to_vec(&v).unwrap(), &catalog()).unwrap()
}

pub fn submission(job: &Job, attempt: u32, cpu: u64, gib: u64) -> Target {
    Target::Submitted(Submission {
        spark_app_name: format!("{}-{}-{attempt}", job.name, job.id.short()),
        attempt,
        footprint: FootprintRecord {
            cpu: CpuMillis(cpu),
            memory: MemoryBytes(gib << 30),
        },
    })
}

pub async fn events(db: &TestDb) -> Vec<(String, Value)> {
    let rows: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT routing_key, body FROM outbox WHERE kind = 'event' ORDER BY id")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    rows.into_iter()
        .map(|(k, b)| (k, serde_json::from_slice(&b).unwrap()))
        .collect()
}

/// Sends a `NOTIFY` of its own with payload `marker` on `channel`: notifications arrive in
/// commit order, so once it is heard, everything committed before it was.
pub async fn marker(db: &TestDb, channel: &str) {
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(channel)
        .execute(&db.pool)
        .await
        .unwrap();
}
