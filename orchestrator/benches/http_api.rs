//! HTTP API figures on a fresh database: submit throughput and latency at a given
//! concurrency, then read latencies (job detail, list pages — one namespace query and the
//! merged per-namespace listing of a scoped token — and the queues view) over the jobs
//! submitted. `cargo bench -p orchestrator --bench http_api [-- JOBS CONCURRENCY]`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark binary"
)]

#[path = "../tests/support/api.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{ADMIN, READ_AB, SUBMIT_A, SUBMIT_B, TestApi, job};

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let q = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{name:<45} n={:<6} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
        samples.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
}

async fn timed_get(
    client: &reqwest::Client,
    url: String,
    token: &str,
) -> (Duration, serde_json::Value) {
    let started = Instant::now();
    let resp = client.get(url).bearer_auth(token).send().await.unwrap();
    assert!(resp.status().is_success());
    let body = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    (started.elapsed(), body)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let jobs = args.first().copied().unwrap_or(5000);
    let concurrency = args.get(1).copied().unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let api = Arc::new(TestApi::start().await);
        let client = reqwest::Client::new();
        let bodies: Vec<Vec<u8>> = (0..jobs)
            .map(|i| {
                let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
                serde_json::to_vec(&job(ns, &format!("bench-{i}"))).unwrap()
            })
            .collect();
        let bodies = Arc::new(bodies);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (api, client, bodies, next) =
                (api.clone(), client.clone(), bodies.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        return samples;
                    }
                    let token = if i % 2 == 0 { SUBMIT_A } else { SUBMIT_B };
                    let t = Instant::now();
                    let resp = client
                        .post(format!("{}/v1/jobs", api.url))
                        .bearer_auth(token)
                        .header("content-type", "application/json")
                        .body(bodies[i].clone())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 202);
                    let _ = resp.bytes().await.unwrap();
                    samples.push(t.elapsed());
                }
            }));
        }
        let mut submit = Vec::new();
        for w in workers {
            submit.extend(w.await.unwrap());
        }
        let elapsed = started.elapsed();
        println!(
            "submitted {jobs} jobs with concurrency {concurrency} in {elapsed:.2?}: {:.0} jobs/s",
            jobs as f64 / elapsed.as_secs_f64()
        );
        summary("POST /v1/jobs", submit);

        let mut ids = Vec::new();
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                None => format!("{}/v1/jobs?limit=100", api.url),
                Some(c) => format!("{}/v1/jobs?limit=100&cursor={c}", api.url),
            };
            let (d, body) = timed_get(&client, url, ADMIN).await;
            pages.push(d);
            ids.extend(
                body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|j| j["id"].as_str().unwrap().to_owned()),
            );
            match body["next"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(ids.len(), jobs);
        summary("GET /v1/jobs?limit=100 (all namespaces)", pages);

        let mut merged = Vec::new();
        let mut cursor: Option<String> = None;
        let mut seen = 0;
        loop {
            let url = match &cursor {
                None => format!("{}/v1/jobs?limit=100", api.url),
                Some(c) => format!("{}/v1/jobs?limit=100&cursor={c}", api.url),
            };
            let (d, body) = timed_get(&client, url, READ_AB).await;
            merged.push(d);
            seen += body["items"].as_array().unwrap().len();
            match body["next"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen, jobs);
        summary("GET /v1/jobs?limit=100 (2-ns token, merged)", merged);

        let mut detail = Vec::new();
        for id in ids.iter().step_by((jobs / 500).max(1)) {
            detail.push(
                timed_get(&client, format!("{}/v1/jobs/{id}", api.url), ADMIN)
                    .await
                    .0,
            );
        }
        summary("GET /v1/jobs/{id} (queue position)", detail);

        let mut queues = Vec::new();
        for _ in 0..100 {
            queues.push(
                timed_get(&client, format!("{}/v1/queues", api.url), ADMIN)
                    .await
                    .0,
            );
        }
        summary("GET /v1/queues (5 heads per queue)", queues);
        Arc::try_unwrap(api).ok().unwrap().finish().await;
    });
}
