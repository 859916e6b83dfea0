//! Decision latency at 5,000 nodes and 100,000 pods: the snapshot strategy's `check()` over
//! its watch cache, against a baseline that lists everything per check, in the same run.
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p capacity --bench decision_latency`
//! (figures in `capacity/README.md`). The cluster is `kube-sim` in-process, reached over
//! HTTP by the real kube client; the cache is filled by the same watchers the daemon runs.
//!
//! Measured, each as p50 / p99 / max over many decisions:
//! - `cached`: `CapacityChecker::check` of three gang shapes (fits; waits after scanning every
//!   node; 51 pods on tainted spot nodes), eligibility cache warm;
//! - `cached, cold eligibility`: a new pod shape every time (selector/taint matching over
//!   all nodes, as after a node label change);
//! - `view()`: the copy the submitter's ordering round takes;
//! - `baseline: list per check`: list Nodes, Pods, ResourceQuotas through the API (pages of
//!   500, as a reflector would), build the aggregates, then decide;
//! - `baseline: recount per check`: no I/O, but aggregates recomputed from the 100,000 pod
//!   records each time (what the incremental cache saves even without the network).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness: a failed setup aborts loudly"
)]

use std::time::{Duration, Instant};

use capacity::cache::{Cache, PodRecord};
use capacity::convert::node_view;
use capacity::ledger::Ledger;
use capacity::model::TaintEffect;
use capacity::testing::{constrained, gang, gi, toleration};
use capacity::{Capacity, CapacityConfig, GangDemand, Metrics, Verdict};
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::Api;
use kube::api::ListParams;
use kube_sim::{PoolConfig, SimConfig, SimHandle, Simulator};
use serde_json::json;

const POOLS: [(&str, usize, &str, &str); 3] = [
    ("general", 3000, "16", "64Gi"),
    ("highmem", 1000, "16", "128Gi"),
    ("spot", 1000, "16", "64Gi"),
];
const NODES: usize = 5_000;
const PODS: usize = 100_000;
const NAMESPACES: usize = 10;

/// A deterministic pseudo-random sequence (no dependency, same cluster every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

fn node_name(i: usize) -> String {
    let mut i = i;
    for (pool, count, _, _) in POOLS {
        if i < count {
            return format!("{pool}-{i:04}");
        }
        i -= count;
    }
    unreachable!("node index out of range")
}

fn pod(i: usize, rng: &mut Lcg) -> serde_json::Value {
    let cpu = ["250m", "500m", "750m", "1"][(rng.next() % 4) as usize];
    let mem = ["1Gi", "2Gi", "3Gi", "4Gi"][(rng.next() % 4) as usize];
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "namespace": format!("ns-{}", i % NAMESPACES),
            "labels": {"app": format!("app-{}", i % 1000), "spark-role": if i.is_multiple_of(10) { "driver" } else { "executor" }}},
        "spec": {"nodeName": node_name((i * 7919) % NODES), "containers": [{"name": "main", "image": "apache/spark:3.5.3",
            "resources": {"requests": {"cpu": cpu, "memory": mem}, "limits": {"memory": mem}}}]}
    })
}

fn setup() -> SimHandle {
    let mut cfg = SimConfig::default();
    for (name, count, cpu, mem) in POOLS {
        let mut pool = PoolConfig::new(name, count, cpu, mem);
        if name == "spot" {
            pool = pool.taint("spot", "true", "NoSchedule");
        }
        cfg = cfg.with_pool(pool);
    }
    for n in 0..NAMESPACES {
        cfg = cfg.with_namespace(&format!("ns-{n}")).with_quota(
            &format!("ns-{n}"),
            "compute",
            &[("requests.cpu", "20000"), ("pods", "20000")],
        );
    }
    // Pods stay as created: no kubelet churn while measuring.
    cfg.simulation.pod_start_delay = Duration::from_secs(86_400 * 365);
    cfg.simulation.watch_history = 200_000;
    let sim = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut rng = Lcg(42);
    for i in 0..PODS {
        sim.create_object(pod(i, &mut rng)).unwrap();
    }
    sim
}

/// p50, p99, max of a set of durations, in microseconds.
fn summary(mut d: Vec<Duration>) -> (f64, f64, f64) {
    d.sort();
    let at = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.50), at(0.99), at(1.0))
}

fn report(name: &str, n: usize, d: Vec<Duration>) {
    let (p50, p99, max) = summary(d);
    println!("| {name} | {n} | {p50:.1} µs | {p99:.1} µs | {max:.1} µs |");
}

fn shapes() -> Vec<(&'static str, GangDemand)> {
    let general = [("pool", "general")];
    let spot_tol = [toleration(
        Some("spot"),
        Some("true"),
        Some(TaintEffect::NoSchedule),
    )];
    vec![
        (
            "fits: driver + 10 executors (2 cpu, 8Gi), pool=general",
            constrained(
                gang("fits", "ns-1", (1000, gi(4)), 10, (2000, gi(8))),
                &general,
                &[],
            ),
        ),
        (
            "waits: driver + 10 executors (15 cpu), full scan + reservation recheck",
            constrained(
                gang("waits", "ns-2", (1000, gi(4)), 10, (15_000, gi(8))),
                &general,
                &[],
            ),
        ),
        (
            "fits: driver + 50 spot executors (1 cpu, 4Gi)",
            constrained(
                gang("spot", "ns-3", (1000, gi(4)), 50, (1000, gi(4))),
                &[("pool", "spot")],
                &spot_tol,
            ),
        ),
    ]
}

async fn list_all<K>(api: Api<K>) -> Vec<K>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut lp = ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await.unwrap();
        out.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => return out,
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let start = Instant::now();
    let sim = setup();
    eprintln!(
        "setup: {NODES} nodes, {PODS} pods in {:.1?}",
        start.elapsed()
    );
    let client = sim.client().unwrap();
    let config = CapacityConfig::default();
    let capacity = Capacity::new(client.clone(), &config, Metrics::new());
    let token = tokio_util::sync::CancellationToken::new();
    let runner = rt.spawn({
        let capacity = capacity.clone();
        let token = token.clone();
        async move { capacity.run(token).await }
    });
    let start = Instant::now();
    rt.block_on(capacity.wait_ready(Duration::from_secs(600)))
        .unwrap();
    let pods_cached = capacity.snapshot().with_cache(Cache::pod_count);
    eprintln!(
        "watch cache synced ({pods_cached} pods) in {:.1?}",
        start.elapsed()
    );
    let checker = capacity.checker();

    println!("| decision | samples | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, g) in shapes() {
        let n = 2000;
        let d = rt.block_on(async {
            for _ in 0..100 {
                checker.check(&g).await.unwrap();
            }
            let mut d = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let v = checker.check(&g).await.unwrap();
                d.push(t.elapsed());
                std::hint::black_box(v);
            }
            d
        });
        let verdict = match rt.block_on(checker.check(&g)).unwrap() {
            Verdict::Fits(_) => "fits",
            Verdict::Wait(_) => "wait",
            Verdict::Never(_) => "never",
        };
        report(&format!("cached — {name} → {verdict}"), n, d);
    }

    let cold = rt.block_on(async {
        let mut d = Vec::new();
        for i in 0..200 {
            let (_, base) = &shapes()[0];
            let mut g = base.clone();
            let unique = format!("bench-{i}");
            for p in &mut g.pods {
                p.tolerations = vec![toleration(Some(&unique), None, None)];
            }
            let t = Instant::now();
            std::hint::black_box(checker.check(&g).await.unwrap());
            d.push(t.elapsed());
        }
        d
    });
    report(
        "cached, cold eligibility (new pod shape each time) — fits gang",
        200,
        cold,
    );

    let views: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(checker.view().unwrap());
            t.elapsed()
        })
        .collect();
    report(
        "`view()` (copy of 5,000 nodes for an ordering round)",
        200,
        views,
    );

    let (_, fits) = &shapes()[0];
    let listed = rt.block_on(async {
        let mut d = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let nodes = list_all(Api::<Node>::all(client.clone())).await;
            let pods = list_all(Api::<Pod>::all(client.clone())).await;
            let quotas = list_all(Api::<ResourceQuota>::all(client.clone())).await;
            let mut cache = Cache::new(
                "pool",
                "spark-role",
                Vec::new(),
                Ledger::new(Duration::from_secs(600)),
            );
            cache.replace_nodes(nodes.iter().map(|n| node_view(n, "pool")).collect());
            cache.replace_pods(
                pods.into_iter()
                    .map(|p| PodRecord::from_pod(p, "spark-role")),
            );
            cache.replace_quotas(quotas.iter().map(Cache::quota_entry));
            for k in [
                capacity::cache::Kind::Nodes,
                capacity::cache::Kind::Pods,
                capacity::cache::Kind::Quotas,
            ] {
                cache.mark_synced(k);
            }
            std::hint::black_box(cache.check(fits, Instant::now()).unwrap());
            d.push(t.elapsed());
        }
        d
    });
    report(
        "baseline: list nodes + pods + quotas per check (HTTP, pages of 500) — fits gang",
        10,
        listed,
    );

    // The same pods as records, recounted per check without I/O.
    let records: Vec<(String, PodRecord)> = rt.block_on(async {
        list_all(Api::<Pod>::all(client.clone()))
            .await
            .into_iter()
            .map(|p| PodRecord::from_pod(p, "spark-role"))
            .collect()
    });
    let nodes: Vec<_> = rt
        .block_on(list_all(Api::<Node>::all(client.clone())))
        .iter()
        .map(|n| node_view(n, "pool"))
        .collect();
    let recount: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let mut cache = Cache::new(
                "pool",
                "spark-role",
                Vec::new(),
                Ledger::new(Duration::from_secs(600)),
            );
            cache.replace_nodes(nodes.clone());
            cache.replace_pods(records.clone());
            for k in [
                capacity::cache::Kind::Nodes,
                capacity::cache::Kind::Pods,
                capacity::cache::Kind::Quotas,
            ] {
                cache.mark_synced(k);
            }
            std::hint::black_box(cache.check(fits, Instant::now()).unwrap());
            t.elapsed()
        })
        .collect();
    report(
        "baseline: recount 100,000 pods per check (in memory, no I/O) — fits gang",
        20,
        recount,
    );

    token.cancel();
    rt.block_on(runner).unwrap().unwrap();
}
