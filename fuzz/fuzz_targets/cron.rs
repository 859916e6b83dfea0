//! Any text as a schedule's cron expression (first line) and time zone (second line, `UTC`
//! when absent). An accepted schedule's nominal times strictly advance and their instants
//! never go back (two may share one: a time skipped by a spring-forward fires at the end of
//! the gap), and every nominal time's next one lies after it — in whatever zone the input
//! names.
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use schedules::CronSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(2, '\n');
    let expression = lines.next().unwrap_or_default();
    let zone = lines.next().unwrap_or("UTC");
    let Ok(spec) = CronSpec::parse(expression, zone) else {
        return;
    };
    // 2026-03-29 00:30 UTC: the night Europe springs forward.
    let from = DateTime::<Utc>::from_timestamp(1_774_744_200, 0).expect("a valid instant");
    let mut last: Option<schedules::Fire> = None;
    for fire in spec.fires_after(from).take(8) {
        assert!(fire.at > from, "fire {fire:?} is not after {from}");
        if let Some(prev) = &last {
            assert!(
                fire.nominal > prev.nominal,
                "nominal times went back: {fire:?} after {prev:?}"
            );
            assert!(
                fire.at >= prev.at,
                "instants went back: {fire:?} after {prev:?}"
            );
        }
        last = Some(fire);
    }
    let local = spec.local(from);
    for nominal in spec.nominal_after(local).take(8) {
        assert!(nominal > local, "nominal {nominal} is not after {local}");
        if let Some(next) = spec.next_nominal(nominal) {
            assert!(next > nominal, "next nominal {next} is not after {nominal}");
        }
    }
});
