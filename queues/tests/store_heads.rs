//! The submitter's read of the pending heads against a real PostgreSQL (a fresh database per
//! test): the jobs the caller already holds are not read again, the heads are ordered and
//! numbered per queue by the store, not by the statement, and heads nothing changed are kept
//! between reads while the listener listens.

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
use std::time::Duration;

use fixtures::{job, job_with, marker, store};
use jobs::{JobId, Priority};
use queues::store::{HeadsCache, JobSource, PENDING_CHANNEL};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Long enough for any loaded machine; only a missing notification ever waits this long.
const LIMIT: Duration = Duration::from_secs(30);

/// Waits until `cache` has heard `n` changes in all (each notification and each start or
/// stop of listening counts one).
async fn heard(cache: &HeadsCache, n: u64) {
    support::eventually("changes heard", LIMIT, || async {
        (cache.changes_heard() >= n).then_some(())
    })
    .await;
    assert_eq!(cache.changes_heard(), n, "more changes heard than made");
}

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

#[tokio::test]
async fn heads_are_kept_until_a_change_to_them_is_heard_and_only_while_listening() {
    let (db, store) = store().await;
    let cache = Arc::new(HeadsCache::default());
    let token = CancellationToken::new();
    let watcher = tokio::spawn({
        let (store, token, cache) = (store.clone(), token.clone(), cache.clone());
        async move { store.watch_pending(&token, &cache, || {}).await }
    });
    heard(&cache, 1).await; // listening started
    let read = || store.pending_heads_cached(10, &cache, HashMap::new);

    let a = job("team-a", "first");
    store.enqueue(&a, JobSource::Amqp).await.unwrap();
    heard(&cache, 2).await;
    let first = read().await.unwrap();
    assert!(!first.kept, "read");
    assert_eq!(first.heads.len(), 1);
    let again = read().await.unwrap();
    assert!(again.kept, "nothing changed: kept");
    assert!(Arc::ptr_eq(&again.heads, &first.heads));

    // A start estimate does not change the heads: after it, only the marker is heard.
    store
        .set_estimates(&[(a.id, Some(chrono::Utc::now()))])
        .await
        .unwrap();
    marker(&db, PENDING_CHANNEL).await;
    heard(&cache, 3).await;

    // A job stored by anyone (here another connection, as another replica would): read again.
    let b = job("team-a", "second");
    store.enqueue(&b, JobSource::Amqp).await.unwrap();
    heard(&cache, 4).await;
    let after = read().await.unwrap();
    assert!(!after.kept, "a stored job is read");
    let names: Vec<&str> = after.heads.iter().map(|p| p.job.name.as_str()).collect();
    assert_eq!(names, ["first", "second"]);
    assert!(read().await.unwrap().kept);

    // Nobody listening: every read goes to the store.
    token.cancel();
    watcher.await.unwrap().unwrap();
    assert!(!read().await.unwrap().kept);
    assert!(!read().await.unwrap().kept);
    db.drop_database().await;
}
