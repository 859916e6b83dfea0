//! Preemption's requeue against a real PostgreSQL (a fresh database per test): the job goes
//! back to the front of its queue, with its id and history, as a new attempt its retry budget
//! does not pay for; the history names the preemptor.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use fixtures::{events, job_with, store, submission};
use jobs::{JobId, JobState};
use queues::Error;
use queues::store::{JobSource, Note, PREEMPTED, Target};
use serde_json::json;

#[tokio::test]
async fn a_preempted_job_goes_back_to_the_front_uncharged_with_the_preemptor_named() {
    let (db, store) = store().await;
    let retry = json!({"retry": {"maxAttempts": 2, "backoff": {"initial": "1s", "max": "1s", "multiplier": 1}}});
    let victim = job_with("team-a", retry.clone());
    let later = job_with("team-a", retry);
    store.enqueue(&victim, JobSource::Amqp).await.unwrap();
    store.enqueue(&later, JobSource::Amqp).await.unwrap();
    store
        .transition(
            victim.id,
            JobState::Queued,
            submission(&victim, 1, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    store
        .transition(
            victim.id,
            JobState::Submitted,
            Target::Running,
            Note::default(),
        )
        .await
        .unwrap();
    let before = store.job(victim.id).await.unwrap().unwrap().retries_left();
    let preemptor = JobId::generate();

    // Wrong believed state, or a pending job: refused, nothing changes.
    assert!(matches!(
        store
            .requeue_preempted(victim.id, JobState::Submitted, preemptor, "x")
            .await,
        Err(Error::StateConflict { .. })
    ));
    assert!(matches!(
        store
            .requeue_preempted(later.id, JobState::Queued, preemptor, "x")
            .await,
        Err(Error::InvalidArgument(_))
    ));

    let next = store
        .requeue_preempted(
            victim.id,
            JobState::Running,
            preemptor,
            &format!("preempted for high-priority job {preemptor}"),
        )
        .await
        .unwrap();
    assert_eq!(next, 2);

    let stored = store.job(victim.id).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Queued);
    assert_eq!(stored.attempt, 2);
    assert_eq!(stored.spark_app_name, None);
    assert_eq!(
        stored.retries_left(),
        before,
        "the preempted attempt is not charged"
    );

    let heads = store.pending_heads(10).await.unwrap();
    let order: Vec<JobId> = heads.iter().map(|h| h.job.id).collect();
    assert_eq!(order, vec![victim.id, later.id], "front of its queue");
    assert_eq!(heads[0].attempt, 2);

    let history = store.history(victim.id).await.unwrap();
    let last = history.last().unwrap();
    assert_eq!(last.reason.as_deref(), Some(PREEMPTED));
    assert_eq!(
        last.details.as_ref().and_then(|d| d["preemptor"].as_str()),
        Some(preemptor.to_string().as_str())
    );
    let evs = events(&db).await;
    assert!(
        evs.iter()
            .any(|(key, body)| key == "team-a.queued" && body["reason"] == PREEMPTED),
        "{evs:?}"
    );

    let counts = store
        .preemption_counts(&[victim.id, later.id])
        .await
        .unwrap();
    assert_eq!(counts.get(&victim.id), Some(&1));
    assert_eq!(counts.get(&later.id), None);

    // The new attempt can be submitted (a fresh application name) and preempted again.
    store
        .transition(
            victim.id,
            JobState::Queued,
            submission(&victim, 2, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    store
        .requeue_preempted(victim.id, JobState::Submitted, preemptor, "again")
        .await
        .unwrap();
    let counts = store.preemption_counts(&[victim.id]).await.unwrap();
    assert_eq!(counts.get(&victim.id), Some(&2));
    assert_eq!(
        store.job(victim.id).await.unwrap().unwrap().retries_left(),
        before
    );
}
