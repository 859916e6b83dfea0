//! End-to-end harness: one test's world made of the real parts — a fresh PostgreSQL database
//! ([`pg`]), a unique topology on the shared RabbitMQ, the intake, the outbox relay and the
//! housekeeping loop, a private kube-sim cluster, the capacity checker and the submitter
//! ([`world`]) — plus waiting helpers that poll with a deadline instead of sleeping blindly.
//! The suites in `tests/` drive it the way publishers and operators would.

#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test harness: a panic is how a test fails, loudly"
)]

pub mod pg;
pub mod world;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 50 ms until it yields `Some`, or panics after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A name no other test (or earlier run) uses; starts with the creation time so leftovers of
/// crashed runs can be swept.
pub fn unique(tag: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("e2e{tag}{secs}x{}", &rand[..10])
}
