//! The markdown report: one table line per policy, then the targets checked against
//! the orchestrator's line.

use std::fmt::Write as _;

use crate::estimates::Spread;
use crate::metrics::{Summary, Waits};

/// `93s`, `12m 05s`, `2h 03m`, or `never` for an infinite wait.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "never".to_owned();
    }
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn waits(w: Option<Waits>) -> String {
    w.map_or("—".to_owned(), |w| {
        format!(
            "{} / {} / {}",
            duration(w.p50),
            duration(w.p95),
            duration(w.p99)
        )
    })
}

fn util(u: Option<(f64, f64)>) -> String {
    u.map_or("— (nothing that fits waited)".to_owned(), |(c, m)| {
        format!("{} / {}", pct(c), pct(m))
    })
}

/// High p95 ÷ normal p95 (`None` when either is missing or infinite).
pub fn priority_ratio(s: &Summary) -> Option<f64> {
    let (h, n) = (s.high?.p95, s.normal?.p95);
    (h.is_finite() && n.is_finite() && n > 0.0).then(|| h / n)
}

/// The report table (markdown).
pub fn table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let limit = summaries.first().map_or(0.0, |s| s.stuck_limit);
    let _ = writeln!(
        out,
        "| policy | finished / jobs | stuck (> {}) | pod found no node / preempted | high wait p50 / p95 / p99 | normal wait p50 / p95 / p99 | high p95 ÷ normal p95 | max wait | makespan | util. while work that fits waited (cpu / mem) | time work that fits waited | mean util. (cpu / mem) |",
        duration(limit)
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for s in summaries {
        let max = s
            .high
            .iter()
            .chain(s.normal.iter())
            .map(|w| w.max)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "| {} | {} / {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.policy,
            s.finished,
            s.jobs,
            s.stuck,
            s.unschedulable.0,
            s.unschedulable.1,
            waits(s.high),
            waits(s.normal),
            priority_ratio(s).map_or("—".to_owned(), |r| format!("{r:.2}")),
            duration(max),
            if s.finished == s.jobs {
                duration(s.makespan)
            } else {
                format!("≥ {} (cut off)", duration(s.makespan))
            },
            util(s.util_fits_waiting),
            pct(s.fits_waiting_share),
            util(s.util_overall),
        );
    }
    out
}

/// The targets against one summary: (target, measured, met).
pub fn targets(s: &Summary) -> Vec<(String, String, bool)> {
    let mut out = vec![(
        "0 stuck applications".to_owned(),
        s.stuck.to_string(),
        s.stuck == 0,
    )];
    out.push(match priority_ratio(s) {
        Some(r) => (
            "high p95 wait ≤ 1/5 of normal p95".to_owned(),
            format!("{r:.3}"),
            r <= 0.2,
        ),
        None => (
            "high p95 wait ≤ 1/5 of normal p95".to_owned(),
            "not measurable".to_owned(),
            false,
        ),
    });
    let max = s
        .high
        .iter()
        .chain(s.normal.iter())
        .map(|w| w.max)
        .fold(0.0, f64::max);
    out.push((
        "no job waits forever".to_owned(),
        format!(
            "max wait {}, {} of {} finished",
            duration(max),
            s.finished,
            s.jobs
        ),
        max.is_finite() && s.finished == s.jobs,
    ));
    let dominant = s.util_fits_waiting.map(|(c, m)| c.max(m));
    out.push((
        "utilization while work that fits waits ≥ 85% (dominant resource)".to_owned(),
        dominant.map_or("no such moment".to_owned(), pct),
        dominant.is_none_or(|d| d >= 0.85),
    ));
    out
}

/// Preemption's and start estimates' figures, one line per policy (markdown).
pub fn preemption_table(summaries: &[Summary]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| policy | preemptions | work lost to preemption | start estimate error at enqueue p50 / p90 (jobs) | at the last wait p50 / p90 (jobs) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    let spread = |s: Option<Spread>| {
        s.map_or("—".to_owned(), |s| {
            format!("{} / {} ({})", duration(s.p50), duration(s.p90), s.jobs)
        })
    };
    for s in summaries {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} cpu·h | {} | {} |",
            s.policy,
            s.preemptions,
            s.lost_cpu_seconds / 3600.0,
            spread(s.estimate_first),
            spread(s.estimate_last),
        );
    }
    out
}

/// Issue 19's targets for preemption: the policy `with` it against `without` it on the same
/// trace — (target, measured, met).
pub fn preemption_targets(without: &Summary, with: &Summary) -> Vec<(String, String, bool)> {
    let p95 = |s: &Summary| s.high.map_or(f64::INFINITY, |w| w.p95);
    let ratio = priority_ratio(with);
    vec![
        (
            "with preemption, high p95 wait ≤ 1/10 of normal p95".to_owned(),
            ratio.map_or("not measurable".to_owned(), |r| format!("{r:.3}")),
            ratio.is_some_and(|r| r <= 0.1),
        ),
        (
            "high p95 wait lower with preemption than without".to_owned(),
            format!("{} vs {}", duration(p95(with)), duration(p95(without))),
            p95(with) < p95(without),
        ),
        (
            "0 stuck applications with preemption".to_owned(),
            with.stuck.to_string(),
            with.stuck == 0,
        ),
        (
            "every job finishes with preemption".to_owned(),
            format!("{} of {}", with.finished, with.jobs),
            with.finished == with.jobs,
        ),
    ]
}

/// The targets as a markdown list.
pub fn targets_markdown(s: &Summary) -> String {
    checklist(&targets(s))
}

/// (target, measured, met) lines as a markdown list.
pub fn checklist(lines: &[(String, String, bool)]) -> String {
    let mut out = String::new();
    for (target, measured, met) in lines {
        let _ = writeln!(
            out,
            "- {} {target}: **{measured}**",
            if *met { "✅" } else { "❌" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(0.4), "0s");
        assert_eq!(duration(93.0), "93s");
        assert_eq!(duration(725.0), "12m 05s");
        assert_eq!(duration(7380.0), "2h 03m");
        assert_eq!(duration(f64::INFINITY), "never");
    }

    fn summary(high_p95: f64, normal_p95: f64) -> Summary {
        let w = |p95: f64| Waits {
            jobs: 10,
            p50: 1.0,
            p95,
            p99: p95,
            max: p95,
        };
        Summary {
            policy: "x".into(),
            jobs: 10,
            finished: 10,
            succeeded: 10,
            stuck: 0,
            stuck_limit: 120.0,
            high: Some(w(high_p95)),
            normal: Some(w(normal_p95)),
            makespan: 100.0,
            util_fits_waiting: Some((0.9, 0.5)),
            fits_waiting_share: 0.1,
            util_overall: Some((0.7, 0.6)),
            stalls: (0, 0.0),
            unschedulable: (3, 1),
            preemptions: 0,
            lost_cpu_seconds: 0.0,
            estimate_first: None,
            estimate_last: None,
        }
    }

    #[test]
    fn targets_are_checked_honestly() {
        let ok = targets(&summary(10.0, 100.0));
        assert!(ok.iter().all(|t| t.2), "{ok:?}");
        let bad = targets(&summary(30.0, 100.0));
        assert!(!bad[1].2, "0.3 > 0.2");
        let never = targets(&summary(10.0, f64::INFINITY));
        assert!(!never[1].2 && !never[2].2);
        assert!(table(&[summary(10.0, 100.0)]).contains("| x | 10 / 10 | 0 | 3 / 1 |"));
    }

    #[test]
    fn preemption_targets_compare_with_the_run_without() {
        let without = summary(60.0, 1000.0);
        let met = preemption_targets(&without, &summary(50.0, 1000.0));
        assert!(met.iter().all(|t| t.2), "{met:?}");
        let not_lower = preemption_targets(&without, &summary(60.0, 1000.0));
        assert!(not_lower[0].2 && !not_lower[1].2, "{not_lower:?}");
        let ratio = preemption_targets(&without, &summary(50.0, 400.0));
        assert!(!ratio[0].2, "0.125 > 0.1");
        let mut stuck = summary(50.0, 1000.0);
        stuck.stuck = 1;
        stuck.finished = 9;
        let bad = preemption_targets(&without, &stuck);
        assert!(!bad[2].2 && !bad[3].2);
        assert!(checklist(&bad).contains("❌ every job finishes with preemption: **9 of 10**"));

        let mut s = summary(10.0, 100.0);
        s.preemptions = 4;
        s.lost_cpu_seconds = 5400.0;
        s.estimate_first = Spread::of(&[60.0, 600.0]);
        let t = preemption_table(&[s]);
        assert!(
            t.contains("| x | 4 | 1.5 cpu·h | 60s / 10m 00s (2) | — |"),
            "{t}"
        );
    }
}
