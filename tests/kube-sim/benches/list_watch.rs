//! List and watch at scale: 5,000 nodes and 100,000 pods.
//!
//! Run: `CARGO_TARGET_DIR=/work/target cargo bench -p kube-sim --bench list_watch`
//! (figures in tests/kube-sim/README.md). Every request goes over HTTP through the real
//! kube client; "raw" variants read the body as text (server + transfer cost), "typed"
//! variants also deserialise into k8s-openapi `Pod`s (what a controller pays).

// A benchmark harness, not library code: a failed setup should abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::{reflector, watcher};
use kube_sim::{PoolConfig, SimConfig, SimHandle, Simulator};
use serde_json::json;

const NODES: usize = 5_000;
const PODS: usize = 100_000;
const NAMESPACES: usize = 10;

fn pod(i: usize) -> serde_json::Value {
    let node = format!("general-{:04}", i % NODES);
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "namespace": format!("ns-{}", i % NAMESPACES),
            "labels": {"app": format!("app-{}", i % 100), "spark-role": if i.is_multiple_of(10) { "driver" } else { "executor" }}},
        "spec": {"nodeName": node, "containers": [{"name": "spark-kubernetes-executor", "image": "apache/spark:3.5.0",
            "args": ["executor"], "env": [{"name": "SPARK_EXECUTOR_ID", "value": i.to_string()}],
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "256Mi"}}}]}
    })
}

fn setup(rt: &tokio::runtime::Runtime) -> SimHandle {
    let _guard = rt.enter();
    let mut cfg = SimConfig::default().with_pool(PoolConfig::new("general", NODES, "64", "256Gi"));
    for n in 0..NAMESPACES {
        cfg = cfg.with_namespace(&format!("ns-{n}"));
    }
    // Pods stay as created: no kubelet churn while measuring.
    cfg.simulation.pod_start_delay = Duration::from_secs(86_400 * 365);
    cfg.simulation.watch_history = 200_000;
    let start = Instant::now();
    let sim = Simulator::start(cfg, "127.0.0.1:0".parse().unwrap()).unwrap();
    for i in 0..PODS {
        sim.create_object(pod(i)).unwrap();
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.trim().to_string())
        })
        .unwrap_or_default();
    eprintln!(
        "setup: {NODES} nodes, {PODS} pods in {:.1?} ({rss})",
        start.elapsed()
    );
    sim
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = setup(&rt);
    let client = rt.block_on(async { sim.client().unwrap() });
    let pods: Api<Pod> = Api::all(client.clone());

    let mut g = c.benchmark_group("list");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function("all pods unpaged (raw)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = http::Request::get("/api/v1/pods").body(Vec::new()).unwrap();
                let text = client.request_text(req).await.unwrap();
                assert!(text.len() > PODS * 100);
            })
        })
    });
    g.bench_function("all pods unpaged (typed)", |b| {
        b.iter(|| {
            rt.block_on(async {
                assert_eq!(
                    pods.list(&ListParams::default()).await.unwrap().items.len(),
                    PODS
                )
            })
        })
    });
    g.bench_function("all pods paged 500 (typed)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut n = 0;
                let mut lp = ListParams::default().limit(500);
                loop {
                    let page = pods.list(&lp).await.unwrap();
                    n += page.items.len();
                    match page.metadata.continue_.filter(|c| !c.is_empty()) {
                        Some(c) => lp = lp.continue_token(&c),
                        None => break,
                    }
                }
                assert_eq!(n, PODS);
            })
        })
    });
    g.sample_size(100);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("pods by spec.nodeName (typed)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 7) % NODES;
            let lp = ListParams::default().fields(&format!("spec.nodeName=general-{i:04}"));
            rt.block_on(async {
                assert_eq!(pods.list(&lp).await.unwrap().items.len(), PODS / NODES)
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("watch");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(30));
    g.bench_function("reflector initial list (page 500)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (reader, writer) = reflector::store::<Pod>();
                let mut s =
                    reflector(writer, watcher(pods.clone(), watcher::Config::default())).boxed();
                while let Some(ev) = s.next().await {
                    if matches!(ev.unwrap(), watcher::Event::InitDone) {
                        break;
                    }
                }
                assert_eq!(reader.state().len(), PODS);
            })
        })
    });
    // Event throughput: 10,000 creates fanned out to one watch, measured until the
    // client has received (and deserialised) every ADDED event.
    let batch = 10_000;
    let mut round = 0;
    g.throughput(criterion::Throughput::Elements(batch as u64));
    g.bench_function("watch event throughput (10k ADDED)", |b| {
        b.iter(|| {
            round += 1;
            let ns = format!("ns-{}", round % NAMESPACES);
            rt.block_on(async {
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let rv = api
                    .list_metadata(&ListParams::default().limit(1))
                    .await
                    .unwrap()
                    .metadata
                    .resource_version
                    .unwrap();
                let mut stream = api
                    .watch(
                        &WatchParams::default().labels(&format!("round={round}")),
                        &rv,
                    )
                    .await
                    .unwrap()
                    .boxed();
                let base = PODS + round * batch;
                for i in 0..batch {
                    let mut p = pod(base + i);
                    p["metadata"]["namespace"] = json!(ns);
                    p["metadata"]["labels"]["round"] = json!(round.to_string());
                    sim.create_object(p).unwrap();
                }
                let mut seen = 0;
                while seen < batch {
                    match stream.next().await.unwrap().unwrap() {
                        WatchEvent::Added(_) => seen += 1,
                        WatchEvent::Error(e) => panic!("{e:?}"),
                        _ => {}
                    }
                }
            })
        })
    });
    // Replay throughput: a watch from an old resourceVersion streams history it already has.
    let replay_from = rt.block_on(async {
        let api: Api<Pod> = Api::namespaced(client.clone(), "default");
        api.list_metadata(&ListParams::default().limit(1))
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap()
    });
    for i in 0..batch {
        let mut p = pod(PODS * 10 + i);
        p["metadata"]["namespace"] = json!("default");
        p["metadata"]["labels"]["replay"] = json!("yes");
        sim.create_object(p).unwrap();
    }
    g.bench_function("watch replay from history (10k ADDED)", |b| {
        b.iter(|| {
            rt.block_on(async {
                let api: Api<Pod> = Api::namespaced(client.clone(), "default");
                let mut stream = api
                    .watch(&WatchParams::default().labels("replay=yes"), &replay_from)
                    .await
                    .unwrap()
                    .boxed();
                let mut seen = 0;
                while seen < batch {
                    match stream.next().await.unwrap().unwrap() {
                        WatchEvent::Added(_) => seen += 1,
                        WatchEvent::Error(e) => panic!("{e:?}"),
                        _ => {}
                    }
                }
            })
        })
    });
    g.finish();
    let stats = sim.stats();
    eprintln!(
        "final stats: objects={} watches={}",
        stats["objects"], stats["watches"]
    );
    drop(sim);
}

criterion_group!(list_watch, benches);

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: skip the
    // 100,000-pod setup there instead of spending minutes in a debug build.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!(
            "list_watch: benchmark only; run it with `cargo bench -p kube-sim --bench list_watch`"
        );
        return;
    }
    list_watch();
    Criterion::default().configure_from_args().final_summary();
}
