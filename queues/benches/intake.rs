//! Intake throughput against the real RabbitMQ and PostgreSQL on 127.0.0.1:
//!
//! ```text
//! cargo bench -p queues --bench intake                 # 50,000 jobs
//! cargo bench -p queues --bench intake -- --jobs 20000
//! ```
//!
//! Three runs on the same broker, queue type and message (a ~1.4 KB persistent job JSON,
//! published with confirms, 1,000 in flight):
//! 1. **raw**: publish + a plain lapin consumer acking each delivery (prefetch 1,000) —
//!    the ceiling for anything that consumes one queue;
//! 2. **intake**: publish → [`queues::Intake`] → committed in the job store (validation,
//!    one transaction per batch with history and outbox rows, then the ack), timed from the
//!    first publish to the last row committed;
//! 3. **intake + relay**: the same with the outbox relay publishing the `queued` events.
//!
//! A fresh database and a unique prefix are used and removed afterwards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark binary: panics are failures, stdout is the report"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use jobs::{JobId, Priority};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueuePurgeOptions};
use lapin::types::FieldTable;
use queues::metrics::Metrics;
use queues::store::JobStore;
use queues::{
    Intake, IntakeConfig, Names, Outgoing, Publisher, Relay, RelayConfig, Topology, TopologyConfig,
};
use serde_json::json;
use test_support::AMQP_URL;
use test_support::pg::{PORT, TestDb};
use tokio_util::sync::CancellationToken;

fn body(id: JobId, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "v1",
        "id": id.to_string(),
        "name": format!("nightly-etl-{}", i % 1000),
        "namespace": "bench",
        "mainApplicationFile": "s3a://data-platform-artifacts/jobs/nightly-etl/nightly-etl-assembly-2.4.1.jar",
        "mainClass": "com.example.dataplatform.etl.NightlyAggregation",
        "arguments": ["--date", "2026-11-23", "--source", "s3a://raw-events/clickstream/", "--target", "s3a://curated/clickstream_daily/", "--partitions", "400", "--mode", "overwrite"],
        "sparkConf": {
            "spark.sql.shuffle.partitions": "400",
            "spark.sql.adaptive.enabled": "true",
            "spark.sql.adaptive.coalescePartitions.enabled": "true",
            "spark.serializer": "org.apache.spark.serializer.KryoSerializer",
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.speculation": "false"
        },
        "hadoopConf": {
            "fs.s3a.connection.maximum": "200",
            "fs.s3a.fast.upload": "true"
        },
        "env": { "PIPELINE": "clickstream", "OWNER": "data-platform", "TIER": "gold" },
        "tags": { "team": "data-platform", "pipeline": "clickstream", "schedule": "nightly" },
        "driver": { "cores": 1, "memory": "2g" },
        "executor": { "nodeType": "small", "instances": 4 },
        "retry": { "maxAttempts": 3, "backoff": { "initial": "30s", "max": "10m", "multiplier": 2 } },
        "ttl": "6h"
    }))
    .unwrap()
}

fn messages(n: usize) -> Vec<Outgoing> {
    (0..n)
        .map(|i| {
            let id = JobId::generate();
            Outgoing::raw("bench", Priority::Normal, body(id, i)).with_message_id(id.to_string())
        })
        .collect()
}

async fn publish(publisher: &Publisher, msgs: &[Outgoing]) {
    for chunk in msgs.chunks(1000) {
        for r in publisher.publish_all(chunk).await {
            r.unwrap();
        }
    }
}

/// Mean of `orchestrator_intake_batch_size`, read from the exposition text.
fn mean_batch(metrics: &Metrics) -> f64 {
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    value("orchestrator_intake_batch_size_sum ")
        / value("orchestrator_intake_batch_size_count ").max(1.0)
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs = args
        .iter()
        .position(|a| a == "--jobs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000usize);

    let catalog = Arc::new(test_support::fixtures::catalog_with(&format!(
        "[namespaces.bench]\nmax_pending = {}\n",
        jobs * 4
    )));
    let prefix = test_support::unique("bench");
    let topology = Topology::new(TopologyConfig::new(prefix.clone()), &catalog).unwrap();
    let db = TestDb::new_at(PORT, Duration::from_secs(10), &queues::store::MIGRATOR).await;
    let pool = db.pool.clone();
    let metrics = Arc::new(Metrics::default());
    let store = JobStore::new(
        pool.clone(),
        Names::new(prefix.clone()).unwrap(),
        metrics.clone(),
    );

    let connection = queues::amqp::connect(AMQP_URL, "queues-bench")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    let channel = connection.create_channel().await.unwrap();
    topology.declare(&channel).await.unwrap();
    let queue = topology.names().queue("bench", Priority::Normal);
    let publisher = Publisher::new(&connection, &topology).await.unwrap();
    println!(
        "intake benchmark: {jobs} jobs of {} bytes, quorum queue {queue}",
        body(JobId::generate(), 0).len()
    );

    // 1. Raw: publish with confirms + consume, acking each delivery in turn, then acking
    //    `multiple` every 100 (the fastest plain consumer).
    let mut raw_best = Duration::MAX;
    for (label, every) in [
        ("raw publish-confirm + consume, ack each", 1u64),
        ("raw publish-confirm + consume, ack every 100", 100),
    ] {
        let msgs = messages(jobs);
        let consume_channel = connection.create_channel().await.unwrap();
        consume_channel
            .basic_qos(1000, BasicQosOptions { global: false })
            .await
            .unwrap();
        let mut consumer = consume_channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let started = Instant::now();
        let consume = tokio::spawn(async move {
            let mut n = 0u64;
            while n < jobs as u64 {
                let d = consumer.next().await.unwrap().unwrap();
                n += 1;
                if n.is_multiple_of(every) || n == jobs as u64 {
                    d.ack(BasicAckOptions {
                        multiple: every > 1,
                    })
                    .await
                    .unwrap();
                }
            }
            consumer
        });
        publish(&publisher, &msgs).await;
        let consumer = consume.await.unwrap();
        let elapsed = started.elapsed();
        consume_channel
            .basic_cancel(consumer.tag(), Default::default())
            .await
            .unwrap();
        drop(consumer);
        consume_channel.close(200, "raw done".into()).await.unwrap();
        println!(
            "{label:<46} {:>8.0} msgs/s ({elapsed:.2?})",
            rate(jobs, elapsed)
        );
        raw_best = raw_best.min(elapsed);
    }
    let raw = raw_best;

    // 2. and 3. Intake into the store, without and with the outbox relay.
    let mut results = Vec::new();
    for (label, relay) in [
        ("intake (publish → committed)", false),
        ("intake + outbox relay (events)", true),
    ] {
        channel
            .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
            .await
            .unwrap();
        sqlx::query("TRUNCATE jobs, job_transitions, outbox CASCADE")
            .execute(&pool)
            .await
            .unwrap();
        let token = CancellationToken::new();
        let mut config = IntakeConfig::new(AMQP_URL);
        config.connection_name = format!("{prefix}-intake");
        let intake = tokio::spawn(
            Intake::new(store.clone(), catalog.clone(), topology.clone(), config)
                .run(token.child_token()),
        );
        let relay_task = relay.then(|| {
            let mut rc = RelayConfig::new(AMQP_URL);
            rc.connection_name = format!("{prefix}-relay");
            tokio::spawn(Relay::new(store.clone(), rc).run(token.child_token()))
        });
        // Let the consumers attach before timing.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let msgs = messages(jobs);
        let started = Instant::now();
        let publishing = {
            let publisher = Publisher::new(&connection, &topology).await.unwrap();
            tokio::spawn(async move { publish(&publisher, &msgs).await })
        };
        loop {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
                .fetch_one(&pool)
                .await
                .unwrap();
            if n as usize >= jobs {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = started.elapsed();
        publishing.await.unwrap();
        token.cancel();
        intake.await.unwrap().unwrap();
        if let Some(r) = relay_task {
            r.await.unwrap().unwrap();
        }
        let r = rate(jobs, elapsed);
        println!(
            "{label:<46} {r:>8.0} jobs/s ({elapsed:.2?}) = {:.0}% of the faster raw; mean batch so far {:.0}",
            100.0 * r / rate(jobs, raw),
            mean_batch(&metrics)
        );
        results.push(r);
    }

    // 4. Draining a backlog (published first, then consumed): the consumer side alone.
    channel
        .queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    publish(&publisher, &messages(jobs)).await;
    let consume_channel = connection.create_channel().await.unwrap();
    consume_channel
        .basic_qos(1000, BasicQosOptions { global: false })
        .await
        .unwrap();
    let mut consumer = consume_channel
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let started = Instant::now();
    for n in 1..=jobs as u64 {
        let d = consumer.next().await.unwrap().unwrap();
        if n.is_multiple_of(100) || n == jobs as u64 {
            d.ack(BasicAckOptions { multiple: true }).await.unwrap();
        }
    }
    let raw_drain = started.elapsed();
    consume_channel
        .basic_cancel(consumer.tag(), Default::default())
        .await
        .unwrap();
    drop(consumer);
    consume_channel
        .close(200, "drain done".into())
        .await
        .unwrap();
    println!(
        "{:<46} {:>8.0} msgs/s ({raw_drain:.2?})",
        "raw drain of a backlog, ack every 100",
        rate(jobs, raw_drain)
    );

    sqlx::query("TRUNCATE jobs, job_transitions, outbox CASCADE")
        .execute(&pool)
        .await
        .unwrap();
    publish(&publisher, &messages(jobs)).await;
    let token = CancellationToken::new();
    let mut config = IntakeConfig::new(AMQP_URL);
    config.connection_name = format!("{prefix}-intake");
    let started = Instant::now();
    let intake = tokio::spawn(
        Intake::new(store.clone(), catalog.clone(), topology.clone(), config)
            .run(token.child_token()),
    );
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs")
            .fetch_one(&pool)
            .await
            .unwrap();
        if n as usize >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain = started.elapsed();
    token.cancel();
    intake.await.unwrap().unwrap();
    println!(
        "{:<46} {:>8.0} jobs/s ({drain:.2?}) = {:.0}% of the raw drain",
        "intake drain of a backlog (incl. connecting)",
        rate(jobs, drain),
        100.0 * raw_drain.as_secs_f64() / drain.as_secs_f64()
    );
    let _ = results;

    topology.delete(&channel).await.unwrap();
    connection.close(200, "bench done".into()).await.unwrap();
    db.drop_database().await;
}
