//! Event-driven admission's signals, against a real PostgreSQL (a fresh database per test): the
//! `jobs_inserted_notify` and `jobs_queued_notify` triggers notify exactly when a committed
//! change leaves a job queued, they and the `jobs_pending_*` triggers when a change touches
//! what the pending heads show, and
//! `JobStore::watch_pending` keeps listening through a killed connection and a connection that
//! stops answering, and stops on cancel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/store_fixtures.rs"]
mod fixtures;
#[path = "support/env.rs"]
mod support;

use std::time::Duration;

use fixtures::{job, marker, store, submission};
use jobs::JobState;
use queues::store::{
    ANSWERED_WITHIN, HEARTBEAT, HeadsCache, JobSource, Note, PENDING_CHANNEL, QUEUED_CHANNEL,
    Target, WaitingMark,
};
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Long enough for any loaded machine; only a missing notification ever waits this long.
const LIMIT: Duration = Duration::from_secs(30);

async fn next_payload(listener: &mut PgListener) -> String {
    tokio::time::timeout(LIMIT, listener.recv())
        .await
        .expect("no notification")
        .unwrap()
        .payload()
        .to_owned()
}

/// Runs `sql` on the job `id` in a transaction that is rolled back: triggers fire, nothing
/// commits.
async fn rolled_back(db: &support::TestDb, sql: &'static str, id: uuid::Uuid) {
    let mut tx = db.pool.begin().await.unwrap();
    sqlx::query(sql).bind(id).execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn the_trigger_notifies_when_a_commit_leaves_a_job_queued_and_only_then() {
    let (db, store) = store().await;
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(QUEUED_CHANNEL).await.unwrap();

    // Stored: one notification (empty payload).
    let a = job("team-a", "etl");
    store.enqueue(&a, JobSource::Amqp).await.unwrap();
    assert_eq!(next_payload(&mut listener).await, "");

    // Moves that leave it elsewhere notify nothing: the next one delivered is the marker
    // (notifications arrive in commit order).
    store
        .transition(
            a.id,
            JobState::Queued,
            submission(&a, 1, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    rolled_back(
        &db,
        "UPDATE jobs SET state = 'queued' WHERE id = $1",
        a.id.0,
    )
    .await;
    marker(&db, QUEUED_CHANNEL).await;
    assert_eq!(
        next_payload(&mut listener).await,
        "marker",
        "a job moved to submitted, or a rolled-back requeue, must not wake the leader"
    );

    // Back to queued by an update (as a retry come due or a requeue does): notified.
    sqlx::query("UPDATE jobs SET state = 'queued' WHERE id = $1")
        .bind(a.id.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(next_payload(&mut listener).await, "");

    // Many jobs stored in one transaction: one notification, then the marker.
    let batch: Vec<_> = (0..5).map(|i| job("team-b", &format!("b{i}"))).collect();
    let items: Vec<_> = batch
        .iter()
        .map(|j| {
            queues::store::IntakeItem::Job(Box::new(queues::store::NewJob {
                job: j.clone(),
                source: JobSource::Amqp,
                published_at: None,
                reply_to: None,
            }))
        })
        .collect();
    store.take_in(&items).await.unwrap();
    assert_eq!(next_payload(&mut listener).await, "");
    marker(&db, QUEUED_CHANNEL).await;
    assert_eq!(next_payload(&mut listener).await, "marker");

    // The same batch again (a redelivery): every id is stored already, nothing is inserted,
    // nothing notified.
    store.take_in(&items).await.unwrap();
    marker(&db, QUEUED_CHANNEL).await;
    assert_eq!(
        next_payload(&mut listener).await,
        "marker",
        "a batch of duplicates must not wake the leader"
    );
    drop(listener);
    db.drop_database().await;
}

async fn wake(wakes: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(LIMIT, wakes.recv())
        .await
        .expect("no wake")
        .expect("the watcher ended");
}

/// `JobStore::watch_pending` running in the background, as the leader runs it.
struct Watcher {
    token: CancellationToken,
    cache: std::sync::Arc<HeadsCache>,
    wakes: mpsc::UnboundedReceiver<()>,
    task: tokio::task::JoinHandle<queues::Result<()>>,
}

impl Watcher {
    /// Starts watching and waits for the wake listening starts with (jobs may have been
    /// queued before).
    async fn start(store: &queues::JobStore) -> Self {
        let token = CancellationToken::new();
        let cache = std::sync::Arc::new(HeadsCache::default());
        let (tx, mut wakes) = mpsc::unbounded_channel();
        let task = tokio::spawn({
            let (store, token, cache) = (store.clone(), token.clone(), cache.clone());
            async move {
                store
                    .watch_pending(&token, &cache, || {
                        let _ = tx.send(());
                    })
                    .await
            }
        });
        wake(&mut wakes).await;
        Self {
            token,
            cache,
            wakes,
            task,
        }
    }

    /// Waits for the next wake.
    async fn next_wake(&mut self) {
        wake(&mut self.wakes).await;
    }

    /// Forgets the wakes sent so far.
    fn forget_wakes(&mut self) {
        while self.wakes.try_recv().is_ok() {}
    }

    /// Cancels and waits for the watcher to end cleanly.
    async fn stop(self) {
        self.token.cancel();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the watcher did not stop on cancel")
            .unwrap()
            .unwrap();
        assert!(!self.cache.listening(), "nobody listens after cancel");
    }
}

#[tokio::test]
async fn watch_pending_survives_a_killed_connection_and_stops_on_cancel() {
    let (db, store) = store().await;
    let mut watcher = Watcher::start(&store).await;
    assert!(watcher.cache.listening());
    store
        .enqueue(&job("team-a", "first"), JobSource::Amqp)
        .await
        .unwrap();
    watcher.next_wake().await;

    // Kill the listening connection: the watcher reconnects, wakes (it may have missed
    // something) and hears the next stored job.
    let listeners = db.listeners().await;
    assert_eq!(listeners.len(), 1, "one listening connection");
    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(listeners[0])
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(killed, "the listening connection was killed");
    watcher.next_wake().await;
    support::eventually("listening again", LIMIT, || async {
        (db.listeners().await.len() == 1).then_some(())
    })
    .await;
    watcher.forget_wakes();
    store
        .enqueue(&job("team-a", "second"), JobSource::Amqp)
        .await
        .unwrap();
    watcher.next_wake().await;

    assert!(watcher.cache.listening());
    watcher.stop().await;
    db.drop_database().await;
}

/// Sends `signal` to a PostgreSQL backend (this machine's server; the tests run as a user
/// allowed to signal it, as CI does).
fn signal(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Lets a stopped backend run again however the test ends: a stopped backend would hold up
/// the database's drop.
struct Stopped(i32);

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listening_connection_that_stops_answering_is_replaced() {
    let (db, store) = store().await;
    let mut watcher = Watcher::start(&store).await;
    let cache = watcher.cache.clone();
    let listening_since = std::time::Instant::now();
    // The heartbeat answers: its latest answer comes well after listening started.
    support::eventually("a heartbeat answered", LIMIT, || async {
        let since = cache.since_answered()?;
        (since + HEARTBEAT / 2 < listening_since.elapsed()).then_some(())
    })
    .await;
    let listeners = db.listeners().await;
    assert_eq!(listeners.len(), 1, "one listening connection");

    // The server stops answering on that connection without closing it (as a connection cut
    // by a firewall, or a hung server, looks): first the heads stop being reusable (no answer
    // within ANSWERED_WITHIN), then the heartbeat's wait ends the session and a new
    // connection listens.
    let first = listeners[0];
    let stopped = Stopped(first);
    signal(first, "-STOP");
    let mut saw_unanswered = false;
    let replacement = support::eventually("another connection listens", LIMIT, || {
        saw_unanswered |= cache.since_answered().is_some_and(|a| a >= ANSWERED_WITHIN);
        let db = &db;
        async move { db.listeners().await.into_iter().find(|pid| *pid != first) }
    })
    .await;
    assert!(
        saw_unanswered,
        "the heads were not reusable while nothing answered"
    );
    drop(stopped);
    assert_ne!(replacement, first);
    assert!(cache.listening());
    watcher.forget_wakes();
    store
        .enqueue(&job("team-a", "after"), JobSource::Amqp)
        .await
        .unwrap();
    watcher.next_wake().await;
    watcher.stop().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_pending_triggers_notify_changes_to_the_heads_and_nothing_else() {
    let (db, store) = store().await;
    let mut listener = PgListener::connect_with(&db.pool).await.unwrap();
    listener.listen(PENDING_CHANNEL).await.unwrap();
    let quiet = async |listener: &mut PgListener, what: &str| {
        marker(&db, PENDING_CHANNEL).await;
        assert_eq!(
            next_payload(listener).await,
            "marker",
            "{what} must not notify"
        );
    };

    let a = job("team-a", "etl");
    store.enqueue(&a, JobSource::Amqp).await.unwrap();
    assert_eq!(next_payload(&mut listener).await, "", "stored");

    // A row inserted in a state the heads never show (a restore, a tool).
    sqlx::query(
        "INSERT INTO jobs (id, namespace, priority, name, spec, state, max_attempts, source) \
         VALUES ($1, 'team-a', 'normal', 'restored', '{}', 'succeeded', 1, 'api')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&db.pool)
    .await
    .unwrap();
    quiet(&mut listener, "a finished job's insert").await;

    store
        .set_estimates(&[(a.id, Some(chrono::Utc::now()))])
        .await
        .unwrap();
    quiet(&mut listener, "a start estimate").await;

    let mark = WaitingMark {
        job: a.id,
        code: "capacity".into(),
        message: "no room".into(),
        position: Some(1),
    };
    store
        .mark_waiting(std::slice::from_ref(&mark))
        .await
        .unwrap();
    assert_eq!(next_payload(&mut listener).await, "", "marked waiting");

    store
        .transition(
            a.id,
            JobState::Waiting,
            submission(&a, 1, 1000, 4),
            Note::default(),
        )
        .await
        .unwrap();
    assert_eq!(next_payload(&mut listener).await, "", "left the heads");

    store
        .transition(a.id, JobState::Submitted, Target::Running, Note::default())
        .await
        .unwrap();
    quiet(&mut listener, "a running job's update").await;

    // A rolled-back change to a pending job notifies nothing; a committed delete does.
    let b = job("team-a", "other");
    store.enqueue(&b, JobSource::Amqp).await.unwrap();
    assert_eq!(next_payload(&mut listener).await, "");
    rolled_back(
        &db,
        "UPDATE jobs SET wait_message = 'x' WHERE id = $1",
        b.id.0,
    )
    .await;
    quiet(&mut listener, "a rolled-back change").await;
    sqlx::query("DELETE FROM jobs WHERE id = $1")
        .bind(b.id.0)
        .execute(&db.pool)
        .await
        .unwrap();
    assert_eq!(next_payload(&mut listener).await, "", "deleted");
    drop(listener);
    db.drop_database().await;
}
