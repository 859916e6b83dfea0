//! Cron expressions in a time zone.
//!
//! Expressions follow Vixie cron (`min hour dom month dow`, weekdays 0–7 with 0 and 7 Sunday,
//! names allowed, a day matches when day-of-month OR day-of-week matches), optionally with a
//! leading seconds field, plus the `@hourly`-style nicknames. Schedules iterate **nominal**
//! wall-clock times in their zone; each resolves to one instant: an ambiguous time (DST fall
//! back) to its first occurrence, a skipped one (spring forward) to the moment the clocks jump.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A schedule's firing rule.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    expression: String,
    zone: Tz,
}

/// One firing: the nominal local time (the schedule's identity for it) and when it happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fire {
    /// Wall-clock time in the schedule's zone, as the expression names it.
    pub nominal: NaiveDateTime,
    /// The instant it resolves to.
    pub at: DateTime<Utc>,
}

/// Why an expression or zone was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl CronSpec {
    /// Parses an expression (5 or 6 fields, or a nickname) and an IANA zone name.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, SpecError> {
        let trimmed = expression.trim();
        if trimmed.len() > 256 || trimmed.chars().any(char::is_control) {
            return Err(SpecError(
                "a cron expression is at most 256 printable characters".into(),
            ));
        }
        let fields = trimmed.split_whitespace().count();
        if !trimmed.starts_with('@') && !(5..=6).contains(&fields) {
            return Err(SpecError(format!(
                "cron expression {trimmed:?} has {fields} fields; use 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
            )));
        }
        // An empty list item (`,`, `1,,2`, `5,`) is accepted by the parser as "matches
        // nothing": such a field never fires, and proving that (below) searched for seconds —
        // found by fuzzing (`*/2 , */1 * * *`). Refuse it by its shape, at once.
        if let Some((n, field)) = trimmed
            .split_whitespace()
            .enumerate()
            .find(|(_, f)| f.split(',').any(str::is_empty))
        {
            return Err(SpecError(format!(
                "cron expression {trimmed:?} has an empty list item in field {} ({field:?}); separate values with single commas",
                n + 1
            )));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(trimmed)
            .map_err(|e| SpecError(format!("cron expression {trimmed:?} is invalid: {e}")))?;
        let zone: Tz = zone.parse().map_err(|_| {
            SpecError(format!(
                "time zone {zone:?} is not an IANA zone name like \"Europe/Berlin\" or \"UTC\""
            ))
        })?;
        let spec = Self {
            cron,
            expression: trimmed.to_owned(),
            zone,
        };
        // An expression that matches nothing (e.g. 30 February) would never fire: refuse it now.
        let probe = Utc::now().with_timezone(&spec.zone).naive_local();
        if spec.next_nominal(probe).is_none() {
            return Err(SpecError(format!(
                "cron expression {trimmed:?} never matches a date"
            )));
        }
        Ok(spec)
    }

    /// The expression as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The first nominal time strictly after `after` (wall clock in the zone).
    pub fn next_nominal(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The last nominal time at or before `at` (wall clock in the zone).
    pub fn previous_nominal(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        self.cron.find_previous_occurrence(&at, true).ok()
    }

    /// Nominal times strictly after `after`, in order.
    pub fn nominal_after(&self, after: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
        std::iter::successors(self.next_nominal(after), move |t| self.next_nominal(*t))
    }

    /// The wall-clock time in the zone at an instant.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        at.with_timezone(&self.zone).naive_local()
    }

    /// The instant a nominal time fires at.
    pub fn resolve(&self, nominal: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&nominal) {
            chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
            chrono::LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            chrono::LocalResult::None => self.gap_end(nominal),
        }
    }

    /// The next fires strictly after an instant.
    pub fn fires_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = Fire> + '_ {
        // Start before the wall-clock reading by as much as the clocks went back lately (a
        // fall-back hour repeats wall-clock times; one already passed must not come around
        // again, which the filter ensures). Without a recent fall-back that is one second, so
        // a per-second schedule costs one step, not hours of them.
        let offset = |t: DateTime<Utc>| {
            i64::from(
                self.zone
                    .offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        };
        let went_back = (offset(after - Duration::hours(3)) - offset(after)).max(0);
        let start = self.local(after) - Duration::seconds(went_back + 1);
        self.nominal_after(start)
            .map(|nominal| Fire {
                nominal,
                at: self.resolve(nominal),
            })
            .filter(move |f| f.at > after)
    }

    /// For a wall-clock time that does not exist (the clocks jumped over it): the instant of
    /// the jump, i.e. the first instant whose wall clock is at or after it.
    fn gap_end(&self, nominal: NaiveDateTime) -> DateTime<Utc> {
        let offset_at = |naive: NaiveDateTime| {
            i64::from(
                self.zone
                    .offset_from_utc_datetime(&naive)
                    .fix()
                    .local_minus_utc(),
            )
        };
        // Offsets a day either side bracket the transition (zones never jump twice in two days).
        let before = offset_at(nominal - Duration::days(1));
        let after = offset_at(nominal + Duration::days(1));
        // Whole seconds: transitions fall on them, and halving a duration would drift into
        // fractions — each skipped time then fired at a slightly different instant, out of
        // order (found by fuzzing: `* 2 * * 0` in Europe/Berlin on 2026-03-29).
        let mut lo = (nominal - Duration::seconds(before.max(after)))
            .and_utc()
            .timestamp();
        let mut hi = (nominal - Duration::seconds(before.min(after)))
            .and_utc()
            .timestamp();
        let at = |secs: i64| DateTime::from_timestamp(secs, 0).unwrap_or_default();
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.local(at(mid)) >= nominal {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        if self.local(at(lo)) >= nominal {
            at(lo)
        } else {
            at(hi)
        }
    }
}

impl fmt::Display for CronSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone)
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn naive(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        naive(s).and_utc()
    }

    #[test]
    fn five_and_six_field_expressions_and_nicknames() {
        let every_15 = CronSpec::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            every_15.next_nominal(naive("2026-01-01 10:07:00")),
            Some(naive("2026-01-01 10:15:00"))
        );
        let with_seconds = CronSpec::parse("30 */15 * * * *", "UTC").unwrap();
        assert_eq!(
            with_seconds.next_nominal(naive("2026-01-01 10:07:00")),
            Some(naive("2026-01-01 10:15:30"))
        );
        let daily = CronSpec::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_nominal(naive("2026-01-01 10:07:00")),
            Some(naive("2026-01-02 00:00:00"))
        );
    }

    #[test]
    fn weekdays_are_numbered_like_vixie_cron() {
        // 2026-01-04 is a Sunday.
        for (expr, next) in [
            ("0 9 * * 0", "2026-01-04 09:00:00"),
            ("0 9 * * 7", "2026-01-04 09:00:00"),
            ("0 9 * * 1", "2026-01-05 09:00:00"),
            ("0 9 * * MON-FRI", "2026-01-05 09:00:00"),
            ("0 9 * * 6", "2026-01-03 09:00:00"),
        ] {
            let s = CronSpec::parse(expr, "UTC").unwrap();
            assert_eq!(
                s.next_nominal(naive("2026-01-02 12:00:00")),
                Some(naive(next)),
                "{expr}"
            );
        }
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Vixie rule: the 15th OR any Monday.
        let s = CronSpec::parse("0 0 15 * MON", "UTC").unwrap();
        let days: Vec<u32> = s
            .nominal_after(naive("2026-06-01 00:00:00"))
            .take(4)
            .map(|t| t.date().format("%d").to_string().parse().unwrap())
            .collect();
        assert_eq!(days, [8, 15, 22, 29], "Mondays 8, 22, 29 and the 15th");
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        for (expr, zone, word) in [
            ("* * * *", "UTC", "4 fields"),
            ("* * * * * * *", "UTC", "7 fields"),
            ("61 * * * *", "UTC", "invalid"),
            ("* * * * FUNDAY", "UTC", "invalid"),
            ("0 0 30 2 *", "UTC", "never matches"),
            ("*/5 * * * *", "Mars/Olympus", "IANA"),
            ("", "UTC", "0 fields"),
            ("* * * * *\u{0}", "UTC", "printable"),
            ("*/2 , */1 * * *", "UTC", "empty list item in field 2"),
            ("1,,2 * * * *", "UTC", "empty list item in field 1"),
            ("0 0 1, * *", "UTC", "empty list item in field 3"),
            ("0 0 * * ,MON", "UTC", "empty list item in field 5"),
        ] {
            let err = CronSpec::parse(expr, zone).unwrap_err().to_string();
            assert!(err.contains(word), "{expr:?}: {err}");
        }
        assert!(CronSpec::parse(&"*".repeat(1000), "UTC").is_err());
    }

    #[test]
    fn every_skipped_time_fires_exactly_at_the_jump_in_order() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
        let s = CronSpec::parse("* 2 * * 0", "Europe/Berlin").unwrap();
        let fires: Vec<Fire> = s.fires_after(utc("2026-03-29 00:30:00")).take(60).collect();
        assert_eq!(fires[0].nominal, naive("2026-03-29 02:00:00"));
        assert_eq!(fires[59].nominal, naive("2026-03-29 02:59:00"));
        for f in &fires {
            assert_eq!(f.at, utc("2026-03-29 01:00:00"), "{f:?}");
        }
    }

    #[test]
    fn spring_forward_skipped_time_fires_once_at_the_jump() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        let s = CronSpec::parse("30 2 * * *", "America/New_York").unwrap();
        let fires: Vec<Fire> = s.fires_after(utc("2026-03-07 12:00:00")).take(2).collect();
        assert_eq!(fires[0].nominal, naive("2026-03-08 02:30:00"));
        assert_eq!(
            fires[0].at,
            utc("2026-03-08 07:00:00"),
            "the instant the clocks jump"
        );
        assert_eq!(
            fires[1].at,
            utc("2026-03-09 06:30:00"),
            "next day back to 02:30 EDT"
        );
    }

    #[test]
    fn fall_back_repeated_time_fires_once() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
        let s = CronSpec::parse("30 1 * * *", "America/New_York").unwrap();
        let fires: Vec<Fire> = s.fires_after(utc("2026-10-31 12:00:00")).take(2).collect();
        assert_eq!(fires[0].at, utc("2026-11-01 05:30:00"), "first 01:30 (EDT)");
        assert_eq!(
            fires[1].nominal.date(),
            NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            "not again at 06:30 UTC"
        );
        // Asking from between the two 01:30s must not fire the repeat.
        let again: Vec<Fire> = s.fires_after(utc("2026-11-01 05:45:00")).take(1).collect();
        assert_eq!(again[0].nominal, naive("2026-11-02 01:30:00"));
    }

    #[test]
    fn every_half_hour_through_both_transitions() {
        let s = CronSpec::parse("*/30 * * * *", "Europe/Berlin").unwrap();
        // 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC).
        let spring: Vec<Fire> = s.fires_after(utc("2026-03-29 00:00:00")).take(4).collect();
        let ats: Vec<String> = spring
            .iter()
            .map(|f| f.at.format("%H:%M").to_string())
            .collect();
        assert_eq!(
            ats,
            ["00:30", "01:00", "01:00", "01:00"],
            "02:00 and 02:30 do not exist and fire at the jump"
        );
        let nominals: Vec<String> = spring
            .iter()
            .map(|f| f.nominal.format("%H:%M").to_string())
            .collect();
        assert_eq!(
            nominals,
            ["01:30", "02:00", "02:30", "03:00"],
            "each nominal time once"
        );
        // 2026-10-25 03:00 CEST → 02:00 CET (01:00 UTC): 02:00 and 02:30 repeat, fire once each.
        let autumn: Vec<Fire> = s.fires_after(utc("2026-10-24 23:45:00")).take(5).collect();
        let nominals: Vec<String> = autumn
            .iter()
            .map(|f| f.nominal.format("%H:%M").to_string())
            .collect();
        assert_eq!(nominals, ["02:00", "02:30", "03:00", "03:30", "04:00"]);
        let ats: Vec<String> = autumn
            .iter()
            .map(|f| f.at.format("%H:%M").to_string())
            .collect();
        assert_eq!(
            ats,
            ["00:00", "00:30", "02:00", "02:30", "03:00"],
            "the repeated hour is skipped, not fired twice"
        );
    }
}
