//! What every test suite of the workspace shares, so that "a fresh database per test", "a
//! unique AMQP prefix" and "the catalog fixture" mean one thing everywhere.
//!
//! [`pg`] creates a fresh PostgreSQL database per test (migrated by the caller's migrator) and
//! sweeps the ones crashed runs left; [`unique`] names databases, prefixes and Kubernetes
//! objects so parallel and repeated runs never meet; [`fixtures`] holds the catalog and a valid
//! job body; [`cases`] the table of invalid messages with the problem each must produce;
//! [`eventually`] is the only way a test waits: on a condition, with a bound; [`procs`] runs
//! the real `kube-sim`, `orchestrator` and Prometheus binaries as child processes; [`deploy`]
//! the RBAC of `deploy/base` and the identity it gives the daemon.

#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a panic is how a test fails, loudly"
)]

pub mod cases;
pub mod deploy;
pub mod fixtures;
pub mod pg;
pub mod procs;

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The shared broker (guest/guest, default vhost).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The prefix of every name [`unique`] makes; sweeps of leftovers match on it.
pub const PREFIX: &str = "ts";

/// A name no other test (or earlier run) uses: `ts{tag}{unix seconds}x{random}`, lowercase
/// letters and digits only (a valid database name, AMQP prefix and DNS label). The creation
/// time lets sweeps remove what crashed runs left behind.
pub fn unique(tag: &str) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{PREFIX}{tag}{}x{}", unix_now(), &rand[..10])
}

/// The creation time written into a [`unique`] name with `tag`, if it is one.
pub fn created_at(name: &str, tag: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_prefix(tag)?
        .split('x')
        .next()?
        .parse()
        .ok()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Waits (polling every 50 ms, at most `limit`) until `check` returns `Some`; panics with
/// `what` on timeout.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_carry_their_creation_time() {
        let a = unique("db");
        let b = unique("db");
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        let t = created_at(&a, "db").unwrap();
        assert!(t.abs_diff(unix_now()) < 5);
        assert_eq!(created_at(&a, "p"), None, "another tag is not matched");
        assert_eq!(
            created_at("qtdb1x2", "db"),
            None,
            "other prefixes are not ours"
        );
    }
}
