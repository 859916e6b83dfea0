//! One intake worker: a namespace's high and normal queues (or the unroutable queue), their
//! consumers, windows and batches. See the parent module for the behaviour.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::source::{Source, Window, ack, incoming, next_delivery};
use super::{IntakeConfig, QueueKind, classify};
use crate::error::{Error, Result};
use crate::metrics::QueueLabels;
use crate::outage::until_ok;
use crate::store::{IntakeItem, IntakeResult, JobStore};
use crate::topology::{Names, Topology, short};
use jobs::catalog::Catalog;
use jobs::model::Priority;

/// How long a cancelled consumer may take to end before its channel is closed anyway.
const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What every worker of a session shares.
#[derive(Debug)]
pub(crate) struct Shared {
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
    Delivery(usize, Option<lapin::Result<Box<Delivery>>>),
    Tick,
}

/// A namespace's (or the unroutable queue's) consumer loop.
#[derive(Debug)]
pub(crate) struct Worker {
    shared: Arc<Shared>,
    label: String,
    sources: Vec<Source>,
    control: Option<Channel>,
    /// The high queue had messages ready at the last look: normal waits.
    high_backlog: bool,
}

impl Worker {
    /// The worker of `namespace`: its high queue first, then normal.
    pub(crate) fn namespace(shared: Arc<Shared>, namespace: &str) -> Self {
        let max = u64::from(
            shared
                .catalog
                .namespace(namespace)
                .and_then(|n| n.max_pending)
                .unwrap_or(shared.config.default_max_pending)
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
                    shared.names.queue(namespace, priority),
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
            shared,
            sources,
            control: None,
            high_backlog: false,
        }
    }

    /// The worker of `{p}.unroutable` (everything there is dead-lettered; no window).
    pub(crate) fn unroutable(shared: Arc<Shared>) -> Self {
        let queue = shared.names.unroutable();
        Self {
            label: "unroutable".into(),
            sources: vec![Source::new(QueueKind::Unroutable, queue, None)],
            shared,
            control: None,
            high_backlog: false,
        }
    }

    /// Consumes until cancelled; an error means the session must restart.
    pub(crate) async fn run(mut self, token: CancellationToken) -> Result<()> {
        let span = info_span!("intake", queues = %self.label);
        async move {
            for i in 0..self.sources.len() {
                self.count_window(i, &token, true).await?;
            }
            let mut tick = tokio::time::interval(self.shared.config.poll_interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                self.ensure_consumers().await?;
                let hold_second = self.high_backlog;
                let mut consumers = self.sources.iter_mut().map(|s| s.consumer.as_mut());
                let first = consumers.next().flatten();
                let second = consumers.next().flatten();
                let event = tokio::select! {
                    biased;
                    _ = token.cancelled() => break,
                    d = next_delivery(first) => Event::Delivery(0, d.map(|r| r.map(Box::new))),
                    d = next_delivery(second), if !hold_second => Event::Delivery(1, d.map(|r| r.map(Box::new))),
                    _ = tick.tick() => Event::Tick,
                };
                match event {
                    Event::Tick => self.on_tick(&token).await?,
                    Event::Delivery(i, None) => self.consumer_ended(i).await,
                    Event::Delivery(i, Some(Err(e))) => self.stream_error(i, e).await?,
                    Event::Delivery(i, Some(Ok(first))) => {
                        let (batch, end) = self.collect(i, *first);
                        self.process(i, batch, &token).await?;
                        match end {
                            None => {}
                            Some(StreamEnd::Ended) => self.consumer_ended(i).await,
                            Some(StreamEnd::Error(e)) => self.stream_error(i, e).await?,
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

    /// Starts a consumer on every queue that has room and none.
    async fn ensure_consumers(&mut self) -> Result<()> {
        for i in 0..self.sources.len() {
            let Some(src) = self.sources.get_mut(i) else {
                continue;
            };
            if src.consumer.is_some() {
                continue;
            }
            let room = src.window.as_ref().map_or(u64::MAX, Window::room);
            if room == 0 {
                continue;
            }
            let channel = match &src.channel {
                Some(c) if c.status().connected() => c.clone(),
                _ => {
                    let c = self.shared.connection.create_channel().await?;
                    src.channel = Some(c.clone());
                    c
                }
            };
            let prefetch = u16::try_from(room.min(u64::from(self.shared.config.prefetch)))
                .unwrap_or(self.shared.config.prefetch)
                .max(1);
            // Prefetch applies to consumers created after it (never global: quorum queues
            // refuse global QoS and it would close the connection).
            channel
                .basic_qos(prefetch, BasicQosOptions { global: false })
                .await?;
            let consumer = channel
                .basic_consume(
                    short(&src.queue)?,
                    "".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            debug!(queue = src.queue, prefetch, "consuming");
            src.consumer = Some(consumer);
            src.cancelling = None;
            src.prefetch = prefetch;
            src.last_delivery = Instant::now();
            self.window_gauge(i, false);
        }
        Ok(())
    }

    /// Takes whatever else is already buffered on the same queue, up to `batch_max` — and,
    /// while the consumer runs, no more than the window's room, so a full window is noticed
    /// early. An error or the end of the stream met on the way is returned too: the stream
    /// yields it only once.
    fn collect(&mut self, i: usize, first: Delivery) -> (Vec<Delivery>, Option<StreamEnd>) {
        let mut max = self.shared.config.batch_max.max(1);
        let mut batch = vec![first];
        let Some(src) = self.sources.get_mut(i) else {
            return (batch, None);
        };
        src.last_delivery = Instant::now();
        src.dry_since = None;
        if let (None, None, Some(w)) = (src.cancelling, &src.held, &src.window) {
            max = max.min(usize::try_from(w.room()).unwrap_or(usize::MAX).max(1));
        }
        let Some(consumer) = src.consumer.as_mut() else {
            return (batch, None);
        };
        while batch.len() < max {
            match consumer.next().now_or_never() {
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
        i: usize,
        batch: Vec<Delivery>,
        token: &CancellationToken,
    ) -> Result<()> {
        let Some(src) = self.sources.get(i) else {
            return Ok(());
        };
        let kind = src.kind.clone();
        let shared = self.shared.clone();
        let items: Vec<IntakeItem> = batch
            .iter()
            .map(|d| classify(&incoming(d), &kind, &shared.catalog, &shared.names))
            .collect();
        let store = &shared.store;
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
            Err(e) => return self.isolate(i, batch, items, e, token).await,
        };
        metrics
            .intake_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.intake_batch_size.observe(batch.len() as f64);

        if shared.config.fault.take_crash() {
            return Err(Error::Crashed(
                "fault injection: crashed after commit, before ack".into(),
            ));
        }
        self.account(i, &items, &results);
        self.settle(i, batch, token).await
    }

    /// A batch the store refuses for good: store each message alone, so one poison message
    /// cannot block the queue. A message that still fails is requeued (explicitly); the
    /// queue's delivery limit then dead-letters it to `{p}.{ns}.dead` if it keeps failing.
    async fn isolate(
        &mut self,
        i: usize,
        batch: Vec<Delivery>,
        items: Vec<IntakeItem>,
        error: Error,
        token: &CancellationToken,
    ) -> Result<()> {
        warn!(error = %error, size = batch.len(), "the store refused a batch; storing its messages one by one");
        let shared = self.shared.clone();
        let store = &shared.store;
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
                    self.account(i, one, &results);
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
        self.count_window(i, token, false).await?;
        let full = self
            .sources
            .get(i)
            .and_then(|s| s.window.as_ref())
            .is_some_and(|w| !w.has_room());
        if full {
            self.stop_consumer(i).await?;
        }
        Ok(())
    }

    /// Metrics and the window after a committed batch.
    fn account(&mut self, i: usize, items: &[IntakeItem], results: &[IntakeResult]) {
        let metrics = self.shared.store.metrics().clone();
        let now = Utc::now();
        let mut added = 0u64;
        for (item, result) in items.iter().zip(results) {
            match (item, result) {
                (IntakeItem::Job(j), IntakeResult::Accepted) => {
                    added += 1;
                    metrics.intake(&j.job.namespace, Some(j.job.priority), "accepted");
                    if let Some(at) = j.published_at {
                        let waited = (now - at).num_milliseconds() as f64 / 1000.0;
                        metrics.wait(&j.job.namespace, j.job.priority.as_str(), "broker", waited);
                    }
                    debug!(job_id = %j.job.id, namespace = j.job.namespace, "accepted");
                }
                (IntakeItem::Job(j), _) => {
                    metrics.intake(&j.job.namespace, Some(j.job.priority), "duplicate");
                    debug!(job_id = %j.job.id, "duplicate ignored");
                }
                (IntakeItem::Dead(d), _) => {
                    let priority = d.priority.as_deref().and_then(|p| p.parse().ok());
                    metrics.intake(
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
        if let Some(w) = self.sources.get_mut(i).and_then(|s| s.window.as_mut()) {
            w.pending = w.pending.saturating_add(added);
        }
    }

    /// After a committed batch: ack it — or, when the window is full, hold its ack (see
    /// `Source::held`) and cancel the consumer once nothing can be in flight. For a high
    /// batch, ask whether more high messages wait (normal holds back while they do).
    async fn settle(
        &mut self,
        i: usize,
        mut batch: Vec<Delivery>,
        token: &CancellationToken,
    ) -> Result<()> {
        let n = batch.len();
        let Some(last) = batch.pop() else {
            return Ok(());
        };
        let estimate_full = self
            .sources
            .get(i)
            .is_some_and(|s| s.held.is_none() && s.window.as_ref().is_some_and(|w| !w.has_room()));
        if estimate_full {
            // The estimate only grows; count for real before holding.
            self.count_window(i, token, false).await?;
        }
        let Some(src) = self.sources.get_mut(i) else {
            return Ok(());
        };
        let full = src.window.as_ref().is_some_and(|w| !w.has_room());
        let hold =
            src.held.is_some() || (full && src.consumer.is_some() && src.cancelling.is_none());
        if hold {
            if src.held.is_none() {
                info!(
                    queue = src.queue,
                    "pending window full; the backlog stays in RabbitMQ"
                );
            }
            src.held = Some(last);
            src.held_count += n;
            let drained = src.held_count >= usize::from(src.prefetch);
            self.window_gauge(i, true);
            if drained {
                self.stop_consumer(i).await?;
            }
        } else {
            ack(&last, true).await;
        }
        if i == 0 && self.sources.len() > 1 {
            self.high_backlog = self.high_ready().await > 0;
        }
        Ok(())
    }

    /// Cancels a holding consumer (nothing in flight) and acks what it held.
    async fn stop_consumer(&mut self, i: usize) -> Result<()> {
        let Some(src) = self.sources.get_mut(i) else {
            return Ok(());
        };
        if let (Some(consumer), Some(channel), None) = (&src.consumer, &src.channel, src.cancelling)
        {
            channel
                .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                .await?;
            src.cancelling = Some(Instant::now());
        }
        if let Some(held) = src.held.take() {
            ack(&held, true).await;
        }
        src.held_count = 0;
        src.dry_since = None;
        Ok(())
    }

    /// Recounts a window from the store. `wait` retries through an outage (start-up);
    /// otherwise a failure keeps the old estimate until the next tick.
    async fn count_window(
        &mut self,
        i: usize,
        token: &CancellationToken,
        wait: bool,
    ) -> Result<()> {
        let Some(src) = self.sources.get(i) else {
            return Ok(());
        };
        let (
            Some(window),
            QueueKind::Work {
                namespace,
                priority,
            },
        ) = (&src.window, &src.kind)
        else {
            return Ok(());
        };
        let cap = u32::try_from(window.max).unwrap_or(u32::MAX);
        let store = self.shared.store.clone();
        let count = if wait {
            until_ok(
                token,
                "window count",
                |e| store.metrics().error("intake", e),
                || store.pending_count(namespace, *priority, cap),
            )
            .await
        } else {
            store.pending_count(namespace, *priority, cap).await
        };
        match count {
            Ok(n) => {
                if let Some(w) = self.sources.get_mut(i).and_then(|s| s.window.as_mut()) {
                    w.pending = n;
                    w.checked = Instant::now();
                }
                Ok(())
            }
            Err(Error::Cancelled) => Ok(()),
            Err(e) if !wait && e.is_retryable() => {
                self.shared.store.metrics().error("intake", &e);
                debug!(error = %e, "window count failed; keeping the estimate");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn on_tick(&mut self, token: &CancellationToken) -> Result<()> {
        for i in 0..self.sources.len() {
            let stuck = self
                .sources
                .get(i)
                .and_then(|s| s.cancelling)
                .is_some_and(|since| since.elapsed() >= CANCEL_GRACE);
            if stuck {
                warn!("a cancelled consumer did not end; closing its channel");
                self.consumer_ended(i).await;
            }
            let stale = self.sources.get(i).is_some_and(|s| {
                s.window.as_ref().is_some_and(|w| {
                    !w.has_room() && w.checked.elapsed() >= self.shared.config.poll_interval
                })
            });
            if stale {
                self.count_window(i, token, false).await?;
            }
        }
        for i in 0..self.sources.len() {
            self.check_holding(i).await?;
        }
        if self.high_backlog {
            self.high_backlog = self.high_ready().await > 0;
        }
        Ok(())
    }

    /// A holding consumer that receives nothing: the queue ran dry (or another replica is
    /// the active consumer). Once the broker has shown nothing ready for a whole poll
    /// interval after the last delivery, nothing is in flight either: cancel and ack.
    async fn check_holding(&mut self, i: usize) -> Result<()> {
        let poll = self.shared.config.poll_interval;
        let Some(src) = self.sources.get(i) else {
            return Ok(());
        };
        if src.held.is_none() || src.last_delivery.elapsed() < poll {
            return Ok(());
        }
        let queue = src.queue.clone();
        let ready = self.queue_ready(&queue).await;
        let Some(src) = self.sources.get_mut(i) else {
            return Ok(());
        };
        let stop = match (ready, src.dry_since) {
            (Some(0), Some(since)) => since.elapsed() >= poll,
            (Some(0), None) => {
                src.dry_since = Some(Instant::now());
                false
            }
            // Messages ready but none delivered to us for long: give up holding.
            _ => src.last_delivery.elapsed() >= CANCEL_GRACE,
        };
        if stop {
            self.stop_consumer(i).await?;
        }
        Ok(())
    }

    /// Ready messages in the high queue (0 when it is not being consumed, or on error: never
    /// hold normal back on a guess).
    async fn high_ready(&mut self) -> u32 {
        let Some(high) = self.sources.first() else {
            return 0;
        };
        if high.consumer.is_none() || high.cancelling.is_some() {
            return 0;
        }
        let queue = high.queue.clone();
        self.queue_ready(&queue).await.unwrap_or(0)
    }

    /// Ready messages in a queue (a passive declare on the control channel); `None` on error.
    async fn queue_ready(&mut self, queue: &str) -> Option<u32> {
        let channel = match &self.control {
            Some(c) if c.status().connected() => c.clone(),
            _ => match self.shared.connection.create_channel().await {
                Ok(c) => {
                    self.control = Some(c.clone());
                    c
                }
                Err(e) => {
                    debug!(error = %e, "no control channel");
                    return None;
                }
            },
        };
        match Topology::ready_messages(&channel, queue).await {
            Ok(n) => Some(n),
            Err(e) => {
                debug!(error = %e, "passive declare failed");
                self.control = None;
                None
            }
        }
    }

    /// The stream ended: after our cancel (the window is full), or the broker cancelled us
    /// (queue deleted, failover). Either way the channel is closed too: RabbitMQ may still
    /// send deliveries for a cancelled quorum-queue consumer after `cancel-ok`, which lapin
    /// drops; closing returns them to the queue (otherwise they stay unacked, and with
    /// single-active-consumer no new consumer would ever become active).
    async fn consumer_ended(&mut self, i: usize) {
        let Some(src) = self.sources.get_mut(i) else {
            return;
        };
        debug!(
            queue = src.queue,
            ours = src.cancelling.is_some(),
            "consumer ended"
        );
        if src.cancelling.is_none() {
            warn!(
                queue = src.queue,
                "the broker cancelled our consumer; consuming again"
            );
        }
        if let Some(held) = src.held.take() {
            ack(&held, true).await;
        }
        src.held_count = 0;
        src.dry_since = None;
        src.consumer = None;
        src.cancelling = None;
        if let Some(channel) = src.channel.take()
            && let Err(e) = channel.close(200, "consumer done".into()).await
        {
            debug!(error = %e, "closing a consumer channel");
        }
    }

    async fn stream_error(&mut self, i: usize, error: lapin::Error) -> Result<()> {
        let Some(src) = self.sources.get_mut(i) else {
            return Ok(());
        };
        warn!(queue = src.queue, error = %error, "consumer error; waiting for the connection to recover");
        let Some(channel) = src.channel.clone() else {
            return Err(Error::Amqp(error));
        };
        match channel.wait_for_recovery(error).await {
            Ok(()) => {
                // Acks of deliveries from before the recovery fail: the broker redelivers
                // them and the store ignores the copies.
                src.held = None;
                src.held_count = 0;
                info!(queue = src.queue, "connection recovered; consuming again");
                Ok(())
            }
            Err(e) => Err(Error::Amqp(e)),
        }
    }

    fn window_gauge(&self, i: usize, full: bool) {
        let Some(QueueKind::Work {
            namespace,
            priority,
        }) = self.sources.get(i).map(|s| &s.kind)
        else {
            return;
        };
        self.shared
            .store
            .metrics()
            .intake_window_full
            .get_or_create(&QueueLabels {
                namespace: namespace.clone(),
                priority: priority.as_str().to_owned(),
            })
            .set(i64::from(full));
    }
}
