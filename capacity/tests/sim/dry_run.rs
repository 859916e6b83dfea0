//! The dry-run strategy: admission's verdict on top of the snapshot fit; nothing is stored;
//! API failures are errors, not verdicts.

use capacity::testing::gi;
use capacity::verdict::NeverKind;
use capacity::{CapacityConfig, Strategy, Verdict};
use kube_sim::{ErrorRule, SimConfig};

use crate::support::{Running, pods_in, sim};

fn config() -> CapacityConfig {
    CapacityConfig {
        strategy: Strategy::DryRun,
        ..CapacityConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refusals_and_acceptances() {
    let sim = sim(SimConfig::uniform(2, "8", "32Gi")
        .with_namespace("open")
        .with_namespace("strict")
        // A quota on limits the pods do not set: admission refuses every such pod.
        .with_quota("strict", "limits", &[("limits.cpu", "16")]));
    let client = sim.client().unwrap();
    let run = Running::start(client.clone(), &config()).await;
    let checker = run.capacity.checker();
    assert_eq!(checker.name(), "dry-run");

    let g = capacity::testing::gang("job", "open", (1000, gi(2)), 2, (2000, gi(4)));
    assert!(matches!(checker.check(&g).await.unwrap(), Verdict::Fits(_)));
    assert!(
        pods_in(&client, "open", "").await.is_empty(),
        "dry-run stores nothing"
    );

    let strict = capacity::testing::gang("job", "strict", (1000, gi(2)), 2, (2000, gi(4)));
    let Verdict::Never(n) = checker.check(&strict).await.unwrap() else {
        panic!("expected never")
    };
    assert_eq!(n.kind, NeverKind::Invalid { status: 403 }, "{}", n.message);
    assert!(
        n.message.contains("must specify limits.cpu"),
        "{}",
        n.message
    );

    // The snapshot's own "never" needs no API call at all.
    let huge = capacity::testing::gang("huge", "open", (1000, gi(2)), 1, (64_000, gi(4)));
    assert!(matches!(
        checker.check(&huge).await.unwrap(),
        Verdict::Never(_)
    ));

    // A server error is an error, not a verdict; the next check is fine again.
    sim.add_error_rule(ErrorRule {
        verb: "create".into(),
        resource: "pods".into(),
        rate: 1.0,
        code: 500,
        count: Some(1),
    })
    .unwrap();
    assert_eq!(checker.check(&g).await.unwrap_err().metric_label(), "kube");
    assert!(matches!(checker.check(&g).await.unwrap(), Verdict::Fits(_)));
    let text = run.metrics_text();
    assert!(
        text.contains(r#"orchestrator_capacity_errors_total{strategy="dry-run",error="kube"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"orchestrator_capacity_verdicts_total{strategy="dry-run",verdict="never",reason="invalid"} 1"#));
    run.stop().await;
}
