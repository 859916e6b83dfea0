//! One intake worker: a namespace's high and normal queues (or the unroutable queue), their
//! consumers, windows and batches. See the parent module for the behaviour.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};

mod holding;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::source::{Consumption, Slot, Source, State, Window, ack, incoming, next_delivery};
use super::{IntakeConfig, QueueKind, classify};
use crate::error::{Error, Result};
use crate::outage::until_ok;
use crate::store::{IntakeItem, IntakeResult, JobSource, JobStore};
use crate::topology::{Names, short};
use jobs::catalog::Catalog;
use jobs::model::Priority;

/// How long a cancelled consumer may take to end before its channel is closed anyway.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every worker of a session shares.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) store: JobStore,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) names: Names,
    pub(crate) config: IntakeConfig,
    pub(crate) connection: Connection,
}

/// How a consumer stream stopped while a batch was being collected.
enum StreamEnd {
    Ended,
    Error(lapin::Error),
}

enum Event {
    Delivery(Slot, Option<lapin::Result<Box<Delivery>>>),
    Tick,
}

/// A namespace's (or the unroutable queue's) consumer loop.
#[derive(Debug)]
pub(crate) struct Worker {
    session: Arc<Session>,
    label: String,
    /// High then normal, or the unroutable queue alone: the first wins the biased select.
    sources: Vec<Source>,
    control: Option<Channel>,
    /// The high queue had messages ready at the last look: normal waits.
    high_backlog: bool,
}

impl Worker {
    /// The worker of `namespace`: its high queue first, then normal.
    pub(crate) fn namespace(session: Arc<Session>, namespace: &str) -> Self {
        let max = u64::from(
            session
                .catalog
                .namespace(namespace)
                .and_then(|n| n.max_pending)
                .unwrap_or(session.config.default_max_pending)
                .max(1),
        );
        let sources = Priority::ALL
            .into_iter()
            .map(|priority| {
                Source::new(
                    QueueKind::Work {
                        namespace: namespace.to_owned(),
                        priority,
                    },
                    session.names.queue(namespace, priority),
                    Some(Window {
                        max,
                        pending: 0,
                        checked: Instant::now(),
                    }),
                )
            })
            .collect();
        Self {
            label: namespace.to_owned(),
            session,
            sources,
            control: None,
            high_backlog: false,
        }
    }

    /// The worker of `{p}.unroutable` (everything there is dead-lettered; no window).
    pub(crate) fn unroutable(session: Arc<Session>) -> Self {
        let queue = session.names.unroutable();
        Self {
            label: "unroutable".into(),
            sources: vec![Source::new(QueueKind::Unroutable, queue, None)],
            session,
            control: None,
            high_backlog: false,
        }
    }

    /// Consumes until cancelled; an error means the session must restart.
    pub(crate) async fn run(mut self, token: CancellationToken) -> Result<()> {
        let span = info_span!("intake", queues = %self.label);
        async move {
            for slot in self.slots() {
                self.count_window(slot, &token, true).await?;
            }
            let mut tick = tokio::time::interval(self.session.config.poll_interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                self.ensure_consumers().await?;
                let hold_second = self.high_backlog;
                let mut sources = self.sources.iter_mut();
                let (first_slot, first) = split(sources.next());
                let (second_slot, second) = split(sources.next());
                let event = tokio::select! {
                    biased;
                    _ = token.cancelled() => break,
                    d = next_delivery(first) => Event::Delivery(first_slot, d.map(|r| r.map(Box::new))),
                    d = next_delivery(second), if !hold_second => Event::Delivery(second_slot, d.map(|r| r.map(Box::new))),
                    _ = tick.tick() => Event::Tick,
                };
                match event {
                    Event::Tick => self.on_tick(&token).await?,
                    Event::Delivery(slot, None) => self.consumer_ended(slot).await,
                    Event::Delivery(slot, Some(Err(e))) => return Err(self.stream_error(slot, e)),
                    Event::Delivery(slot, Some(Ok(first))) => {
                        let (batch, end) = self.collect(slot, *first);
                        self.process(slot, batch, &token).await?;
                        match end {
                            None => {}
                            Some(StreamEnd::Ended) => self.consumer_ended(slot).await,
                            Some(StreamEnd::Error(e)) => return Err(self.stream_error(slot, e)),
                        }
                    }
                }
            }
            debug!("intake worker stopping");
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Starts a consumer on every idle queue that has room.
    async fn ensure_consumers(&mut self) -> Result<()> {
        for slot in self.slots() {
            let Some(src) = self.source(slot) else {
                continue;
            };
            let room = src.window.as_ref().map_or(u64::MAX, Window::room);
            if !matches!(src.state, State::Idle) || room == 0 {
                continue;
            }
            let queue = src.queue.clone();
            let channel = self.session.connection.create_channel().await?;
            let prefetch = u16::try_from(room.min(u64::from(self.session.config.prefetch)))
                .unwrap_or(self.session.config.prefetch)
                .max(1);
            // Prefetch applies to consumers created after it (never global: quorum queues
            // refuse global QoS and it would close the connection).
            channel
                .basic_qos(prefetch, BasicQosOptions { global: false })
                .await?;
            let consumer = channel
                .basic_consume(
                    short(&queue)?,
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            debug!(queue, prefetch, "consuming");
            if let Some(src) = self.source_mut(slot) {
                src.state = State::Consuming(Consumption {
                    channel,
                    consumer,
                    prefetch,
                    last_delivery: Instant::now(),
                });
            }
            self.window_gauge(slot, false);
        }
        Ok(())
    }

    /// Takes whatever else is already buffered on the same queue, up to `batch_max` — and,
    /// while the consumer runs, no more than the window's room, so a full window is noticed
    /// early. An error or the end of the stream met on the way is returned too: the stream
    /// yields it only once.
    fn collect(&mut self, slot: Slot, first: Delivery) -> (Vec<Delivery>, Option<StreamEnd>) {
        let mut max = self.session.config.batch_max.max(1);
        let mut batch = vec![first];
        let Some(src) = self.source_mut(slot) else {
            return (batch, None);
        };
        if let (State::Consuming(_), Some(w)) = (&src.state, &src.window) {
            max = max.min(usize::try_from(w.room()).unwrap_or(usize::MAX).max(1));
        }
        if let State::Holding { dry_since, .. } = &mut src.state {
            *dry_since = None;
        }
        let Some(consumption) = src.state.consumption_mut() else {
            return (batch, None);
        };
        consumption.last_delivery = Instant::now();
        while batch.len() < max {
            match consumption.consumer.next().now_or_never() {
                Some(Some(Ok(d))) => batch.push(d),
                Some(Some(Err(e))) => return (batch, Some(StreamEnd::Error(e))),
                Some(None) => return (batch, Some(StreamEnd::Ended)),
                None => break,
            }
        }
        (batch, None)
    }

    async fn process(
        &mut self,
        slot: Slot,
        batch: Vec<Delivery>,
        token: &CancellationToken,
    ) -> Result<()> {
        let Some(src) = self.source(slot) else {
            return Ok(());
        };
        let kind = src.kind.clone();
        let session = self.session.clone();
        let items: Vec<IntakeItem> = batch
            .iter()
            .map(|d| classify(&incoming(d), &kind, &session.catalog, &session.names))
            .collect();
        let store = &session.store;
        let metrics = store.metrics();
        let started = Instant::now();
        let outcome = until_ok(
            token,
            "intake commit",
            |e| metrics.error("intake", e),
            || store.take_in(&items),
        )
        .await;
        let results = match outcome {
            Ok(results) => results,
            // Shutting down mid-outage: nothing was acked, the broker redelivers the batch.
            Err(Error::Cancelled) => return Ok(()),
            Err(e) => return self.isolate(slot, batch, items, e, token).await,
        };
        metrics
            .intake_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.intake_batch_size.observe(batch.len() as f64);

        if session.config.fault.take_crash() {
            return Err(Error::Crashed(
                "fault injection: crashed after commit, before ack".into(),
            ));
        }
        self.account(slot, &items, &results);
        self.settle(slot, batch, token).await
    }

    /// A batch the store refuses for good: store each message alone, so one poison message
    /// cannot block the queue. A message that still fails is requeued (explicitly); the
    /// queue's delivery limit then dead-letters it to `{p}.{ns}.dead` if it keeps failing.
    async fn isolate(
        &mut self,
        slot: Slot,
        batch: Vec<Delivery>,
        items: Vec<IntakeItem>,
        error: Error,
        token: &CancellationToken,
    ) -> Result<()> {
        warn!(error = %error, size = batch.len(), "the store refused a batch; storing its messages one by one");
        let session = self.session.clone();
        let store = &session.store;
        let metrics = store.metrics();
        for (delivery, item) in batch.iter().zip(items) {
            let one = std::slice::from_ref(&item);
            match until_ok(
                token,
                "intake commit (one)",
                |e| metrics.error("intake", e),
                || store.take_in(one),
            )
            .await
            {
                Ok(results) => {
                    ack(delivery, false).await;
                    self.account(slot, one, &results);
                }
                Err(Error::Cancelled) => return Ok(()),
                Err(e) => {
                    metrics.error("intake", &e);
                    warn!(error = %e, delivery_tag = delivery.delivery_tag, "message refused by the store; requeueing it (the delivery limit dead-letters it if this repeats)");
                    let requeue = BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    };
                    if let Err(e) = delivery.acker.nack(requeue).await {
                        warn!(error = %e, "nack failed; the broker will redeliver on channel close");
                    }
                }
            }
        }
        // The rare poison path: recount, and stop consuming if the window filled up.
        self.count_window(slot, token, false).await?;
        if self.source(slot).is_some_and(Source::window_full) {
            self.stop_consumer(slot).await?;
        }
        Ok(())
    }

    /// Metrics and the window after a committed batch.
    fn account(&mut self, slot: Slot, items: &[IntakeItem], results: &[IntakeResult]) {
        let metrics = self.session.store.metrics().clone();
        let now = Utc::now();
        let mut added = 0u64;
        for (item, result) in items.iter().zip(results) {
            match (item, result) {
                (IntakeItem::Job(j), IntakeResult::Accepted) => {
                    added += 1;
                    metrics.intake(j.source, &j.job.namespace, Some(j.job.priority), "accepted");
                    if let Some(at) = j.published_at {
                        let waited = (now - at).num_milliseconds() as f64 / 1000.0;
                        metrics.wait(&j.job.namespace, j.job.priority.as_str(), "broker", waited);
                    }
                    debug!(job_id = %j.job.id, namespace = j.job.namespace, "accepted");
                }
                (IntakeItem::Job(j), _) => {
                    metrics.intake(
                        j.source,
                        &j.job.namespace,
                        Some(j.job.priority),
                        "duplicate",
                    );
                    debug!(job_id = %j.job.id, "duplicate ignored");
                }
                (IntakeItem::Dead(d), _) => {
                    let priority = d.priority.as_deref().and_then(|p| p.parse().ok());
                    metrics.intake(
                        JobSource::Amqp,
                        d.namespace.as_deref().unwrap_or_default(),
                        priority,
                        d.reason.as_str(),
                    );
                    info!(
                        reason = d.reason.as_str(),
                        job_id = ?d.claimed_id,
                        namespace = ?d.namespace,
                        problem = d.message,
                        "dead-lettered"
                    );
                }
            }
        }
        if let Some(w) = self.source_mut(slot).and_then(|s| s.window.as_mut()) {
            w.pending = w.pending.saturating_add(added);
        }
    }

    /// The slots of this worker's queues.
    fn slots(&self) -> Vec<Slot> {
        self.sources.iter().map(|s| s.slot).collect()
    }

    fn source(&self, slot: Slot) -> Option<&Source> {
        self.sources.iter().find(|s| s.slot == slot)
    }

    fn source_mut(&mut self, slot: Slot) -> Option<&mut Source> {
        self.sources.iter_mut().find(|s| s.slot == slot)
    }
}

/// A source's slot and its consumer, if it has one (a missing source never delivers).
fn split(source: Option<&mut Source>) -> (Slot, Option<&mut lapin::Consumer>) {
    match source {
        Some(s) => (s.slot, s.state.consumption_mut().map(|c| &mut c.consumer)),
        None => (Slot::Unroutable, None),
    }
}
