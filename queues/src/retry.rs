//! Backoff, twice: the delay before a failed job's next attempt (from the job's own `retry`
//! policy, persisted as `next_attempt_at` so it survives restarts), and the pause between
//! tries when PostgreSQL or RabbitMQ is away (so an outage never becomes a hot loop).
//!
//! Both use `backon`'s exponential builder with jitter. For job retries the jittered delay is
//! halved, giving "equal jitter": the n-th retry waits a random time in `[d/2, d)` where
//! `d = min(initial × multiplier^n, max)`, so the policy's `max` is never exceeded and two
//! jobs failing together do not come back together.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::{Error, Result};
use crate::job::Backoff;

/// The delay before retry number `retry_index` (0 = the first retry, after attempt 1 failed).
/// `seed` drives the jitter: the same seed gives the same delay (tests), a random seed spreads
/// retries (production).
pub fn retry_delay(policy: &Backoff, retry_index: u32, seed: u64) -> Duration {
    // backon computes in f32 and caps exponent growth at `max`; the iterator is cheap and
    // `retry_index` is bounded by `limits.max_attempts` (≤ 100).
    let multiplier = if policy.multiplier.is_finite() {
        policy.multiplier.clamp(1.0, 10.0)
    } else {
        1.0
    };
    let max = policy.max.0.max(policy.initial.0);
    #[allow(
        clippy::cast_possible_truncation,
        reason = "multiplier is clamped to [1, 10]: exact enough in f32"
    )]
    let factor = multiplier as f32;
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(policy.initial.0)
        .with_max_delay(max)
        .with_factor(factor)
        .with_jitter()
        .with_jitter_seed(seed)
        .without_max_times()
        .build();
    // with_jitter yields a value in [d, 2d): halve it into [d/2, d).
    let jittered = delays
        .nth(usize::try_from(retry_index).unwrap_or(usize::MAX))
        .unwrap_or(max);
    (jittered / 2).min(max)
}

/// The pause policy for infrastructure outages: 100 ms doubling to 30 s, with jitter, forever
/// (until shutdown). Callers decide what "forever" means by cancelling.
pub fn outage_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
}

/// Runs `op` until it succeeds, fails fatally, or `token` is cancelled; retryable errors are
/// logged and retried with [`outage_backoff`]. Returns [`Error::Cancelled`] on shutdown.
pub async fn until_ok<T, F, Fut>(
    token: &CancellationToken,
    what: &'static str,
    on_retry: impl Fn(&Error),
    op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    until_ok_with(token, what, outage_backoff(), on_retry, op).await
}

/// [`until_ok`] with a chosen backoff (tests use short ones).
pub async fn until_ok_with<T, F, Fut>(
    token: &CancellationToken,
    what: &'static str,
    backoff: ExponentialBuilder,
    on_retry: impl Fn(&Error),
    op: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let attempt = op
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(Error::is_retryable)
        .notify(|err, pause| {
            on_retry(err);
            warn!(error = %err, what, pause_ms = pause.as_millis(), "transient failure; backing off");
        });
    tokio::select! {
        _ = token.cancelled() => Err(Error::Cancelled),
        result = attempt => result,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::job::JobDuration;

    fn policy(initial: u64, max: u64, multiplier: f64) -> Backoff {
        Backoff {
            initial: JobDuration(Duration::from_secs(initial)),
            max: JobDuration(Duration::from_secs(max)),
            multiplier,
        }
    }

    #[test]
    fn delays_grow_exponentially_within_equal_jitter_bounds() {
        let p = policy(10, 300, 2.0);
        for seed in 0..200 {
            for (n, nominal) in [(0u32, 10.0), (1, 20.0), (2, 40.0), (3, 80.0), (4, 160.0)] {
                let d = retry_delay(&p, n, seed).as_secs_f64();
                assert!(
                    d >= nominal / 2.0 - 1e-3 && d < nominal + 1e-3,
                    "retry {n} seed {seed}: {d}s outside [{}, {nominal})",
                    nominal / 2.0
                );
            }
        }
    }

    #[test]
    fn delays_never_exceed_max() {
        let p = policy(10, 60, 3.0);
        for seed in 0..100 {
            for n in 0..40 {
                assert!(retry_delay(&p, n, seed) <= Duration::from_secs(60));
            }
        }
        // Late retries sit between max/2 and max.
        let late = retry_delay(&p, 30, 7);
        assert!(late >= Duration::from_secs(30), "{late:?}");
    }

    #[test]
    fn same_seed_same_delay_and_seeds_spread() {
        let p = policy(30, 600, 2.0);
        assert_eq!(retry_delay(&p, 2, 42), retry_delay(&p, 2, 42));
        let distinct: std::collections::BTreeSet<_> =
            (0..50).map(|seed| retry_delay(&p, 2, seed)).collect();
        assert!(distinct.len() > 40, "jitter spreads retries: {distinct:?}");
    }

    #[test]
    fn multiplier_one_is_constant_backoff() {
        let p = policy(5, 5, 1.0);
        for n in 0..5 {
            let d = retry_delay(&p, n, 1);
            assert!(d >= Duration::from_millis(2500) && d <= Duration::from_secs(5));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outages_back_off_instead_of_hot_looping() {
        let calls = Arc::new(AtomicU32::new(0));
        let token = CancellationToken::new();
        let started = tokio::time::Instant::now();
        let result = until_ok(
            &token,
            "test",
            |_| {},
            || {
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) < 5 {
                        Err(Error::Db(sqlx::Error::PoolTimedOut))
                    } else {
                        Ok(7)
                    }
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        // Five pauses of at least 100, 200, 400, 800, 1600 ms (paused clock: exact, no waiting).
        assert!(
            started.elapsed() >= Duration::from_millis(3100),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_are_not_retried_and_cancel_stops_waiting() {
        let token = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let result: Result<()> = until_ok(
            &token,
            "test",
            |_| {},
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Error::InvalidArgument("no".into())) }
            },
        )
        .await;
        assert!(matches!(result, Err(Error::InvalidArgument(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let child = token.child_token();
        let forever = until_ok(
            &child,
            "test",
            |_| {},
            || async { Err::<(), _>(Error::Db(sqlx::Error::PoolTimedOut)) },
        );
        token.cancel();
        assert!(matches!(forever.await, Err(Error::Cancelled)));
    }
}
