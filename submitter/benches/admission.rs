//! Admission decisions per second: one ordering round over 10,000 pending jobs in 1,000
//! namespaces (high and normal), on a 5,000-node cluster view, with capacity's real packing.
//!
//! `cargo bench -p submitter --bench admission`

#![allow(clippy::unwrap_used, reason = "benchmark setup")]

use std::collections::BTreeMap;
use std::time::Duration;

use capacity::testing::{gang, node, used};
use capacity::{ClusterView, Resources};
use chrono::{DateTime, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use jobs::{JobId, Priority};
use submitter::ordering::{Candidate, Policy, decide};
use submitter::room::{ClusterRoom, ShapeId};
use uuid::Uuid;

const GI: u64 = 1 << 30;

fn view(nodes: usize, busy: f64) -> ClusterView {
    let nodes = (0..nodes)
        .map(|i| {
            let n = node(&format!("node-{i:05}"), 16_000, 64 * GI, Some("general"));
            // A partly busy cluster: most jobs wait, some fit, holds and backfill both happen.
            used(n, (16_000.0 * busy) as u64, (64.0 * busy) as u64 * GI, 10)
        })
        .collect();
    ClusterView {
        nodes,
        ..ClusterView::default()
    }
}

fn candidates(jobs: usize, namespaces: usize) -> Vec<Candidate> {
    let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    (0..jobs)
        .map(|i| {
            let ns = format!("ns-{:04}", i % namespaces);
            let executors = 1 + i % 8;
            let g = gang(
                &i.to_string(),
                &ns,
                (1000, 4 * GI),
                executors,
                (2000, 8 * GI),
            );
            Candidate {
                id: JobId(Uuid::from_u128(i as u128 + 1)),
                namespace: ns.clone(),
                priority: if i % 10 == 0 {
                    Priority::High
                } else {
                    Priority::Normal
                },
                rank: (i / namespaces) as u64 + 1,
                enqueued_at: t0 - chrono::Duration::seconds(i as i64),
                shape: ShapeId::of(&g),
                gang: g.into(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    let policy = Policy {
        promote_after: Duration::from_secs(3600),
        max_admissions: 10_000,
        backfill: true,
        reservations: 2,
    };
    let mut group = c.benchmark_group("admission_round");
    group.sample_size(10);
    for (nodes, busy) in [(5_000usize, 0.9f64), (100, 0.5)] {
        let view = view(nodes, busy);
        let jobs = candidates(10_000, 1_000);
        let entitled: BTreeMap<String, Resources> = (0..1_000)
            .map(|n| {
                (
                    format!("ns-{n:04}"),
                    Resources {
                        cpu_millis: 80_000,
                        memory_bytes: 320 * GI,
                        pods: 0,
                    },
                )
            })
            .collect();
        group.throughput(Throughput::Elements(jobs.len() as u64));
        group.bench_function(
            format!("10000_pending_1000_namespaces_{nodes}_nodes"),
            |b| {
                b.iter_batched(
                    || jobs.clone(),
                    |jobs| {
                        decide(
                            now,
                            jobs,
                            &BTreeMap::new(),
                            &entitled,
                            &policy,
                            &mut ClusterRoom::new(&view),
                        )
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
