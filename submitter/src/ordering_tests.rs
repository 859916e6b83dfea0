//! Ordering decisions, table-driven.

use capacity::{PodDemand, PodRole, WaitKind};
use uuid::Uuid;

use super::*;

/// A one-dimensional cluster: `free` cpu now, `eventual` cpu once running work ends;
/// reservations claim eventual cpu, admissions need both.
struct Cpus {
    free: u64,
    eventual: u64,
    reserved: u64,
    largest_node: u64,
    /// Keys of the gangs that held room, in order.
    held: Vec<String>,
}

impl Room for Cpus {
    fn probe(&mut self, gang: &GangDemand, shape: ShapeId) -> Verdict {
        let (free, eventual) = (self.free, self.eventual);
        let verdict = self.admit(gang, shape);
        (self.free, self.eventual) = (free, eventual);
        verdict
    }

    fn admit(&mut self, gang: &GangDemand, _: ShapeId) -> Verdict {
        if gang
            .pods
            .iter()
            .any(|p| p.requests.cpu_millis > self.largest_node)
        {
            return Verdict::Never(NeverReason {
                kind: capacity::NeverKind::PodTooLarge {
                    role: PodRole::Executor,
                    resource: capacity::Resource::Cpu,
                },
                message: "too large".into(),
            });
        }
        let need = gang.total().cpu_millis;
        let unreserved = self.eventual.saturating_sub(self.reserved);
        if need <= self.free && need <= unreserved {
            self.free -= need;
            self.eventual -= need;
            Verdict::Fits(Placement {
                nodes: vec!["n".into(); gang.pods.len()],
                scale_up: vec![],
            })
        } else {
            let kind = if need <= self.free {
                WaitKind::Reserved {
                    holder: "head".into(),
                }
            } else {
                WaitKind::NotConfirmed
            };
            Verdict::Wait(WaitReason {
                kind,
                message: "no room".into(),
            })
        }
    }
    fn hold(&mut self, gang: &GangDemand, _: ShapeId) {
        let need = gang.total().cpu_millis;
        if need <= self.eventual.saturating_sub(self.reserved) {
            self.reserved += need;
            self.held.push(gang.key.clone());
        }
    }
}

fn cpus(free: u64) -> Cpus {
    Cpus {
        free,
        eventual: free,
        reserved: 0,
        largest_node: u64::MAX,
        held: Vec::new(),
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn job(n: u128, ns: &str, priority: Priority, age_secs: i64, cpu: u64) -> Candidate {
    let gang = GangDemand {
        key: n.to_string(),
        namespace: ns.into(),
        pod_labels: BTreeMap::new(),
        pods: vec![PodDemand {
            role: PodRole::Driver,
            requests: Resources {
                cpu_millis: cpu,
                memory_bytes: 0,
                pods: 1,
            },
            node_selector: BTreeMap::new(),
            tolerations: vec![],
            priority: 0,
        }],
    };
    Candidate {
        id: JobId(Uuid::from_u128(n)),
        namespace: ns.into(),
        priority,
        rank: 0,
        enqueued_at: t0() - chrono::Duration::seconds(age_secs),
        shape: ShapeId::of(&gang),
        gang: gang.into(),
    }
}

fn policy() -> Policy {
    Policy {
        promote_after: Duration::from_secs(3600),
        max_admissions: 100,
        backfill: true,
        reservations: 100,
    }
}

fn admitted(ds: &[Decision]) -> Vec<u128> {
    ds.iter()
        .filter_map(|d| {
            if let Decision::Admit { id, .. } = d {
                Some(id.0.as_u128())
            } else {
                None
            }
        })
        .collect()
}

fn entitled(pairs: &[(&str, u64)]) -> BTreeMap<String, Resources> {
    pairs
        .iter()
        .map(|(ns, cpu)| {
            (
                (*ns).to_owned(),
                Resources {
                    cpu_millis: *cpu,
                    memory_bytes: 1,
                    pods: 0,
                },
            )
        })
        .collect()
}

#[test]
fn high_before_normal_across_namespaces() {
    let jobs = vec![
        job(1, "a", Priority::Normal, 100, 1000),
        job(2, "b", Priority::High, 10, 1000),
    ];
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut cpus(1000),
    );
    assert_eq!(
        admitted(&ds),
        [2],
        "the younger high job wins the only room"
    );
    assert!(matches!(ds[1], Decision::Wait { position: 2, .. }));
}

#[test]
fn fifo_within_a_namespace_and_level() {
    let jobs = vec![
        job(3, "a", Priority::Normal, 10, 100),
        job(1, "a", Priority::Normal, 30, 100),
        job(2, "a", Priority::Normal, 20, 100),
    ];
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1)]),
        &policy(),
        &mut cpus(10_000),
    );
    assert_eq!(admitted(&ds), [1, 2, 3]);
}

#[test]
fn smallest_dominant_share_goes_first() {
    // a already uses half its entitlement, b nothing: b's younger head goes first, then
    // admissions alternate as shares even out.
    let usage = BTreeMap::from([(
        "a".to_owned(),
        Resources {
            cpu_millis: 2000,
            memory_bytes: 0,
            pods: 0,
        },
    )]);
    let jobs = vec![
        job(1, "a", Priority::Normal, 50, 1000),
        job(2, "a", Priority::Normal, 40, 1000),
        job(3, "b", Priority::Normal, 10, 1000),
        job(4, "b", Priority::Normal, 5, 1000),
        job(5, "b", Priority::Normal, 1, 1000),
    ];
    let ds = decide(
        t0(),
        jobs,
        &usage,
        &entitled(&[("a", 4000), ("b", 4000)]),
        &policy(),
        &mut cpus(10_000),
    );
    assert_eq!(admitted(&ds), [3, 4, 1, 5, 2]);
}

#[test]
fn weights_scale_shares() {
    // b is entitled to twice a's cpu: it gets two admissions for each of a's.
    let jobs: Vec<Candidate> = (0..6)
        .map(|i| job(10 + i, "a", Priority::Normal, 100 - i as i64, 1000))
        .chain((0..6).map(|i| job(20 + i, "b", Priority::Normal, 100 - i as i64, 1000)))
        .collect();
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 3000), ("b", 6000)]),
        &policy(),
        &mut cpus(6000),
    );
    let ids = admitted(&ds);
    assert_eq!(ids.iter().filter(|i| **i < 20).count(), 2, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| **i >= 20).count(), 4, "{ids:?}");
}

#[test]
fn ties_go_to_the_oldest_head() {
    let jobs = vec![
        job(1, "a", Priority::Normal, 10, 1000),
        job(2, "b", Priority::Normal, 20, 1000),
    ];
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut cpus(1000),
    );
    assert_eq!(admitted(&ds), [2]);
}

#[test]
fn a_blocked_head_keeps_its_place_and_backfill_cannot_take_its_room() {
    // 3 cpu free and 4 in all: the head (4) waits and reserves all 4; the small jobs behind
    // it would fit in the free 3 but that is room the head needs.
    let jobs = vec![
        job(1, "a", Priority::High, 30, 4000),
        job(2, "a", Priority::High, 20, 1000),
        job(3, "b", Priority::Normal, 10, 1000),
    ];
    let mut room = Cpus {
        free: 3000,
        eventual: 4000,
        reserved: 0,
        largest_node: u64::MAX,
        held: Vec::new(),
    };
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut room,
    );
    assert!(admitted(&ds).is_empty(), "{ds:?}");
    assert!(matches!(&ds[0], Decision::Wait { position: 1, .. }));
    assert!(matches!(
        &ds[1],
        Decision::Wait {
            reason: WaitReason {
                kind: WaitKind::Reserved { .. },
                ..
            },
            position: 2,
            ..
        }
    ));
    assert!(matches!(&ds[2], Decision::Wait { position: 3, .. }));
}

#[test]
fn backfill_uses_what_the_head_cannot() {
    // 16 cpu in all, 6 free now. The head needs 12: it waits and claims 12 of the 16, so
    // 4 remain for backfill: the first 3-cpu job runs now, the second would delay the head.
    let jobs = vec![
        job(1, "a", Priority::Normal, 30, 12_000),
        job(2, "a", Priority::Normal, 20, 3000),
        job(3, "b", Priority::Normal, 10, 3000),
    ];
    let mut room = Cpus {
        free: 6000,
        eventual: 16_000,
        reserved: 0,
        largest_node: u64::MAX,
        held: Vec::new(),
    };
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut room,
    );
    assert_eq!(
        admitted(&ds),
        [2],
        "the oldest job behind the head backfills into the 4 cpu it cannot use"
    );
    assert!(ds.iter().any(|d| matches!(d, Decision::Wait { id, reason: WaitReason { kind: WaitKind::Reserved { .. }, .. }, .. } if id.0.as_u128() == 3)));
}

#[test]
fn old_normal_jobs_are_promoted() {
    let jobs = vec![
        job(1, "a", Priority::Normal, 7200, 1000),
        job(2, "b", Priority::High, 10, 1000),
    ];
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut cpus(1000),
    );
    assert_eq!(
        admitted(&ds),
        [1],
        "a two-hour-old normal job competes as high and is older"
    );
}

#[test]
fn never_fits_is_decided_not_waited_for() {
    let jobs = vec![
        job(1, "a", Priority::High, 30, 64_000),
        job(2, "a", Priority::High, 20, 1000),
    ];
    let mut room = Cpus {
        free: 8000,
        eventual: 8000,
        reserved: 0,
        largest_node: 16_000,
        held: Vec::new(),
    };
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1)]),
        &policy(),
        &mut room,
    );
    assert!(matches!(ds[0], Decision::Never { .. }));
    assert_eq!(
        admitted(&ds),
        [2],
        "an impossible head does not block the queue"
    );
}

#[test]
fn admissions_per_round_are_bounded() {
    let jobs: Vec<Candidate> = (0..5)
        .map(|i| job(i, "a", Priority::Normal, 100 - i as i64, 10))
        .collect();
    let p = Policy {
        max_admissions: 2,
        ..policy()
    };
    let ds = decide(
        t0(),
        jobs,
        &BTreeMap::new(),
        &entitled(&[("a", 1)]),
        &p,
        &mut cpus(1_000_000),
    );
    assert_eq!(admitted(&ds), [0, 1]);
    assert_eq!(
        ds.iter()
            .filter(|d| matches!(d, Decision::Wait { .. }))
            .count(),
        3
    );
}

#[test]
fn without_backfill_a_blocked_head_stops_every_job_behind_it() {
    // Job 1 (oldest) needs 800 of 500 free; job 2 (100) fits. With backfill it runs in
    // the room job 1 cannot use; without, it waits behind job 1 — in every namespace.
    let jobs = || {
        vec![
            job(1, "a", Priority::Normal, 30, 800),
            job(2, "a", Priority::Normal, 20, 100),
            job(3, "b", Priority::Normal, 10, 100),
        ]
    };
    let with = decide(
        t0(),
        jobs(),
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &policy(),
        &mut cpus(500),
    );
    assert_eq!(admitted(&with), [2, 3]);
    let strict = Policy {
        backfill: false,
        ..policy()
    };
    let without = decide(
        t0(),
        jobs(),
        &BTreeMap::new(),
        &entitled(&[("a", 1), ("b", 1)]),
        &strict,
        &mut cpus(500),
    );
    assert!(admitted(&without).is_empty(), "{without:?}");
    let behind: Vec<u32> = without
        .iter()
        .filter_map(|d| match d {
            Decision::Wait {
                reason, position, ..
            } if matches!(&reason.kind, WaitKind::Reserved { holder } if *holder == JobId(Uuid::from_u128(1)).to_string()) => {
                Some(*position)
            }
            _ => None,
        })
        .collect();
    assert_eq!(behind, [2, 3], "both later jobs name the blocked head");
}

#[test]
fn reservations_are_capped_and_go_to_the_longest_waiting() {
    // 6 cpu free, 40 once running work ends. Three 12-cpu jobs cannot start; two 3-cpu jobs
    // could. With one reservation only the oldest big job (3) holds 12 of the 40 and both
    // small jobs start; with three, 36 are held and only one small job fits the rest.
    let jobs = || {
        vec![
            job(1, "a", Priority::Normal, 30, 12_000),
            job(2, "b", Priority::Normal, 40, 12_000),
            job(3, "c", Priority::Normal, 50, 12_000),
            job(4, "a", Priority::Normal, 20, 3000),
            job(5, "b", Priority::Normal, 10, 3000),
        ]
    };
    let entitled = entitled(&[("a", 1), ("b", 1), ("c", 1)]);
    let room = || Cpus {
        free: 6000,
        eventual: 40_000,
        reserved: 0,
        largest_node: u64::MAX,
        held: Vec::new(),
    };
    let run = |reservations: usize| {
        let mut r = room();
        let p = Policy {
            reservations,
            ..policy()
        };
        let ds = decide(t0(), jobs(), &BTreeMap::new(), &entitled, &p, &mut r);
        (admitted(&ds), r.held)
    };
    assert_eq!(run(1), (vec![4, 5], vec!["3".to_owned()]));
    assert_eq!(
        run(3),
        (
            vec![4],
            vec!["3".to_owned(), "2".to_owned(), "1".to_owned()]
        )
    );
    let (ids, held) = run(0);
    assert_eq!((ids, held.len()), (vec![4, 5], 0), "no reservations at all");
}

#[test]
fn reservations_go_to_high_jobs_first_then_by_age_not_share() {
    // b's normal job is the oldest but a high job (younger) waits too: with one
    // reservation the high job holds. Without it, the oldest normal job holds even though
    // its namespace (b, busiest) comes last in the fair-share order.
    let usage = BTreeMap::from([(
        "b".to_owned(),
        Resources {
            cpu_millis: 8000,
            memory_bytes: 0,
            pods: 0,
        },
    )]);
    let entitled = entitled(&[("a", 8000), ("b", 8000)]);
    let one = Policy {
        reservations: 1,
        ..policy()
    };
    let fresh = || Cpus {
        eventual: 20_000,
        ..cpus(1000)
    };
    let mut room = fresh();
    decide(
        t0(),
        vec![
            job(1, "b", Priority::Normal, 90, 6000),
            job(2, "a", Priority::Normal, 30, 6000),
            job(3, "a", Priority::High, 10, 6000),
        ],
        &usage,
        &entitled,
        &one,
        &mut room,
    );
    assert_eq!(room.held, ["3"]);
    let mut room = fresh();
    decide(
        t0(),
        vec![
            job(1, "b", Priority::Normal, 90, 6000),
            job(2, "a", Priority::Normal, 30, 6000),
        ],
        &usage,
        &entitled,
        &one,
        &mut room,
    );
    assert_eq!(room.held, ["1"]);
}

#[test]
fn dominant_share_math() {
    let r = |c, m| Resources {
        cpu_millis: c,
        memory_bytes: m,
        pods: 0,
    };
    assert_eq!(dominant_share(&r(0, 0), &r(0, 0)), 0.0);
    assert_eq!(dominant_share(&r(1000, 4), &r(4000, 8)), 0.5);
    assert_eq!(dominant_share(&r(1, 0), &r(0, 8)), f64::INFINITY);
}

fn node(cpu_millis: u64, memory_bytes: u64) -> capacity::NodeView {
    capacity::NodeView {
        name: format!("n{cpu_millis}"),
        pool: None,
        labels: BTreeMap::new(),
        taints: Vec::new(),
        unschedulable: false,
        allocatable: Resources {
            cpu_millis,
            memory_bytes,
            pods: 110,
        },
        requested: Resources::default(),
    }
}

#[test]
fn entitlements_are_quotas_or_weighted_shares_of_the_cluster() {
    const GI: u64 = 1 << 30;
    let view = ClusterView {
        nodes: vec![node(8_000, 32 * GI), node(4_000, 16 * GI)],
        ..ClusterView::default()
    };
    // (namespaces TOML, namespace, expected cpu millis, expected memory bytes)
    let cases: &[(&str, &str, u64, u64)] = &[
        ("[namespaces.a]\n[namespaces.b]\n", "a", 6_000, 24 * GI),
        (
            "[namespaces.a]\nweight = 3.0\n[namespaces.b]\n",
            "a",
            9_000,
            36 * GI,
        ),
        (
            "[namespaces.a]\nweight = 3.0\n[namespaces.b]\n",
            "b",
            3_000,
            12 * GI,
        ),
        (
            "[namespaces.a]\nquota = { cpu = \"2\", memory = \"5Gi\" }\n[namespaces.b]\n",
            "a",
            2_000,
            5 * GI,
        ),
        // A quota'd namespace still counts in the weights of the others (weight 1 each).
        (
            "[namespaces.a]\nquota = { cpu = \"2\", memory = \"5Gi\" }\n[namespaces.b]\n",
            "b",
            6_000,
            24 * GI,
        ),
    ];
    for (toml_text, ns, cpu, memory) in cases {
        let catalog = test_catalog(toml_text);
        let e = entitlements(&catalog, &view);
        let got = e[*ns];
        assert_eq!(
            (got.cpu_millis, got.memory_bytes),
            (*cpu, *memory),
            "{ns} in {toml_text:?}"
        );
        assert_eq!(e.len(), 2, "every namespace is entitled");
    }
}

fn test_catalog(namespaces: &str) -> Catalog {
    let text = format!(
        "{namespaces}\n[node_types.small]\ncpu = \"1\"\nmemory = \"4Gi\"\n[defaults]\nimage = \"i:1\"\nspark_version = \"3.5.3\"\n"
    );
    Catalog::new(toml::from_str(&text).unwrap()).unwrap()
}
