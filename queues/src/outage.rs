//! The pause between tries when PostgreSQL or RabbitMQ is away, so an outage never becomes a
//! hot loop: `backon`'s exponential builder with jitter, 100 ms doubling to 30 s, until shutdown.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::error::{Error, Result};

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

/// A session that lasted this long was healthy: the next failure starts the backoff afresh.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);

/// Keeps a connection-bound service running: starts `session`, and when it fails (the broker
/// went away, or lapin's recovery gave up), reports the error, pauses with
/// [`outage_backoff`] and starts it again. The backoff restarts after a healthy session, so a
/// flapping broker backs off while a rare drop reconnects at once. Returns `Ok` when
/// `session` does (it was cancelled) or `token` is cancelled.
pub async fn reconnecting<F, Fut>(
    token: &CancellationToken,
    what: &'static str,
    on_error: impl Fn(&Error),
    mut session: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let mut backoff = outage_backoff().build();
    loop {
        if token.is_cancelled() {
            return Ok(());
        }
        let started = Instant::now();
        let Err(e) = session().await else {
            return Ok(());
        };
        on_error(&e);
        if started.elapsed() > HEALTHY_SESSION {
            backoff = outage_backoff().build();
        }
        let pause = backoff.next().unwrap_or(Duration::from_secs(30));
        warn!(error = %e, what, pause_ms = pause.as_millis(), "session ended; reconnecting");
        tokio::select! {
            _ = token.cancelled() => return Ok(()),
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

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

    #[tokio::test(start_paused = true)]
    async fn failed_sessions_restart_after_growing_pauses_until_one_ends_cleanly() {
        let token = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let errors = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = reconnecting(
            &token,
            "test",
            |_| {
                errors.fetch_add(1, Ordering::SeqCst);
            },
            || {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n < 3 {
                        Err(Error::Db(sqlx::Error::PoolTimedOut))
                    } else {
                        Ok(())
                    }
                }
            },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "three failures, then a clean end"
        );
        assert_eq!(
            errors.load(Ordering::SeqCst),
            3,
            "every failure is reported"
        );
        // Pauses of at least 100, 200 and 400 ms (jitter only adds).
        assert!(
            started.elapsed() >= Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_token_stops_reconnecting_during_a_pause() {
        let token = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let run = reconnecting(
            &token,
            "test",
            |_| {},
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(Error::Db(sqlx::Error::PoolTimedOut)) }
            },
        );
        let cancel = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(run, cancel);
        assert!(result.is_ok(), "cancellation is a clean stop");
        let n = calls.load(Ordering::SeqCst);
        assert!(
            (2..10).contains(&n),
            "backed off instead of hot-looping: {n} sessions in 5 s"
        );
    }
}
