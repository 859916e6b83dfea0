//! The replay's estimates on small clusters whose answer is known by hand.

use capacity::testing::{gang, node};
use jobs::Priority;

use crate::room::ShapeId;
use uuid::Uuid;

use super::*;

const GI: u64 = 1 << 30;
const NOW: i64 = 1_800_000_000;

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(NOW + seconds, 0).unwrap()
}

fn id(n: u128) -> JobId {
    JobId(Uuid::from_u128(n))
}

fn cpu(c: u64) -> Resources {
    Resources {
        cpu_millis: c,
        memory_bytes: GI,
        pods: 1,
    }
}

/// Two 8-cpu nodes; `busy` says which are full until when (seconds from now).
fn cluster(busy: &[(&str, i64)]) -> (ClusterView, Vec<Running>) {
    let mut view = ClusterView {
        nodes: vec![
            node("n0", 8000, 64 * GI, None),
            node("n1", 8000, 64 * GI, None),
        ],
        ..ClusterView::default()
    };
    let mut running = Vec::new();
    for (name, ends) in busy {
        let n = view.nodes.iter_mut().find(|n| n.name == *name).unwrap();
        n.requested = cpu(8000);
        running.push(Running {
            namespace: "a".into(),
            pods: vec![((*name).into(), cpu(8000))],
            ends_at: at(*ends),
        });
    }
    (view, running)
}

/// Waiting job `n`, `age` seconds old, needing a 1-cpu driver and `executors` × 3 cpu, running
/// `runtime` seconds.
fn job(n: u128, priority: Priority, age: i64, executors: usize, runtime: u64) -> Waiting {
    let g = gang(&format!("j{n}"), "a", (1000, GI), executors, (3000, GI));
    Waiting {
        candidate: Candidate {
            id: id(n),
            namespace: "a".into(),
            priority,
            rank: n as u64,
            enqueued_at: at(-age),
            shape: ShapeId::of(&g),
            gang: g.into(),
        },
        runtime: Duration::from_secs(runtime),
    }
}

fn policy() -> Policy {
    Policy {
        promote_after: Duration::from_secs(24 * 3600),
        max_admissions: 100,
        backfill: true,
        reservations: 2,
    }
}

fn run(busy: &[(&str, i64)], waiting: Vec<Waiting>) -> Vec<Option<i64>> {
    let ids: Vec<JobId> = waiting.iter().map(|w| w.candidate.id).collect();
    let (view, running) = cluster(busy);
    let starts = estimate(
        at(0),
        &view,
        running,
        waiting,
        &BTreeMap::new(),
        &BTreeMap::new(),
        &policy(),
    );
    ids.iter()
        .map(|i| starts.get(i).map(|t| (*t - at(0)).num_seconds()))
        .collect()
}

/// Name, busy nodes (until), waiting jobs, expected starts (seconds from now).
type Case = (
    &'static str,
    Vec<(&'static str, i64)>,
    Vec<Waiting>,
    Vec<Option<i64>>,
);

#[test]
fn estimate_table() {
    use Priority::{High, Normal};
    let cases: Vec<Case> = vec![
        (
            "room now: starts now",
            vec![],
            vec![job(1, Normal, 10, 2, 600)],
            vec![Some(0)],
        ),
        (
            "waits for the running application that frees its node",
            vec![("n0", 300), ("n1", 900)],
            vec![job(1, Normal, 10, 2, 600)],
            vec![Some(300)],
        ),
        (
            "FIFO: the second whole-cluster job starts when the first ends",
            vec![("n0", 100), ("n1", 200)],
            vec![job(1, Normal, 20, 4, 1000), job(2, Normal, 10, 4, 500)],
            vec![Some(200), Some(1200)],
        ),
        (
            "high first, though it arrived later",
            vec![("n0", 100), ("n1", 200)],
            vec![job(1, Normal, 20, 4, 1000), job(2, High, 10, 4, 500)],
            vec![Some(700), Some(200)],
        ),
        (
            "reservation: the room held for the older big job is not backfilled",
            vec![("n1", 400)],
            vec![job(1, Normal, 20, 4, 1000), job(2, Normal, 10, 0, 100)],
            // The big job (13 cpu) holds what it will use of n0 (two executors and what is
            // left of it for a third): nothing is left for the small one there, so it starts
            // next to the big one when n1 frees.
            vec![Some(400), Some(400)],
        ),
        (
            "a job that can never fit gets no estimate; the rest still do",
            vec![],
            vec![job(1, Normal, 20, 9, 100), job(2, Normal, 10, 1, 100)],
            vec![None, Some(0)],
        ),
    ];
    for (name, busy, waiting, want) in cases {
        assert_eq!(run(&busy, waiting), want, "{name}");
    }
}

#[test]
fn runtimes_median_by_name_then_namespace_then_default() {
    let s = |ns: &str, name: &str, secs: u64| {
        (ns.to_owned(), name.to_owned(), Duration::from_secs(secs))
    };
    let r = Runtimes::from_history(
        [
            s("a", "etl", 100),
            s("a", "etl", 300),
            s("a", "etl", 200),
            s("a", "report", 1000),
            s("b", "x", 50),
            s("b", "x", 70),
        ],
        Duration::from_secs(900),
    );
    assert_eq!(
        r.expect("a", "etl"),
        Duration::from_secs(200),
        "median of the name"
    );
    assert_eq!(
        r.expect("a", "new"),
        Duration::from_secs(250),
        "median of the namespace (100, 200, 300, 1000)"
    );
    assert_eq!(
        r.expect("b", "x"),
        Duration::from_secs(60),
        "even count: the mean of the middle two"
    );
    assert_eq!(r.expect("c", "x"), Duration::from_secs(900), "the default");
}

#[test]
fn scale_up_nodes_become_simulated_nodes() {
    let mut view = ClusterView {
        nodes: vec![],
        pools: vec![capacity::testing::pool("p", 8000, 64 * GI, 0, 1)],
        ..ClusterView::default()
    };
    view.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let starts = estimate(
        at(0),
        &view,
        vec![],
        vec![
            job(1, Priority::Normal, 20, 2, 100),
            job(2, Priority::Normal, 10, 2, 100),
        ],
        &BTreeMap::new(),
        &BTreeMap::new(),
        &policy(),
    );
    // Gangs of 7 cpu: one pool node at most, so the second starts when the first ends.
    assert_eq!(starts.get(&id(1)), Some(&at(0)));
    assert_eq!(starts.get(&id(2)), Some(&at(100)));
}
