//! The queues' Prometheus metrics: one struct, registered once, shared by the intake, the
//! store, the outbox relay and the maintenance loop. Grafana panels use exactly these names.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `orchestrator_intake_messages_total` | counter | `source` = `amqp` \| `http` \| `cron`, `namespace`, `priority`, `outcome` = `accepted` \| `duplicate` \| `conflict` (HTTP: the id is another job's) \| `invalid` \| `unknown-namespace` \| … (the dead-letter reasons) |
//! | `orchestrator_dead_letters_total` | counter | `namespace` (`""` when unknown), `reason` |
//! | `orchestrator_queue_depth` | gauge | `namespace`, `priority` — pending (queued + waiting) jobs in the store |
//! | `orchestrator_queue_oldest_wait_seconds` | gauge | `namespace`, `priority` — age of the oldest pending job |
//! | `orchestrator_queue_wait_seconds` | histogram | `namespace`, `priority`, `stage` = `broker` (publish → stored, from the publish timestamp) \| `store` (stored/requeued → submitted) |
//! | `orchestrator_intake_batch_size` | histogram | — messages committed per store transaction |
//! | `orchestrator_intake_commit_seconds` | histogram | — time of one intake transaction |
//! | `orchestrator_intake_window_full` | gauge | `namespace`, `priority` — 1 while the store window is full and the backlog waits in RabbitMQ |
//! | `orchestrator_outbox_published_total` | counter | `kind` = `event` \| `dead-letter` \| `verdict` \| `job`, `outcome` = `sent` \| `returned` \| `nacked` |
//! | `orchestrator_outbox_pending` | gauge | — outbox rows not yet published |
//! | `orchestrator_retention_deleted_total` | counter | `what` = `jobs` \| `dead-letters` \| `outbox` |
//! | `orchestrator_queue_errors_total` | counter | `component` = `intake` \| `relay` \| `maintenance`, `kind` = [`crate::Error::metric_label`] |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use jobs::model::Priority;

use crate::store::JobSource;

/// `{namespace, priority}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Namespace.
    pub namespace: String,
    /// `high` or `normal`.
    pub priority: String,
}

/// `{source, namespace, priority, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntakeLabels {
    /// How the job came: `amqp`, `http` or `cron` (a schedule's fire, which travels through
    /// RabbitMQ but is stored as a cron job).
    pub source: String,
    /// Namespace (as claimed by the queue the message came from; `""` for unroutable).
    pub namespace: String,
    /// `high`, `normal` or `""`.
    pub priority: String,
    /// `accepted`, `duplicate`, `invalid`, `unknown-namespace`.
    pub outcome: String,
}

/// `{namespace, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLabels {
    /// Namespace, `""` when unknown.
    pub namespace: String,
    /// A dead-letter reason.
    pub reason: String,
}

/// `{namespace, priority, stage}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WaitLabels {
    /// Namespace.
    pub namespace: String,
    /// `high` or `normal`.
    pub priority: String,
    /// `broker` or `store`.
    pub stage: String,
}

/// `{kind, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutboxLabels {
    /// Outbox row kind.
    pub kind: String,
    /// `sent`, `returned`, `nacked`.
    pub outcome: String,
}

/// `{what}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetentionLabels {
    /// `jobs`, `dead-letters`, `outbox`.
    pub what: String,
}

/// `{component, kind}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `intake`, `relay`, `maintenance`.
    pub component: String,
    /// The error's metric label.
    pub kind: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Upper bounds of `orchestrator_queue_wait_seconds`: 10 ms … ~6.5 h. Broker hops are
/// milliseconds; capacity waits are hours (the replay's standard trace has a normal-priority
/// p95 of 67 min), and a quantile past the top finite bucket only says "more than that".
fn wait_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.01, 2.5, 17)
}

fn wait_histogram() -> Histogram {
    Histogram::new(wait_buckets())
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

fn commit_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// Every metric of the crate. `Default` gives working, unregistered metrics (tests).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `orchestrator_intake_messages_total`
    pub intake_messages: Family<IntakeLabels, Counter>,
    /// `orchestrator_dead_letters_total`
    pub dead_letters: Family<DeadLabels, Counter>,
    /// `orchestrator_queue_depth`
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// `orchestrator_queue_oldest_wait_seconds`
    pub queue_oldest_wait: Family<QueueLabels, Gauge>,
    /// `orchestrator_queue_wait_seconds`
    pub queue_wait: HistogramFamily<WaitLabels>,
    /// `orchestrator_intake_batch_size`
    pub intake_batch_size: Histogram,
    /// `orchestrator_intake_commit_seconds`
    pub intake_commit_seconds: Histogram,
    /// `orchestrator_intake_window_full`
    pub intake_window_full: Family<QueueLabels, Gauge>,
    /// `orchestrator_outbox_published_total`
    pub outbox_published: Family<OutboxLabels, Counter>,
    /// `orchestrator_outbox_pending`
    pub outbox_pending: Gauge,
    /// `orchestrator_retention_deleted_total`
    pub retention_deleted: Family<RetentionLabels, Counter>,
    /// `orchestrator_queue_errors_total`
    pub errors: Family<ErrorLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            intake_messages: Family::default(),
            dead_letters: Family::default(),
            queue_depth: Family::default(),
            queue_oldest_wait: Family::default(),
            queue_wait: Family::new_with_constructor(wait_histogram),
            intake_batch_size: batch_histogram(),
            intake_commit_seconds: commit_histogram(),
            intake_window_full: Family::default(),
            outbox_published: Family::default(),
            outbox_pending: Gauge::default(),
            retention_deleted: Family::default(),
            errors: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric (names under `orchestrator_`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "orchestrator_intake_messages",
            "Messages taken from the intake queues, by outcome",
            self.intake_messages.clone(),
        );
        registry.register(
            "orchestrator_dead_letters",
            "Jobs and messages dead-lettered, by reason",
            self.dead_letters.clone(),
        );
        registry.register(
            "orchestrator_queue_depth",
            "Pending (queued or waiting) jobs in the store",
            self.queue_depth.clone(),
        );
        registry.register(
            "orchestrator_queue_oldest_wait_seconds",
            "Age of the oldest pending job in the store",
            self.queue_oldest_wait.clone(),
        );
        registry.register(
            "orchestrator_queue_wait_seconds",
            "Time jobs spend in each stage before submission (broker: publish to stored; store: stored to submitted)",
            self.queue_wait.clone(),
        );
        registry.register(
            "orchestrator_intake_batch_size",
            "Messages committed per intake transaction",
            self.intake_batch_size.clone(),
        );
        registry.register(
            "orchestrator_intake_commit_seconds",
            "Duration of one intake transaction",
            self.intake_commit_seconds.clone(),
        );
        registry.register(
            "orchestrator_intake_window_full",
            "1 while the pending window is full and the backlog stays in RabbitMQ",
            self.intake_window_full.clone(),
        );
        registry.register(
            "orchestrator_outbox_published",
            "Outbox messages published, by kind and outcome",
            self.outbox_published.clone(),
        );
        registry.register(
            "orchestrator_outbox_pending",
            "Outbox rows not yet published",
            self.outbox_pending.clone(),
        );
        registry.register(
            "orchestrator_retention_deleted",
            "Rows deleted by the retention policy",
            self.retention_deleted.clone(),
        );
        registry.register(
            "orchestrator_queue_errors",
            "Errors in the queues' background loops, by component and kind",
            self.errors.clone(),
        );
    }

    /// Counts an intake outcome.
    pub fn intake(
        &self,
        source: JobSource,
        namespace: &str,
        priority: Option<Priority>,
        outcome: &str,
    ) {
        self.intake_messages
            .get_or_create(&intake_labels(source, namespace, priority, outcome))
            .inc();
    }

    /// Counts a dead letter.
    pub(crate) fn dead_letter(&self, namespace: Option<&str>, reason: &str) {
        self.dead_letters
            .get_or_create(&DeadLabels {
                namespace: namespace.unwrap_or_default().to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Observes a stage wait.
    pub(crate) fn wait(&self, namespace: &str, priority: &str, stage: &str, seconds: f64) {
        self.queue_wait
            .get_or_create(&WaitLabels {
                namespace: namespace.to_owned(),
                priority: priority.to_owned(),
                stage: stage.to_owned(),
            })
            .observe(seconds.max(0.0));
    }

    /// Counts a background-loop error.
    pub(crate) fn error(&self, component: &str, err: &crate::Error) {
        self.errors
            .get_or_create(&ErrorLabels {
                component: component.to_owned(),
                kind: err.metric_label().to_owned(),
            })
            .inc();
    }

    /// Reads a counter (tests and diagnostics).
    pub fn intake_count(
        &self,
        source: JobSource,
        namespace: &str,
        priority: Option<Priority>,
        outcome: &str,
    ) -> u64 {
        self.intake_messages
            .get(&intake_labels(source, namespace, priority, outcome))
            .map_or(0, |c| c.get())
    }
}

fn intake_labels(
    source: JobSource,
    namespace: &str,
    priority: Option<Priority>,
    outcome: &str,
) -> IntakeLabels {
    IntakeLabels {
        source: source.as_str().to_owned(),
        namespace: namespace.to_owned(),
        priority: priority
            .map(Priority::as_str)
            .unwrap_or_default()
            .to_owned(),
        outcome: outcome.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn exposition_uses_the_documented_names() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.intake(JobSource::Amqp, "team-a", Some(Priority::High), "accepted");
        metrics.dead_letter(Some("team-a"), "invalid");
        metrics.wait("team-a", "high", "broker", 0.2);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for needle in [
            "orchestrator_intake_messages_total{source=\"amqp\",namespace=\"team-a\",priority=\"high\",outcome=\"accepted\"} 1",
            "orchestrator_dead_letters_total{namespace=\"team-a\",reason=\"invalid\"} 1",
            "orchestrator_queue_wait_seconds_bucket{",
            "stage=\"broker\"",
            "orchestrator_outbox_pending",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert_eq!(
            metrics.intake_count(JobSource::Amqp, "team-a", Some(Priority::High), "accepted"),
            1
        );
    }

    #[test]
    fn queue_waits_of_hours_land_in_finite_buckets() {
        let top = wait_buckets().last().unwrap_or_default();
        assert!(
            top >= 6.0 * 3600.0,
            "top finite bucket {top} s is under 6 h"
        );
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.wait("team-a", "normal", "store", 5.0 * 3600.0);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let le = format!("le=\"{top}\"");
        let line = text
            .lines()
            .find(|l| l.starts_with("orchestrator_queue_wait_seconds_bucket{") && l.contains(&le))
            .unwrap_or_else(|| panic!("no bucket {le} in\n{text}"));
        assert!(
            line.ends_with(" 1"),
            "a 5 h wait is not under {top} s: {line}"
        );
    }
}
