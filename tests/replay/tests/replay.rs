//! The replayer end to end, small: a deadlock-shaped trace (gangs of one node each, all at
//! once, on two nodes) replayed with the orchestrator and with the Spark Operator alone.
//! Properties only — no wall-clock figures.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

use replay::Policy;
use replay::generate;
use replay::replay::{RunConfig, run};

fn config() -> RunConfig {
    RunConfig {
        nodes: 2,
        speed: 40.0,
        stuck_limit: 60.0,
        drain: 900.0,
        sample_every: 10.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orchestrator_runs_every_job_without_a_stuck_application_the_operator_alone_deadlocks()
{
    // 12 one-node gangs on 2 nodes; each runs 60 simulated seconds.
    let trace = generate::deadlock(12, 60.0);

    let orchestrated = run(&trace, Policy::Orchestrator, &config()).await.unwrap();
    let s = orchestrated.summary();
    assert_eq!(s.stuck, 0, "{s:?}");
    assert_eq!((s.finished, s.succeeded), (12, 12), "{s:?}");
    assert!(s.normal.unwrap().max.is_finite());
    let waiting_fit = orchestrated
        .recorder
        .samples
        .iter()
        .filter(|x| x.waiting > 0)
        .count();
    assert!(waiting_fit > 0, "jobs queued while the cluster was full");

    let alone = run(&trace, Policy::NoOrchestrator, &config())
        .await
        .unwrap();
    let s = alone.summary();
    // Drivers take the room their executors need. kube-sim lets an application progress at
    // the share of its executors running, so apps crawl on partial executors rather than
    // hang for ever; what matters is that drivers sit with executors pending.
    assert!(s.stuck > 0, "{s:?}");
    assert!(
        s.normal.unwrap().max.is_infinite(),
        "some job never had all its executors at once: {s:?}"
    );
}
