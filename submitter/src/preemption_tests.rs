//! Table-driven victim choice and guards.

use std::collections::BTreeMap;

use capacity::testing::{gang, node};
use capacity::{ClusterView, Resources};
use chrono::{DateTime, Utc};
use jobs::{JobId, Priority};
use uuid::Uuid;

use super::*;

const GI: u64 = 1 << 30;
const NOW: i64 = 1_800_000_000;

fn at(seconds_ago: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW - seconds_ago, 0).unwrap()
}

fn id(n: u128) -> JobId {
    JobId(Uuid::from_u128(n))
}

fn res(cpu_millis: u64) -> Resources {
    Resources {
        cpu_millis,
        memory_bytes: GI,
        pods: 1,
    }
}

/// A running app `n` in `ns` at `priority`, started `age` seconds ago, with `pods` (node, cpu).
fn app(n: u128, ns: &str, priority: Priority, age: i64, pods: &[(&str, u64)]) -> RunningApp {
    RunningApp {
        job: id(n),
        app: format!("app-{n}"),
        namespace: ns.into(),
        priority,
        // Taken in ten minutes before it started: after the preemptors (an hour ago) unless
        // `enqueued` says otherwise.
        enqueued_at: at(age + 600),
        started_at: at(age),
        preemptions: 0,
        pods: pods
            .iter()
            .map(|(node, cpu)| ((*node).into(), res(*cpu)))
            .collect(),
    }
}

/// Nodes `n0..` of 8 cpu, each requested as the running apps' pods say.
fn cluster(nodes: usize, running: &[RunningApp]) -> ClusterView {
    let mut view = ClusterView {
        nodes: (0..nodes)
            .map(|i| node(&format!("n{i}"), 8000, 64 * GI, None))
            .collect(),
        ..ClusterView::default()
    };
    for app in running {
        for (name, r) in &app.pods {
            let i = view.nodes.iter().position(|n| &n.name == name).unwrap();
            let n = &mut view.nodes[i];
            n.requested = n.requested.saturating_add(r);
        }
    }
    view
}

fn enabled(scope: Scope) -> PreemptionConfig {
    PreemptionConfig {
        enabled: true,
        scope,
        min_runtime: JobDuration(Duration::from_secs(60)),
        max_per_job: 2,
        ..PreemptionConfig::default()
    }
}

fn victims(choice: &Result<Choice, Refusal>) -> Result<Vec<u128>, String> {
    match choice {
        Ok(c) => Ok(c.victims.iter().map(|(j, _)| j.0.as_u128()).collect()),
        Err(r) => Err(format!("{r:?}")),
    }
}

/// Name, nodes, running apps, the preemptor's executors, scope, victims (or the refusal's name).
type ChoiceCase = (
    &'static str,
    usize,
    Vec<RunningApp>,
    usize,
    Scope,
    Result<Vec<u128>, &'static str>,
);

/// Name, the preemptor's level, the app, scope, the verdict.
/// (name, the preemptor's (level, own priority), the application, scope, verdict).
type GuardCase = (
    &'static str,
    (Priority, Priority),
    RunningApp,
    Scope,
    Result<Cause, Ineligible>,
);

#[test]
fn victim_choice_table() {
    use Priority::{High, Normal};
    // Every preemptor: a high job in `a` needing a 1-cpu driver and executors of 3 cpu.
    let cases: Vec<ChoiceCase> = vec![
        (
            "one victim frees enough: the one that ran least",
            2,
            vec![
                app(1, "a", Normal, 600, &[("n0", 8000)]),
                app(2, "a", Normal, 300, &[("n1", 8000)]),
            ],
            2,
            Scope::Namespace,
            Ok(vec![2]),
        ),
        (
            "fewest victims beats least runtime: one big app, not three small young ones",
            2,
            vec![
                app(1, "a", Normal, 3000, &[("n0", 8000)]),
                app(2, "a", Normal, 100, &[("n1", 3000)]),
                app(3, "a", Normal, 100, &[("n1", 3000)]),
                app(4, "a", Normal, 100, &[("n1", 2000)]),
            ],
            2,
            Scope::Namespace,
            Ok(vec![1]),
        ),
        (
            "never more than needed: two of three on one node suffice",
            1,
            vec![
                app(1, "a", Normal, 100, &[("n0", 3000)]),
                app(2, "a", Normal, 200, &[("n0", 3000)]),
                app(3, "a", Normal, 300, &[("n0", 2000)]),
            ],
            1,
            Scope::Namespace,
            // Needs 1 + 3 = 4 cpu on n0: freeing apps 1 (3) and 3 (2) gives 5, 1 and 2 give 6;
            // both are two victims, 1+2 ran 300 s, 1+3 ran 400 s.
            Ok(vec![1, 2]),
        ),
        (
            "fragmentation: the packer, not the sum, decides (pods split across nodes free no \
             room for an executor)",
            2,
            vec![
                app(1, "a", Normal, 100, &[("n0", 2000), ("n1", 2000)]),
                app(2, "a", Normal, 900, &[("n0", 6000)]),
                app(3, "a", Normal, 100, &[("n1", 6000)]),
            ],
            2,
            Scope::Namespace,
            // Needs 1 + 2×3 = 7 cpu. App 1 frees 4 cpu in two 2-cpu holes: no 3-cpu executor
            // fits. App 3 alone frees n1's 6 cpu: driver + executor there, the second executor
            // nowhere. App 2 alone frees n0's 6 cpu: same. Two are needed.
            Ok(vec![1, 3]),
        ),
        (
            "equal priority is not preempted",
            1,
            vec![app(1, "a", High, 600, &[("n0", 8000)])],
            1,
            Scope::Priority,
            Err("NoVictims"),
        ),
        (
            "scope namespace: another namespace's normal app is safe",
            1,
            vec![app(1, "b", Normal, 600, &[("n0", 8000)])],
            1,
            Scope::Namespace,
            Err("NoVictims"),
        ),
        (
            "scope priority: lower priority anywhere",
            1,
            vec![app(1, "b", Normal, 600, &[("n0", 8000)])],
            1,
            Scope::Priority,
            Ok(vec![1]),
        ),
        (
            "guard: younger than min_runtime",
            1,
            vec![app(1, "a", Normal, 30, &[("n0", 8000)])],
            1,
            Scope::Namespace,
            Err("NoVictims"),
        ),
        (
            "guard: would not fit even with every victim gone (a high app holds the rest)",
            2,
            vec![
                app(1, "a", Normal, 600, &[("n0", 8000)]),
                app(2, "a", High, 600, &[("n1", 8000)]),
            ],
            3,
            Scope::Namespace,
            Err("WouldNotFit"),
        ),
        (
            "nothing to do when it fits",
            2,
            vec![app(1, "a", Normal, 600, &[("n0", 8000)])],
            1,
            Scope::Namespace,
            Err("FitsAlready"),
        ),
    ];
    for (name, nodes, running, executors, scope, want) in cases {
        let view = cluster(nodes, &running);
        let g = gang("pre", "a", (1000, GI), executors, (3000, GI));
        let p = Preemptor {
            job: id(99),
            level: High,
            priority: High,
            enqueued_at: at(3600),
            gang: &g,
        };
        let got = victims(&choose(
            at(0),
            &view,
            &p,
            &running,
            &enabled(scope),
            &Shares::default(),
        ));
        match want {
            Ok(w) => assert_eq!(got, Ok(w), "{name}"),
            Err(prefix) => assert!(
                got.as_ref().is_err_and(|e| e.starts_with(prefix)),
                "{name}: {got:?}"
            ),
        }
    }
}

#[test]
fn guards_table() {
    use Priority::{High, Normal};
    const HIGH: (Priority, Priority) = (High, High);
    const PROMOTED: (Priority, Priority) = (High, Normal);
    const NORMAL: (Priority, Priority) = (Normal, Normal);
    let enqueued = |mut a: RunningApp, seconds_ago: i64| {
        a.enqueued_at = at(seconds_ago);
        a
    };
    let g = gang("pre", "a", (1000, GI), 1, (1000, GI));
    let shares_usage: BTreeMap<String, Resources> = [
        ("a".to_owned(), res(1000)),
        ("b".to_owned(), res(30_000)),
        ("c".to_owned(), res(5000)),
    ]
    .into_iter()
    .collect();
    let entitled: BTreeMap<String, Resources> = ["a", "b", "c"]
        .into_iter()
        .map(|ns| {
            (
                ns.to_owned(),
                Resources {
                    cpu_millis: 10_000,
                    memory_bytes: 100 * GI,
                    pods: 0,
                },
            )
        })
        .collect();
    let shares = Shares {
        usage: Some(&shares_usage),
        entitlements: Some(&entitled),
    };
    let preempted = |mut a: RunningApp, n: u32| {
        a.preemptions = n;
        a
    };
    let cases: Vec<GuardCase> = vec![
        (
            "high over normal",
            HIGH,
            app(1, "a", Normal, 600, &[]),
            Scope::Namespace,
            Ok(Cause::Priority),
        ),
        (
            "promoted normal over a normal one enqueued after it (it overtook)",
            PROMOTED,
            app(1, "b", Normal, 600, &[]),
            Scope::Priority,
            Ok(Cause::Promoted),
        ),
        (
            "promoted normal never over a normal one that was ahead of it in line",
            PROMOTED,
            enqueued(app(1, "a", Normal, 600, &[]), 7200),
            Scope::Priority,
            Err(Ineligible::NotLower),
        ),
        (
            "promoted normal never over high",
            PROMOTED,
            app(1, "a", High, 600, &[]),
            Scope::Priority,
            Err(Ineligible::NotLower),
        ),
        (
            "a high job over a normal one enqueued before it",
            HIGH,
            enqueued(app(1, "a", Normal, 600, &[]), 7200),
            Scope::Namespace,
            Ok(Cause::Priority),
        ),
        (
            "normal over normal, same namespace",
            NORMAL,
            app(1, "a", Normal, 600, &[]),
            Scope::FairShare,
            Err(Ineligible::NotLower),
        ),
        (
            "normal never over high",
            NORMAL,
            app(1, "a", High, 600, &[]),
            Scope::FairShare,
            Err(Ineligible::NotLower),
        ),
        (
            "other namespace under scope namespace",
            HIGH,
            app(1, "b", Normal, 600, &[]),
            Scope::Namespace,
            Err(Ineligible::OtherNamespace),
        ),
        (
            "fair share: b is above its share, a below",
            NORMAL,
            app(1, "b", Normal, 600, &[]),
            Scope::FairShare,
            Ok(Cause::FairShare),
        ),
        (
            "fair share: c is below its share",
            NORMAL,
            app(1, "c", Normal, 600, &[]),
            Scope::FairShare,
            Err(Ineligible::NotLower),
        ),
        (
            "fair share needs scope fair-share",
            NORMAL,
            app(1, "b", Normal, 600, &[]),
            Scope::Priority,
            Err(Ineligible::NotLower),
        ),
        (
            "min runtime: 59 s < 60 s",
            HIGH,
            app(1, "a", Normal, 59, &[]),
            Scope::Namespace,
            Err(Ineligible::TooYoung),
        ),
        (
            "min runtime: exactly 60 s is old enough",
            HIGH,
            app(1, "a", Normal, 60, &[]),
            Scope::Namespace,
            Ok(Cause::Priority),
        ),
        (
            "preempted once, limit 2",
            HIGH,
            preempted(app(1, "a", Normal, 600, &[]), 1),
            Scope::Namespace,
            Ok(Cause::Priority),
        ),
        (
            "preempted twice, limit 2",
            HIGH,
            preempted(app(1, "a", Normal, 600, &[]), 2),
            Scope::Namespace,
            Err(Ineligible::PreemptedEnough),
        ),
        (
            "itself",
            HIGH,
            app(99, "a", Normal, 600, &[]),
            Scope::Namespace,
            Err(Ineligible::Itself),
        ),
    ];
    for (name, (level, priority), a, scope, want) in cases {
        let p = Preemptor {
            job: id(99),
            level,
            priority,
            enqueued_at: at(3600),
            gang: &g,
        };
        assert_eq!(
            eligible(at(0), &p, &a, &enabled(scope), &shares),
            want,
            "{name}"
        );
    }
}

#[test]
fn disabled_preempts_nobody() {
    let running = vec![app(1, "a", Priority::Normal, 600, &[("n0", 8000)])];
    let view = cluster(1, &running);
    let g = gang("pre", "a", (1000, GI), 1, (1000, GI));
    let p = Preemptor {
        job: id(99),
        level: Priority::High,
        priority: Priority::High,
        enqueued_at: at(3600),
        gang: &g,
    };
    let got = choose(
        at(0),
        &view,
        &p,
        &running,
        &PreemptionConfig::default(),
        &Shares::default(),
    );
    assert_eq!(got, Err(Refusal::Disabled));
}

#[test]
fn the_choice_places_the_gang_on_the_freed_nodes_and_counts_lost_work() {
    let running = vec![
        app(1, "a", Priority::Normal, 600, &[("n0", 4000), ("n0", 4000)]),
        app(2, "a", Priority::Normal, 900, &[("n1", 8000)]),
    ];
    let view = cluster(2, &running);
    let g = gang("pre", "a", (1000, GI), 2, (3000, GI));
    let p = Preemptor {
        job: id(99),
        level: Priority::High,
        priority: Priority::High,
        enqueued_at: at(3600),
        gang: &g,
    };
    let c = choose(
        at(0),
        &view,
        &p,
        &running,
        &enabled(Scope::Namespace),
        &Shares::default(),
    )
    .unwrap();
    assert_eq!(c.victims, vec![(id(1), Cause::Priority)]);
    assert!(
        c.placement.nodes.iter().all(|n| n == "n0"),
        "{:?}",
        c.placement
    );
    assert_eq!(c.lost_work, 600.0 * 8.0);
}

#[test]
fn config_validation_names_each_key() {
    let bad = PreemptionConfig {
        enabled: true,
        scope: Scope::Priority,
        min_runtime: JobDuration(Duration::from_secs(8 * 24 * 3600)),
        max_per_job: 0,
        max_per_round: 0,
        hold_for: JobDuration(Duration::from_millis(10)),
    };
    let problems = bad.validate().unwrap_err();
    for key in ["min_runtime", "max_per_job", "max_per_round", "hold_for"] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("submitter.preemption.{key}:"))),
            "{key}: {problems:?}"
        );
    }
    assert!(PreemptionConfig::default().validate().is_ok());
}

#[test]
fn config_parses_and_rejects_unknown_keys_and_scopes() {
    let c: PreemptionConfig = toml::from_str(
        "enabled = true\nscope = \"fair-share\"\nmin_runtime = \"5m\"\nmax_per_job = 3",
    )
    .unwrap();
    assert_eq!(c.scope, Scope::FairShare);
    assert_eq!(c.min_runtime.0, Duration::from_secs(300));
    assert!(!PreemptionConfig::default().enabled, "off unless enabled");
    for hostile in [
        "enabled = true\nscop = \"namespace\"",
        "scope = \"everything\"",
        "max_per_job = -1",
        "min_runtime = \"forever\"",
        "enabled = \"yes\"",
    ] {
        assert!(
            toml::from_str::<PreemptionConfig>(hostile).is_err(),
            "{hostile}"
        );
    }
}
