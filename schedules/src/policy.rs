//! What a schedule does when the daemon looks at it: which fires happen now, which were missed,
//! and how a fire meets a previous run that is still active.
//!
//! Missed runs (the daemon was down, the schedule was created with a past start) follow the
//! schedule's [`MissedRunPolicy`]; unlike Kubernetes CronJobs there is no "more than 100
//! missed → never start again" cliff: the plan only ever looks at the window it may fire in.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::spec::{CronSpec, Fire};

/// What happens to fires whose time has passed.
///
/// On the wire and in the store it is two fields, `missedRunPolicy` (`skip`, `run-latest`,
/// `catch-up`) and, for `catch-up`, `catchUpLimit`; [`MissedRunPolicy::parse`] is the one
/// place that reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "MissedWire", try_from = "MissedWire")]
pub enum MissedRunPolicy {
    /// Fire only runs still within the starting deadline; older ones are missed.
    Skip,
    /// Fire the most recent due run, however late; older ones are missed.
    RunLatest,
    /// Fire up to `max` of the most recent due runs within the starting deadline, oldest first.
    CatchUp {
        /// Most runs fired in one catch-up.
        max: u32,
    },
}

/// Most runs one catch-up may fire.
pub const MAX_CATCH_UP: u32 = 1000;

impl MissedRunPolicy {
    /// Reads a policy name and, for `catch-up`, its limit (`1..=1000`; others ignore it). The
    /// error names the field at fault and says what is allowed.
    pub fn parse(name: &str, catch_up_limit: Option<u32>) -> Result<Self, (&'static str, String)> {
        match name {
            "skip" => Ok(Self::Skip),
            "run-latest" => Ok(Self::RunLatest),
            "catch-up" => match catch_up_limit.unwrap_or(1) {
                max @ 1..=MAX_CATCH_UP => Ok(Self::CatchUp { max }),
                other => Err((
                    "catchUpLimit",
                    format!("catchUpLimit {other} must be between 1 and {MAX_CATCH_UP}"),
                )),
            },
            other => Err((
                "missedRunPolicy",
                format!("missed-run policy {other:?} is not one of skip, run-latest, catch-up"),
            )),
        }
    }

    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Skip => "skip",
            Self::RunLatest => "run-latest",
            Self::CatchUp { .. } => "catch-up",
        }
    }

    /// The catch-up limit, for `catch-up`.
    pub fn catch_up_limit(self) -> Option<u32> {
        match self {
            Self::CatchUp { max } => Some(max),
            _ => None,
        }
    }
}

/// The two wire fields of a [`MissedRunPolicy`].
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MissedWire {
    #[schema(schema_with = missed_names)]
    missed_run_policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catch_up_limit: Option<u32>,
}

fn missed_names() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["skip", "run-latest", "catch-up"]))
        .build()
}

impl From<MissedRunPolicy> for MissedWire {
    fn from(p: MissedRunPolicy) -> Self {
        Self {
            missed_run_policy: p.name().to_owned(),
            catch_up_limit: p.catch_up_limit(),
        }
    }
}

impl TryFrom<MissedWire> for MissedRunPolicy {
    type Error = String;
    fn try_from(w: MissedWire) -> Result<Self, String> {
        Self::parse(&w.missed_run_policy, w.catch_up_limit).map_err(|(_, why)| why)
    }
}

/// What a fire does when earlier runs of the schedule are still active.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ConcurrencyPolicy {
    /// Run alongside them.
    #[default]
    Allow,
    /// Do not fire while one is active (the fire is recorded as skipped).
    Forbid,
    /// Cancel the active runs, then fire.
    Replace,
}

/// The decision for one fire given the schedule's active runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConcurrencyAction<T> {
    /// Enqueue the run.
    Fire,
    /// Do not enqueue; a run is still active.
    Skip,
    /// Cancel these runs, then enqueue.
    Replace(Vec<T>),
}

impl ConcurrencyPolicy {
    /// Reads a policy name.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "allow" => Ok(Self::Allow),
            "forbid" => Ok(Self::Forbid),
            "replace" => Ok(Self::Replace),
            other => Err(format!(
                "concurrency policy {other:?} is not one of allow, forbid, replace"
            )),
        }
    }

    /// The policy's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Forbid => "forbid",
            Self::Replace => "replace",
        }
    }

    /// Decides a fire against the schedule's active runs.
    pub fn decide<T: Clone>(self, active: &[T]) -> ConcurrencyAction<T> {
        match (self, active.is_empty()) {
            (_, true) | (ConcurrencyPolicy::Allow, _) => ConcurrencyAction::Fire,
            (ConcurrencyPolicy::Forbid, false) => ConcurrencyAction::Skip,
            (ConcurrencyPolicy::Replace, false) => ConcurrencyAction::Replace(active.to_vec()),
        }
    }
}

/// The outcome of looking at a schedule at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirePlan {
    /// Runs to enqueue now, oldest first.
    pub fire: Vec<Fire>,
    /// Runs that will not happen; `missed_more` tells whether there were more than counted.
    pub missed: u64,
    /// True when the missed count stopped at the counting limit.
    pub missed_more: bool,
    /// The nominal time to remember as handled (the latest due one), if any was due.
    pub handled_through: Option<NaiveDateTime>,
    /// When the schedule next needs looking at.
    pub next_at: Option<DateTime<Utc>>,
}

/// Counting missed runs stops here (a per-second schedule down for a year is "≥ 10,000").
const MISSED_COUNT_LIMIT: u64 = 10_000;

/// Plans a schedule at `now`, given the last nominal time already handled (`None`: the
/// schedule is new and nothing before `created` is due).
pub fn plan(
    spec: &CronSpec,
    handled_through: Option<NaiveDateTime>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    missed_policy: MissedRunPolicy,
    starting_deadline: Duration,
    suspended: bool,
) -> FirePlan {
    let deadline = chrono::Duration::from_std(starting_deadline).unwrap_or(chrono::Duration::MAX);
    let since = handled_through.unwrap_or_else(|| spec.local(created));
    let latest_due = spec
        .previous_nominal(spec.local(now))
        .filter(|n| *n > since && spec.resolve(*n) <= now);
    let next_at = spec.fires_after(now).next().map(|f| f.at);
    let Some(latest) = latest_due else {
        return FirePlan {
            fire: Vec::new(),
            missed: 0,
            missed_more: false,
            handled_through,
            next_at,
        };
    };

    // Due runs still within the deadline: walk back from the latest, a bounded window.
    let window_start = now - deadline;
    let mut in_window: Vec<Fire> = Vec::new();
    let mut cursor = Some(latest);
    while let Some(n) = cursor {
        if n <= since {
            break;
        }
        let at = spec.resolve(n);
        if at < window_start || in_window.len() as u64 >= MISSED_COUNT_LIMIT {
            break;
        }
        in_window.push(Fire { nominal: n, at });
        cursor = spec.previous_nominal(n - chrono::Duration::seconds(1));
    }
    in_window.reverse();

    let fire: Vec<Fire> = if suspended {
        Vec::new()
    } else {
        match missed_policy {
            MissedRunPolicy::Skip => in_window.clone(),
            MissedRunPolicy::RunLatest => vec![Fire {
                nominal: latest,
                at: spec.resolve(latest),
            }],
            MissedRunPolicy::CatchUp { max } => {
                let skip = in_window.len().saturating_sub(max as usize);
                in_window[skip..].to_vec()
            }
        }
    };

    // Everything due and not fired is missed; count older ones up to the limit.
    let mut due = in_window.len() as u64;
    let mut missed_more = false;
    if let Some(first) = in_window.first().map(|f| f.nominal).or(Some(latest)) {
        let mut older = if in_window.is_empty() {
            Some(first)
        } else {
            spec.previous_nominal(first - chrono::Duration::seconds(1))
        };
        while let Some(n) = older {
            if n <= since {
                break;
            }
            if due >= MISSED_COUNT_LIMIT {
                missed_more = true;
                break;
            }
            if !in_window.iter().any(|f| f.nominal == n) {
                due += 1;
            }
            older = spec.previous_nominal(n - chrono::Duration::seconds(1));
        }
    }
    let missed = if suspended {
        0
    } else {
        due.saturating_sub(fire.len() as u64)
    };
    FirePlan {
        fire,
        missed,
        missed_more,
        handled_through: Some(latest),
        next_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
            .unwrap()
            .and_utc()
    }

    fn hhmm(fires: &[Fire]) -> Vec<String> {
        fires
            .iter()
            .map(|f| f.nominal.format("%H:%M").to_string())
            .collect()
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn on_time_fire_and_nothing_twice() {
        let s = CronSpec::parse("*/10 * * * *", "UTC").unwrap();
        let created = utc("2026-01-01 09:55:00");
        let p = plan(
            &s,
            None,
            created,
            utc("2026-01-01 10:00:01"),
            MissedRunPolicy::Skip,
            MIN,
            false,
        );
        assert_eq!(hhmm(&p.fire), ["10:00"]);
        assert_eq!(p.missed, 0);
        assert_eq!(p.next_at, Some(utc("2026-01-01 10:10:00")));
        let again = plan(
            &s,
            p.handled_through,
            created,
            utc("2026-01-01 10:00:30"),
            MissedRunPolicy::Skip,
            MIN,
            false,
        );
        assert!(
            again.fire.is_empty(),
            "handled nominal times never fire again"
        );
        assert_eq!(again.handled_through, p.handled_through);
    }

    #[test]
    fn a_new_schedule_does_not_fire_the_past() {
        let s = CronSpec::parse("0 * * * *", "UTC").unwrap();
        let p = plan(
            &s,
            None,
            utc("2026-01-01 10:30:00"),
            utc("2026-01-01 10:45:00"),
            MissedRunPolicy::RunLatest,
            MIN,
            false,
        );
        assert!(p.fire.is_empty());
        assert_eq!(p.missed, 0);
    }

    #[test]
    fn missed_run_policies_after_an_outage() {
        // Every 10 minutes; last handled 10:00; the daemon comes back at 11:05.
        let s = CronSpec::parse("*/10 * * * *", "UTC").unwrap();
        let last = Some(utc("2026-01-01 10:00:00").naive_utc());
        let now = utc("2026-01-01 11:05:00");
        let created = utc("2026-01-01 00:00:00");
        let cases = [
            (
                MissedRunPolicy::Skip,
                Duration::from_secs(600),
                vec!["11:00"],
                5,
            ),
            (MissedRunPolicy::Skip, Duration::from_secs(60), vec![], 6),
            (
                MissedRunPolicy::RunLatest,
                Duration::from_secs(60),
                vec!["11:00"],
                5,
            ),
            (
                MissedRunPolicy::CatchUp { max: 3 },
                Duration::from_secs(3600),
                vec!["10:40", "10:50", "11:00"],
                3,
            ),
            (
                MissedRunPolicy::CatchUp { max: 10 },
                Duration::from_secs(1800),
                vec!["10:40", "10:50", "11:00"],
                3,
            ),
        ];
        for (policy, deadline, fired, missed) in cases {
            let p = plan(&s, last, created, now, policy, deadline, false);
            assert_eq!(hhmm(&p.fire), fired, "{policy:?} {deadline:?}");
            assert_eq!(p.missed, missed, "{policy:?} {deadline:?}");
            assert_eq!(
                p.handled_through,
                Some(utc("2026-01-01 11:00:00").naive_utc())
            );
        }
    }

    #[test]
    fn a_long_outage_is_bounded_and_still_fires_the_latest() {
        let s = CronSpec::parse("* * * * * *", "UTC").unwrap();
        let last = Some(utc("2025-01-01 00:00:00").naive_utc());
        let p = plan(
            &s,
            last,
            utc("2024-01-01 00:00:00"),
            utc("2026-01-01 00:00:00"),
            MissedRunPolicy::RunLatest,
            MIN,
            false,
        );
        assert_eq!(p.fire.len(), 1);
        assert!(p.missed_more && p.missed >= MISSED_COUNT_LIMIT - 1);
    }

    #[test]
    fn suspended_schedules_advance_without_firing() {
        let s = CronSpec::parse("*/10 * * * *", "UTC").unwrap();
        let p = plan(
            &s,
            Some(utc("2026-01-01 10:00:00").naive_utc()),
            utc("2026-01-01 00:00:00"),
            utc("2026-01-01 10:30:00"),
            MissedRunPolicy::CatchUp { max: 5 },
            Duration::from_secs(3600),
            true,
        );
        assert!(p.fire.is_empty());
        assert_eq!(p.missed, 0, "suspension is not a miss");
        assert_eq!(
            p.handled_through,
            Some(utc("2026-01-01 10:30:00").naive_utc()),
            "no catch-up after resuming"
        );
    }

    #[test]
    fn concurrency_policies() {
        assert_eq!(
            ConcurrencyPolicy::Allow.decide(&[1, 2]),
            ConcurrencyAction::Fire
        );
        assert_eq!(
            ConcurrencyPolicy::Forbid.decide(&[1]),
            ConcurrencyAction::Skip
        );
        assert_eq!(
            ConcurrencyPolicy::Forbid.decide::<u8>(&[]),
            ConcurrencyAction::Fire
        );
        assert_eq!(
            ConcurrencyPolicy::Replace.decide(&[7]),
            ConcurrencyAction::Replace(vec![7])
        );
        assert_eq!(
            ConcurrencyPolicy::Replace.decide::<u8>(&[]),
            ConcurrencyAction::Fire
        );
    }

    #[test]
    fn dst_days_fire_each_nominal_time_once() {
        // Hourly in New York across the fall-back night: 01:00 happens twice, fires once.
        let s = CronSpec::parse("0 * * * *", "America/New_York").unwrap();
        let mut handled = None;
        let mut fired = Vec::new();
        let mut now = utc("2026-11-01 03:00:00");
        let created = utc("2026-11-01 03:00:00");
        while now < utc("2026-11-01 10:00:00") {
            let p = plan(&s, handled, created, now, MissedRunPolicy::Skip, MIN, false);
            fired.extend(p.fire.iter().map(|f| {
                (
                    f.nominal.format("%H:%M").to_string(),
                    f.at.format("%H:%M").to_string(),
                )
            }));
            handled = p.handled_through.or(handled);
            now += chrono::Duration::seconds(20);
        }
        let expect = [
            ("00:00", "04:00"),
            ("01:00", "05:00"),
            ("02:00", "07:00"),
            ("03:00", "08:00"),
            ("04:00", "09:00"),
        ];
        let expect: Vec<(String, String)> = expect
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        assert_eq!(
            fired, expect,
            "01:00 EST (06:00 UTC) does not fire a second time"
        );
    }

    #[test]
    fn policies_parse_from_their_stored_names_and_round_trip() {
        let cases: &[(&str, Option<u32>, Result<MissedRunPolicy, &str>)] = &[
            ("skip", None, Ok(MissedRunPolicy::Skip)),
            ("skip", Some(7), Ok(MissedRunPolicy::Skip)),
            ("run-latest", None, Ok(MissedRunPolicy::RunLatest)),
            ("catch-up", Some(4), Ok(MissedRunPolicy::CatchUp { max: 4 })),
            ("catch-up", None, Ok(MissedRunPolicy::CatchUp { max: 1 })),
            ("catch-up", Some(0), Err("catchUpLimit")),
            ("catch-up", Some(1001), Err("catchUpLimit")),
            ("never", None, Err("missedRunPolicy")),
            ("", None, Err("missedRunPolicy")),
            ("SKIP", None, Err("missedRunPolicy")),
        ];
        for (name, limit, want) in cases {
            let got = MissedRunPolicy::parse(name, *limit).map_err(|(field, _)| field);
            assert_eq!(&got, want, "{name:?} {limit:?}");
            if let Ok(p) = got {
                let wire = serde_json::to_value(p).unwrap();
                assert_eq!(serde_json::from_value::<MissedRunPolicy>(wire).unwrap(), p);
            }
        }
        assert!(
            MissedRunPolicy::parse("never", None)
                .unwrap_err()
                .1
                .contains("\"never\"")
        );
        for p in [
            ConcurrencyPolicy::Allow,
            ConcurrencyPolicy::Forbid,
            ConcurrencyPolicy::Replace,
        ] {
            assert_eq!(ConcurrencyPolicy::parse(p.name()), Ok(p));
        }
        assert!(ConcurrencyPolicy::parse("").is_err());
        assert!(ConcurrencyPolicy::parse("Allow").is_err());
    }
}
