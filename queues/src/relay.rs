//! The outbox relay: publishes the outbox's rows (state events, dead-letter copies, reply_to
//! verdicts, cron-fired jobs) with publisher confirms, then marks them sent — in the same
//! transaction that locked them, so a crash re-sends rather than loses (at-least-once; events
//! carry the job id and state so consumers can deduplicate).
//!
//! Several relays (replicas) can run: rows are claimed with `FOR UPDATE SKIP LOCKED`. A row
//! the broker returns as unroutable (a `reply_to` queue that no longer exists) is marked sent
//! with `returned = true`; a nacked row stays unsent and is retried after a pause.
//!
//! While this process admits jobs, the relay gives way ([`yielding`]): it publishes once
//! admissions pause, and [`RelayConfig::yield_at_most`] later at the latest.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use chrono::Utc;
use lapin::options::ConfirmSelectOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Connection};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::amqp::{self, json_to_table};
use crate::error::{Error, Result};
use crate::metrics::OutboxLabels;
use crate::outage::{outage_backoff, reconnecting};
use crate::publisher::{Envelope, publish_pipelined};
use crate::store::JobStore;
use crate::store::outbox::OutboxFate;

pub mod yielding;

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// `amqp://…`.
    pub amqp_url: String,
    /// Connection name shown by the broker.
    pub connection_name: String,
    /// Rows per transaction.
    pub batch: u32,
    /// Poll interval for rows written by other processes (this process's writes wake the
    /// relay).
    pub poll_interval: Duration,
    /// How long a wake by this process's own write waits for the writes behind it before
    /// claiming: a burst (a round recording hundreds of admissions in many small statements)
    /// then goes out in a few large batches, each one transaction and one wait for confirms,
    /// not one batch per write. Events are that much later; nothing else waits on them.
    pub linger: Duration,
    /// The longest the relay waits, once woken, for this process's admissions to pause
    /// ([`yielding`]); a pause is a `linger` without any. Zero: it never waits.
    pub yield_at_most: Duration,
}

impl RelayConfig {
    /// Batches of 500, polling every 500 ms, lingering 25 ms after a wake, giving way to
    /// admissions for up to 1 s.
    pub fn new(amqp_url: impl Into<String>) -> Self {
        Self {
            amqp_url: amqp_url.into(),
            connection_name: "orchestrator-outbox".into(),
            batch: 500,
            poll_interval: Duration::from_millis(500),
            linger: Duration::from_millis(25),
            yield_at_most: Duration::from_secs(1),
        }
    }
}

/// The outbox relay.
#[derive(Debug, Clone)]
pub struct Relay {
    store: JobStore,
    config: RelayConfig,
}

impl Relay {
    /// A relay for `store`'s outbox.
    pub fn new(store: JobStore, config: RelayConfig) -> Self {
        Self { store, config }
    }

    /// Publishes until `token` is cancelled, reconnecting (with backoff) when the broker is
    /// away. Returns `Ok` on cancellation.
    pub async fn run(self, token: CancellationToken) -> Result<()> {
        reconnecting(
            &token,
            "outbox relay",
            |e| self.store.metrics().error("relay", e),
            || async {
                let connection =
                    amqp::connect(&self.config.amqp_url, &self.config.connection_name).await?;
                let result = self.session(&connection, &token).await;
                if let Err(e) = connection.close(200, "relay stopping".into()).await {
                    debug!(error = %e, "closing the relay connection");
                }
                result
            },
        )
        .await
    }

    async fn session(&self, connection: &Connection, token: &CancellationToken) -> Result<()> {
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let signal = self.store.outbox_signal();
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut pause = outage_backoff().build();
        let mut counted: Option<Instant> = None;
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return Ok(()),
                _ = signal.notified() => {
                    tokio::select! {
                        _ = token.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(self.config.linger) => {}
                    }
                }
                _ = tick.tick() => {}
            }
            let admissions = self.store.admissions();
            let deadline = tokio::time::Instant::now() + self.config.yield_at_most;
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                () = admissions.quiet_for(self.config.linger, deadline) => {}
            }
            loop {
                match self.relay_batch(&channel).await {
                    Ok(Progress { claimed, failed }) => {
                        if failed > 0 {
                            // Nacks (a full queue): retry later, not in a tight loop.
                            let wait = pause.next().unwrap_or(Duration::from_secs(30));
                            tokio::select! {
                                _ = token.cancelled() => return Ok(()),
                                _ = tokio::time::sleep(wait) => {}
                            }
                            break;
                        }
                        pause = outage_backoff().build();
                        if claimed < self.config.batch as usize || token.is_cancelled() {
                            break;
                        }
                    }
                    Err(Error::Amqp(e)) => {
                        warn!(error = %e, "outbox publish interrupted; waiting for the connection to recover");
                        channel.wait_for_recovery(e).await?;
                        break;
                    }
                    Err(e) if e.is_retryable() => {
                        self.store.metrics().error("relay", &e);
                        let wait = pause.next().unwrap_or(Duration::from_secs(30));
                        warn!(error = %e, pause_ms = wait.as_millis(), "outbox relay: transient failure");
                        tokio::select! {
                            _ = token.cancelled() => return Ok(()),
                            _ = tokio::time::sleep(wait) => {}
                        }
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            // The backlog gauge is a count over the outbox: once per poll interval is enough.
            if counted.is_none_or(|at| at.elapsed() >= self.config.poll_interval) {
                counted = Some(Instant::now());
                if let Ok(n) = self.store.outbox_pending().await {
                    self.store
                        .metrics()
                        .outbox_pending
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
            }
        }
    }

    /// Claims, publishes and marks one batch.
    async fn relay_batch(&self, channel: &Channel) -> Result<Progress> {
        let (tx, rows) = self.store.claim_outbox(self.config.batch).await?;
        if rows.is_empty() {
            return Ok(Progress::default());
        }
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let envelopes: Vec<Envelope> = rows
            .iter()
            .map(|r| {
                let mut props = BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_timestamp(now)
                    .with_headers(json_to_table(&r.headers));
                if let Ok(ct) = ShortString::try_new(r.content_type.as_str()) {
                    props = props.with_content_type(ct);
                }
                if let Some(Ok(id)) = r.message_id.as_deref().map(ShortString::try_new) {
                    props = props.with_message_id(id);
                }
                if let Some(Ok(c)) = r.correlation_id.as_deref().map(ShortString::try_new) {
                    props = props.with_correlation_id(c);
                }
                if let Ok(t) = ShortString::try_new(r.kind.as_str()) {
                    props = props.with_type(t);
                }
                Envelope {
                    exchange: r.exchange.clone(),
                    routing_key: r.routing_key.clone(),
                    mandatory: r.mandatory,
                    body: r.body.clone(),
                    props,
                }
            })
            .collect();
        let refs: Vec<&Envelope> = envelopes.iter().collect();
        let outcomes = publish_pipelined(channel, &refs).await;
        let mut fates = Vec::with_capacity(rows.len());
        let mut failed = 0;
        for (row, outcome) in rows.iter().zip(outcomes) {
            let (fate, label) = match outcome {
                Ok(()) => (OutboxFate::Sent, "sent"),
                Err(Error::Unroutable { .. } | Error::InvalidArgument(_)) => {
                    warn!(
                        kind = row.kind,
                        routing_key = row.routing_key,
                        "outbox message unroutable; marked sent (returned)"
                    );
                    (OutboxFate::Returned, "returned")
                }
                Err(Error::Nacked { .. }) => {
                    failed += 1;
                    (OutboxFate::Failed("nacked by the broker".into()), "nacked")
                }
                // Connection trouble: roll back (rows stay unsent; some may be sent twice).
                Err(e) => return Err(e),
            };
            self.store
                .metrics()
                .outbox_published
                .get_or_create(&OutboxLabels {
                    kind: row.kind.clone(),
                    outcome: label.to_owned(),
                })
                .inc();
            fates.push((row.id, fate));
        }
        self.store.finish_outbox(tx, &fates).await?;
        Ok(Progress {
            claimed: rows.len(),
            failed,
        })
    }
}

#[derive(Debug, Default)]
struct Progress {
    claimed: usize,
    failed: usize,
}
