//! The relay gives way to admissions. On a small machine the daemon, PostgreSQL and RabbitMQ
//! share a few cores: while a burst of jobs is being admitted, publishing its events at the
//! same time slows the admissions themselves (the end-to-end bench: the relay took about a
//! seventh of the CPU of a burst). Events are notifications; nothing waits on them to admit a
//! job. So the relay waits until admissions have paused for a moment, but never longer than a
//! bound: no event is held more than about that long however busy admission stays.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Admissions in progress in this process, shared by the store's clones (the submitter marks
/// them, the relay waits on them).
#[derive(Debug, Default)]
pub struct Admissions {
    running: AtomicUsize,
    /// When the last admission ended (a new one may follow at once: a quiet moment is needed).
    last_end: std::sync::Mutex<Option<Instant>>,
    changed: Notify,
}

/// Marks admissions in progress until dropped ([`Admissions::start`]).
#[derive(Debug)]
pub struct Admitting(Arc<Admissions>);

impl Admissions {
    /// Marks admissions in progress (a round creating applications) until the guard drops.
    pub fn start(self: &Arc<Self>) -> Admitting {
        self.running.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_waiters();
        Admitting(self.clone())
    }

    /// Returns once no admission has run for `quiet`, or at `deadline` at the latest.
    pub async fn quiet_for(&self, quiet: Duration, deadline: Instant) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wake = if self.running.load(Ordering::SeqCst) > 0 {
                deadline
            } else {
                let last_end = *self
                    .last_end
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match last_end {
                    Some(end) if end + quiet > now => (end + quiet).min(deadline),
                    _ => return,
                }
            };
            tokio::select! {
                () = &mut changed => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }
}

impl Drop for Admitting {
    fn drop(&mut self) {
        *self
            .0
            .last_end
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.0.running.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(25);
    const BOUND: Duration = Duration::from_secs(1);

    /// How long `quiet_for` waits after `setup` ran at time 0 (virtual time).
    async fn waited(
        setup: impl FnOnce(&Arc<Admissions>) -> Option<(Admitting, Duration)>,
    ) -> Duration {
        let admissions = Arc::new(Admissions::default());
        let started = Instant::now();
        if let Some((guard, hold)) = setup(&admissions) {
            tokio::spawn(async move {
                tokio::time::sleep(hold).await;
                drop(guard);
            });
        }
        admissions.quiet_for(QUIET, started + BOUND).await;
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_relay_waits_for_a_quiet_moment_and_never_past_its_bound() {
        let ms = Duration::from_millis;
        // (what runs, how long the relay waits)
        let cases: [(&str, Option<Duration>, Duration); 4] = [
            ("nothing admitting", None, ms(0)),
            ("an admission ending after 100 ms", Some(ms(100)), ms(125)),
            ("an admission ending after 990 ms", Some(ms(990)), BOUND),
            ("an admission that runs on", Some(ms(60_000)), BOUND),
        ];
        for (what, hold, expected) in cases {
            let got = waited(|a| hold.map(|h| (a.start(), h))).await;
            assert_eq!(got, expected, "{what}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_admission_that_just_ended_still_holds_the_relay_for_the_quiet_moment() {
        let admissions = Arc::new(Admissions::default());
        drop(admissions.start());
        tokio::time::sleep(Duration::from_millis(10)).await;
        let started = Instant::now();
        admissions.quiet_for(QUIET, started + BOUND).await;
        assert_eq!(started.elapsed(), Duration::from_millis(15));
        // Back-to-back admissions (a round right after another) keep it waiting.
        let started = Instant::now();
        let a = admissions.clone();
        tokio::spawn(async move {
            for _ in 0..4 {
                let guard = a.start();
                tokio::time::sleep(Duration::from_millis(50)).await;
                drop(guard);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        tokio::task::yield_now().await;
        admissions.quiet_for(QUIET, started + BOUND).await;
        assert_eq!(started.elapsed(), Duration::from_millis(4 * 55 - 5 + 25));
    }
}
