use std::collections::{BTreeMap, BTreeSet};

use super::*;

fn params(seed: u64) -> StandardParams {
    StandardParams {
        seed,
        ..StandardParams::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
    let a = standard(&params(7));
    assert_eq!(a, standard(&params(7)));
    assert_ne!(a, standard(&params(8)));
    assert_eq!(seed002(3, 20), seed002(3, 20));
}

#[test]
fn standard_has_what_it_claims() {
    let p = params(1);
    let t = standard(&p);
    // Submit order, unique names, all valid.
    assert!(t.windows(2).all(|w| w[0].at <= w[1].at));
    crate::trace::parse(&crate::trace::render(&t)).unwrap();
    // Ten namespaces, two priorities, roughly the promised high share.
    let namespaces: BTreeSet<&str> = t.iter().map(|j| j.namespace.as_str()).collect();
    assert_eq!(namespaces.len(), 10, "{namespaces:?}");
    let high = t.iter().filter(|j| j.priority == Priority::High).count();
    let share = high as f64 / t.len() as f64;
    assert!((0.05..0.25).contains(&share), "high share {share}");
    // Mixed sizes: every node type, fixed and dynamic executors.
    let types: BTreeSet<&str> = t
        .iter()
        .filter_map(|j| j.executor.node_type.as_deref())
        .collect();
    assert_eq!(types.len(), 4, "{types:?}");
    assert!(t.iter().any(|j| j.executor.dynamic_allocation.is_some()));
    assert!(t.iter().any(|j| j.outcome == Outcome::Failed));
    // Bursts: one namespace, 30–50 jobs within a minute, `bursts` times.
    let mut bursts: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for j in t.iter().filter(|j| j.tag.as_deref() == Some("burst")) {
        bursts.entry(j.namespace.as_str()).or_default().push(j.at);
    }
    let burst_jobs: usize = bursts.values().map(Vec::len).sum();
    assert!(
        (30 * p.bursts..=50 * p.bursts).contains(&burst_jobs),
        "{burst_jobs}"
    );
    // The cron wave: 120 per 100 nodes within 90 s, all namespaces.
    let cron: Vec<&TraceJob> = t
        .iter()
        .filter(|j| j.tag.as_deref() == Some("cron"))
        .collect();
    assert_eq!(cron.len(), 120);
    let (lo, hi) = cron.iter().fold((f64::MAX, 0.0f64), |(lo, hi), j| {
        (lo.min(j.at), hi.max(j.at))
    });
    assert!(hi - lo <= 90.0, "wave spans {lo}..{hi}");
    assert_eq!(
        cron.iter()
            .map(|j| &j.namespace)
            .collect::<BTreeSet<_>>()
            .len(),
        10
    );
    // The wave is a real spike: more submissions in its minute than in any other.
    let per_minute = |from: f64| {
        t.iter()
            .filter(|j| j.at >= from && j.at < from + 90.0)
            .count()
    };
    let background_peak = (0..(p.hours * 40.0) as usize)
        .map(|k| k as f64 * 90.0)
        .filter(|&m| m + 90.0 < lo || m > hi)
        .map(per_minute)
        .max()
        .unwrap();
    assert!(
        per_minute(lo) > background_peak,
        "{} vs {background_peak}",
        per_minute(lo)
    );
}

#[test]
fn load_scales_with_the_cluster() {
    let small = standard(&StandardParams {
        nodes: 10,
        ..params(2)
    });
    let big = standard(&StandardParams {
        nodes: 100,
        ..params(2)
    });
    let bg = |t: &[TraceJob]| t.iter().filter(|j| j.tag.as_deref() == Some("bg")).count();
    let ratio = bg(&big) as f64 / bg(&small).max(1) as f64;
    assert!((6.0..14.0).contains(&ratio), "{ratio}");
}

#[test]
fn seed002_puts_critical_jobs_behind_a_trivial_flood_then_a_backfill_wave() {
    let t = seed002(1, 10);
    let of = |tag: &str| -> Vec<&TraceJob> {
        t.iter().filter(|j| j.tag.as_deref() == Some(tag)).collect()
    };
    let (trivial, critical, backfill) = (of("trivial"), of("critical"), of("backfill"));
    assert_eq!(
        (trivial.len(), critical.len(), backfill.len()),
        (50, 40, 10)
    );
    assert!(critical.iter().all(|j| j.priority == Priority::High));
    assert!(
        trivial
            .iter()
            .chain(&backfill)
            .all(|j| j.priority == Priority::Normal)
    );
    // The flood alone asks for more cpu than the cluster has.
    let flood_cpu: u32 = trivial.iter().map(|j| 1 + j.executor.required()).sum();
    assert!(u64::from(flood_cpu) > 10 * NODE_CPU);
    let last_trivial = trivial.iter().map(|j| j.at).fold(0.0, f64::max);
    assert!(critical.iter().all(|j| j.at > 100.0) && last_trivial <= 300.0);
    assert!(backfill.iter().all(|j| j.at >= 1800.0));
}

#[test]
fn deadlock_gangs_fill_one_node_each() {
    let t = deadlock(12, 60.0);
    assert_eq!(t.len(), 12);
    assert!(t.iter().all(|j| j.executor.required() == 3 && j.at < 1.0));
}

#[test]
fn saturated_offers_more_than_the_cluster_holds_in_big_gangs() {
    let p = SaturatedParams::default();
    let t = saturated(&p);
    assert_eq!(t, saturated(&p), "seeded");
    assert!(t.windows(2).all(|w| w[0].at <= w[1].at));
    crate::trace::parse(&crate::trace::render(&t)).unwrap();
    assert!(t.iter().all(|j| (20..=60).contains(&j.executor.required())));
    let namespaces: BTreeSet<&str> = t.iter().map(|j| j.namespace.as_str()).collect();
    assert_eq!(namespaces.len(), p.namespaces, "{namespaces:?}");
    let high = t.iter().filter(|j| j.priority == Priority::High).count() as f64;
    let share = high / t.len() as f64;
    assert!((0.12..0.28).contains(&share), "high share {share}");
    // Offered cpu·seconds over the window: well above what the cluster has.
    let cpu = |shape: &PodShape| match shape.node_type.as_deref() {
        Some("medium") => 2.0,
        Some("large") => 4.0,
        other => panic!("unexpected size {other:?}"),
    };
    let offered: f64 = t
        .iter()
        .map(|j| {
            (cpu(&j.driver) + f64::from(j.executor.required()) * cpu(&j.executor.shape()))
                * j.runtime
        })
        .sum();
    let capacity = (p.nodes as u64 * NODE_CPU) as f64 * p.hours * 3600.0;
    assert!(
        offered / capacity > 1.25,
        "offered load {}",
        offered / capacity
    );
}
