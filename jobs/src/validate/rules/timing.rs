//! When and how often: `retry` (attempts and backoff), `ttl`, `timeout` and `deadline`, within
//! the catalog's limits.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::duration::JobDuration;
use crate::retry::{Backoff, RetryPolicy};
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, Obj, kind};

/// The timing part of a job.
#[derive(Debug, PartialEq)]
pub(super) struct Timing {
    pub(super) retry: RetryPolicy,
    pub(super) ttl: Option<JobDuration>,
    pub(super) timeout: Option<JobDuration>,
    pub(super) deadline: Option<DateTime<Utc>>,
}

/// Retry, ttl, timeout and deadline, all checked before any is given up on.
pub(super) fn timing(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Timing> {
    let defaults = ctx.catalog.defaults();
    let limits = *ctx.catalog.limits();
    let retry = retry(ctx, obj, &defaults.retry.policy(), limits.max_attempts);
    let ttl = duration(ctx, obj, "ttl", limits.max_ttl).unwrap_or(defaults.ttl);
    let timeout = duration(ctx, obj, "timeout", limits.max_timeout).unwrap_or(None);
    let deadline = deadline(ctx, obj);
    Some(Timing {
        retry: retry?,
        ttl,
        timeout,
        deadline,
    })
}

fn retry(
    ctx: &mut Ctx<'_>,
    parent: &Obj<'_>,
    default: &RetryPolicy,
    max_attempts: u32,
) -> Option<RetryPolicy> {
    let Some((v, at)) = parent.get("retry") else {
        return Some(*default);
    };
    let obj = ctx.object(v, &at, &["maxAttempts", "backoff"], &[])?;
    let attempts = obj
        .get("maxAttempts")
        .map_or(Some(default.max_attempts), |(v, at)| {
            ctx.integer(v, &at, 1, max_attempts)
        });
    let backoff = match obj.get("backoff") {
        None => Some(default.backoff),
        Some((v, at)) => {
            let b = ctx.object(v, &at, &["initial", "max", "multiplier"], &[])?;
            backoff(ctx, &b, &default.backoff)
        }
    };
    Some(RetryPolicy {
        max_attempts: attempts?,
        backoff: backoff?,
    })
}

/// The fields of `retry.backoff`, each falling back to the default, checked together.
fn backoff(ctx: &mut Ctx<'_>, b: &Obj<'_>, default: &Backoff) -> Option<Backoff> {
    let initial = duration_field(ctx, b, "initial").unwrap_or(Some(default.initial));
    let max = duration_field(ctx, b, "max").unwrap_or(Some(default.max));
    let multiplier = match b.get("multiplier") {
        None => Some(default.multiplier),
        Some((v, at)) => {
            let m = v.as_f64();
            if m.is_none() {
                ctx.push(
                    P::WrongType,
                    &at,
                    format!("multiplier must be a number, found {}", kind(v)),
                );
            }
            m
        }
    };
    let backoff = Backoff {
        initial: initial?,
        max: max?,
        multiplier: multiplier?,
    };
    match backoff.check() {
        Ok(()) => Some(backoff),
        Err((field, why)) => {
            ctx.push(P::OutOfRange, &b.path(field), why);
            None
        }
    }
}

/// `None` when absent; `Some(None)` when present but invalid.
fn duration_field(ctx: &mut Ctx<'_>, obj: &Obj<'_>, key: &str) -> Option<Option<JobDuration>> {
    let (v, at) = obj.get(key)?;
    let Some(s) = ctx.string(v, &at, 64, false) else {
        return Some(None);
    };
    Some(match s.parse::<JobDuration>() {
        Ok(d) => Some(d),
        Err(why) => {
            ctx.push(P::InvalidDuration, &at, why);
            None
        }
    })
}

/// A positive duration up to `max`: `None` when absent, `Some(None)` when invalid.
fn duration(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    key: &str,
    max: JobDuration,
) -> Option<Option<JobDuration>> {
    let parsed = duration_field(ctx, obj, key)?;
    Some(parsed.and_then(|d| {
        if d.0 < Duration::from_secs(1) || d > max {
            ctx.push(
                P::OutOfRange,
                &obj.path(key),
                format!("{key} {d} must be between 1s and {max}"),
            );
            None
        } else {
            Some(d)
        }
    }))
}

fn deadline(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<DateTime<Utc>> {
    let (v, at) = obj.get("deadline")?;
    let s = ctx.string(v, &at, 64, false)?;
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(e) => {
            ctx.push(
                P::InvalidTimestamp,
                &at,
                format!("{s:?} is not an RFC 3339 timestamp like 2026-01-31T23:00:00Z: {e}"),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{problems_at, run, table};
    use super::*;

    fn secs(s: u64) -> JobDuration {
        JobDuration(Duration::from_secs(s))
    }

    fn policy(max_attempts: u32, initial: u64, max: u64, multiplier: f64) -> Option<RetryPolicy> {
        Some(RetryPolicy {
            max_attempts,
            backoff: Backoff {
                initial: secs(initial),
                max: secs(max),
                multiplier,
            },
        })
    }

    #[test]
    fn durations_are_positive_and_bounded() {
        table(
            vec![
                (json!({}), None, &[]),
                (json!({"ttl": "90m"}), Some(Some(secs(5400))), &[]),
                (json!({"ttl": "2d"}), Some(Some(secs(2 * 86400))), &[]),
                (json!({"ttl": "1s"}), Some(Some(secs(1))), &[]),
                (
                    json!({"ttl": "0s"}),
                    Some(None),
                    &[(P::OutOfRange, "$.ttl")],
                ),
                (
                    json!({"ttl": "49h"}),
                    Some(None),
                    &[(P::OutOfRange, "$.ttl")],
                ),
                (
                    json!({"ttl": "soon"}),
                    Some(None),
                    &[(P::InvalidDuration, "$.ttl")],
                ),
                (json!({"ttl": 60}), Some(None), &[(P::WrongType, "$.ttl")]),
            ],
            |ctx, obj| duration(ctx, obj, "ttl", secs(2 * 86400)),
        );
    }

    #[test]
    fn ttl_defaults_and_timeout_does_not() {
        let (got, problems) = run(&json!({}), timing);
        assert_eq!(problems, vec![]);
        let got = got.unwrap();
        assert_eq!(got.ttl, Some(secs(3600)), "the catalog's default ttl");
        assert_eq!(got.timeout, None);
        assert_eq!(got.deadline, None);
        assert_eq!(Some(got.retry), policy(3, 30, 600, 2.0));
    }

    #[test]
    fn deadlines_are_rfc3339() {
        let at = DateTime::parse_from_rfc3339("2026-01-31T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        table(
            vec![
                (json!({"deadline": "2026-01-31T23:00:00Z"}), Some(at), &[]),
                (
                    json!({"deadline": "2026-02-01T01:00:00+02:00"}),
                    Some(at),
                    &[],
                ),
                (
                    json!({"deadline": "2026-01-31"}),
                    None,
                    &[(P::InvalidTimestamp, "$.deadline")],
                ),
                (
                    json!({"deadline": 1769900400}),
                    None,
                    &[(P::WrongType, "$.deadline")],
                ),
            ],
            deadline,
        );
    }

    #[test]
    fn retry_fields_fall_back_one_by_one() {
        let default = policy(3, 30, 600, 2.0).unwrap();
        table(
            vec![
                (json!({}), Some(default), &[]),
                (json!({"retry": {}}), Some(default), &[]),
                (
                    json!({"retry": {"maxAttempts": 5}}),
                    policy(5, 30, 600, 2.0),
                    &[],
                ),
                (
                    json!({"retry": {"backoff": {"initial": "1m", "multiplier": 3}}}),
                    policy(3, 60, 600, 3.0),
                    &[],
                ),
                (
                    json!({"retry": {"maxAttempts": 6}}),
                    None,
                    &[(P::OutOfRange, "$.retry.maxAttempts")],
                ),
                (
                    json!({"retry": {"backoff": {"initial": "25h"}}}),
                    None,
                    &[(P::OutOfRange, "$.retry.backoff.initial")],
                ),
                (
                    json!({"retry": {"backoff": {"multiplier": "2"}}}),
                    None,
                    &[(P::WrongType, "$.retry.backoff.multiplier")],
                ),
                (
                    json!({"retry": {"backoff": {"max": "never"}}}),
                    None,
                    &[(P::InvalidDuration, "$.retry.backoff.max")],
                ),
                (
                    json!({"retry": {"attempts": 2}}),
                    Some(default),
                    &[(P::UnknownField, "$.retry.attempts")],
                ),
                (json!({"retry": 3}), None, &[(P::WrongType, "$.retry")]),
            ],
            |ctx, obj| retry(ctx, obj, &default, 5),
        );
    }

    #[test]
    fn timing_reports_in_field_order() {
        let body = json!({
            "deadline": "tomorrow",
            "timeout": "0s",
            "ttl": "forever",
            "retry": {"maxAttempts": 0},
        });
        let (got, problems) = run(&body, timing);
        assert_eq!(got, None);
        assert_eq!(
            problems,
            problems_at(&[
                (P::OutOfRange, "$.retry.maxAttempts"),
                (P::InvalidDuration, "$.ttl"),
                (P::OutOfRange, "$.timeout"),
                (P::InvalidTimestamp, "$.deadline"),
            ])
        );
    }
}
