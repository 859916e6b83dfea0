//! A job's retry policy and the delay before its next attempt (persisted by the store as
//! `next_attempt_at`, so it survives restarts).
//!
//! The delay uses `backon`'s exponential builder with jitter, halved into "equal jitter": the
//! n-th retry waits a random time in `[d/2, d)` where `d = min(initial × multiplier^n, max)`,
//! so the policy's `max` is never exceeded and two jobs failing together do not come back
//! together.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use serde::{Deserialize, Serialize};

use crate::duration::JobDuration;

/// How a failed attempt is retried.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Delay between attempts.
    pub backoff: Backoff,
}

/// Exponential backoff: `initial × multiplier^(attempt-1)`, capped at `max`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backoff {
    /// First delay.
    pub initial: JobDuration,
    /// Largest delay.
    pub max: JobDuration,
    /// Growth factor per attempt.
    pub multiplier: f64,
}

impl Backoff {
    /// A backoff is sane (for jobs and for the catalog's defaults) when `1s ≤ initial ≤ max ≤ 24h` and the
    /// multiplier is in `[1, 10]`. The error names the offending field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        if self.initial.0 < Duration::from_secs(1) || self.initial.0 > DAY {
            return Err((
                "initial",
                format!(
                    "initial backoff {} must be between 1s and 24h",
                    self.initial
                ),
            ));
        }
        if self.max.0 < self.initial.0 || self.max.0 > DAY {
            return Err((
                "max",
                format!(
                    "max backoff {} must be at least the initial backoff ({}) and at most 24h",
                    self.max, self.initial
                ),
            ));
        }
        if !(self.multiplier.is_finite() && (1.0..=10.0).contains(&self.multiplier)) {
            return Err((
                "multiplier",
                format!("multiplier {} must be between 1 and 10", self.multiplier),
            ));
        }
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {

    use super::*;

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
}
