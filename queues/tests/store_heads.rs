//! The submitter's read of the pending heads against a real PostgreSQL (a fresh database per
//! test): the jobs the caller already holds are not read again, and the heads are ordered and
//! numbered per queue by the store, not by the statement.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use std::collections::HashMap;
use std::sync::Arc;

use fixtures::{job, job_with, store};
use jobs::{JobId, Priority};
use queues::store::JobSource;
use serde_json::json;

#[tokio::test]
async fn pending_heads_reuse_the_jobs_the_caller_knows_by_id_and_attempt() {
    let (db, store) = store().await;
    let a = job("team-a", "known");
    let b = job("team-a", "new");
    store.enqueue(&a, JobSource::Amqp).await.unwrap();
    store.enqueue(&b, JobSource::Amqp).await.unwrap();
    let first = store.pending_heads(10).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(*first[0].job, a, "read and decoded");

    // The caller's copy of `a` (attempt 1) comes back as is; `b` is read.
    let mine = Arc::new(a.clone());
    let known = HashMap::from([((a.id, first[0].attempt), mine.clone())]);
    let heads = store.pending_heads_reusing(10, &known).await.unwrap();
    assert!(Arc::ptr_eq(&heads[0].job, &mine), "not read again");
    assert_eq!(*heads[1].job, b);
    assert_eq!(heads[0].position, 1);

    // Known under another attempt: not the same job run, so read again.
    let stale = HashMap::from([((a.id, first[0].attempt + 1), mine.clone())]);
    let heads = store.pending_heads_reusing(10, &stale).await.unwrap();
    assert!(!Arc::ptr_eq(&heads[0].job, &mine));
    assert_eq!(*heads[0].job, a);
    db.drop_database().await;
}

#[tokio::test]
async fn heads_of_many_queues_come_high_first_by_namespace_numbered_per_queue() {
    let (db, store) = store().await;
    // Enqueued interleaved across queues, so the store's order is not the intake's.
    let plan: [(&str, &str); 8] = [
        ("team-b", "normal"),
        ("team-b", "high"),
        ("team-a", "normal"),
        ("team-b", "normal"),
        ("team-a", "high"),
        ("team-b", "high"),
        ("team-a", "normal"),
        ("team-a", "high"),
    ];
    let mut ids: HashMap<JobId, usize> = HashMap::new();
    for (i, (namespace, priority)) in plan.iter().enumerate() {
        let mut j = job_with(namespace, json!({"priority": priority}));
        j.name = format!("j{i}");
        ids.insert(j.id, i);
        store.enqueue(&j, JobSource::Amqp).await.unwrap();
    }
    let heads = store.pending_heads(10).await.unwrap();
    let got: Vec<(usize, &str, Priority, u64)> = heads
        .iter()
        .map(|h| {
            (
                ids[&h.job.id],
                h.job.namespace.as_str(),
                h.job.priority,
                h.position,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, "team-a", Priority::High, 1),
            (7, "team-a", Priority::High, 2),
            (1, "team-b", Priority::High, 1),
            (5, "team-b", Priority::High, 2),
            (2, "team-a", Priority::Normal, 1),
            (6, "team-a", Priority::Normal, 2),
            (0, "team-b", Priority::Normal, 1),
            (3, "team-b", Priority::Normal, 2),
        ]
    );
    // One per queue: every queue's head, each numbered 1.
    let two = store.pending_heads(1).await.unwrap();
    let firsts: Vec<usize> = two.iter().map(|h| ids[&h.job.id]).collect();
    assert_eq!(firsts, [4, 1, 2, 0]);
    assert!(two.iter().all(|h| h.position == 1));
    db.drop_database().await;
}
