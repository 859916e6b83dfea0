//! After a batch: acking or holding acks while a window is full, stopping and restarting
//! consumers, recounting windows, and the broker's own interruptions (a consumer cancelled
//! by the broker, a connection recovered). Every change of a queue's [`State`] is here or in
//! `ensure_consumers`.

use std::time::Instant;

use lapin::options::BasicCancelOptions;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{CANCEL_GRACE, Worker};
use crate::error::{Error, Result};
use crate::intake::QueueKind;
use crate::intake::source::{Slot, State, ack};
use crate::metrics::QueueLabels;
use crate::outage::until_ok;
use crate::topology::Topology;
use lapin::message::Delivery;

impl Worker {
    /// After a committed batch: ack it — or, when the window is full, hold its ack (see
    /// [`State::Holding`]) and cancel the consumer once nothing can be in flight. For a high
    /// batch, ask whether more high messages wait (normal holds back while they do).
    pub(super) async fn settle(
        &mut self,
        slot: Slot,
        mut batch: Vec<Delivery>,
        token: &CancellationToken,
    ) -> Result<()> {
        let n = batch.len();
        let Some(last) = batch.pop() else {
            return Ok(());
        };
        let estimate_full = self
            .source(slot)
            .is_some_and(|s| !matches!(s.state, State::Holding { .. }) && s.window_full());
        if estimate_full {
            // The estimate only grows; count for real before holding.
            self.count_window(slot, token, false).await?;
        }
        let Some(src) = self.source_mut(slot) else {
            return Ok(());
        };
        let full = src.window_full();
        let drained = match std::mem::replace(&mut src.state, State::Idle) {
            State::Consuming(consumption) if full => {
                info!(
                    queue = src.queue,
                    "pending window full; the backlog stays in RabbitMQ"
                );
                let drained = n >= usize::from(consumption.prefetch);
                src.state = State::Holding {
                    consumption,
                    held: Box::new(last),
                    held_count: n,
                    dry_since: None,
                };
                Some(drained)
            }
            State::Holding {
                consumption,
                held_count,
                dry_since,
                ..
            } => {
                let held_count = held_count + n;
                let drained = held_count >= usize::from(consumption.prefetch);
                src.state = State::Holding {
                    consumption,
                    held: Box::new(last),
                    held_count,
                    dry_since,
                };
                Some(drained)
            }
            other => {
                src.state = other;
                ack(&last, true).await;
                None
            }
        };
        if let Some(drained) = drained {
            self.window_gauge(slot, true);
            if drained {
                self.stop_consumer(slot).await?;
            }
        }
        if slot == Slot::High {
            self.high_backlog = self.high_ready().await > 0;
        }
        Ok(())
    }

    /// Cancels a consumer the broker still sends to, and acks what it held (nothing is in
    /// flight when this is called).
    pub(super) async fn stop_consumer(&mut self, slot: Slot) -> Result<()> {
        let Some(src) = self.source_mut(slot) else {
            return Ok(());
        };
        if !src.state.is_receiving() {
            return Ok(());
        }
        if let Some(c) = src.state.consumption() {
            c.channel
                .basic_cancel(c.consumer.tag(), BasicCancelOptions::default())
                .await?;
        }
        src.state = match std::mem::replace(&mut src.state, State::Idle) {
            State::Consuming(consumption) => State::Cancelling {
                consumption,
                since: Instant::now(),
            },
            State::Holding {
                consumption, held, ..
            } => {
                ack(&held, true).await;
                State::Cancelling {
                    consumption,
                    since: Instant::now(),
                }
            }
            other => other,
        };
        Ok(())
    }

    /// Recounts a window from the store. `wait` retries through an outage (start-up);
    /// otherwise a failure keeps the old estimate until the next tick.
    pub(super) async fn count_window(
        &mut self,
        slot: Slot,
        token: &CancellationToken,
        wait: bool,
    ) -> Result<()> {
        let Some(src) = self.source(slot) else {
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
        let store = self.session.store.clone();
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
                if let Some(w) = self.source_mut(slot).and_then(|s| s.window.as_mut()) {
                    w.pending = n;
                    w.checked = Instant::now();
                }
                Ok(())
            }
            Err(Error::Cancelled) => Ok(()),
            Err(e) if !wait && e.is_retryable() => {
                self.session.store.metrics().error("intake", &e);
                debug!(error = %e, "window count failed; keeping the estimate");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn on_tick(&mut self, token: &CancellationToken) -> Result<()> {
        let poll = self.session.config.poll_interval;
        for slot in self.slots() {
            let stuck = self.source(slot).is_some_and(|s| {
                matches!(s.state, State::Cancelling { since, .. } if since.elapsed() >= CANCEL_GRACE)
            });
            if stuck {
                warn!("a cancelled consumer did not end; closing its channel");
                self.consumer_ended(slot).await;
            }
            let stale = self.source(slot).is_some_and(|s| {
                s.window
                    .as_ref()
                    .is_some_and(|w| !w.has_room() && w.checked.elapsed() >= poll)
            });
            if stale {
                self.count_window(slot, token, false).await?;
            }
        }
        for slot in self.slots() {
            self.check_holding(slot).await?;
        }
        if self.high_backlog {
            self.high_backlog = self.high_ready().await > 0;
        }
        Ok(())
    }

    /// A holding consumer that receives nothing: the queue ran dry (or another replica is
    /// the active consumer). Once the broker has shown nothing ready for a whole poll
    /// interval after the last delivery, nothing is in flight either: cancel and ack.
    async fn check_holding(&mut self, slot: Slot) -> Result<()> {
        let poll = self.session.config.poll_interval;
        let Some(src) = self.source(slot) else {
            return Ok(());
        };
        let State::Holding { consumption, .. } = &src.state else {
            return Ok(());
        };
        if consumption.last_delivery.elapsed() < poll {
            return Ok(());
        }
        let queue = src.queue.clone();
        let ready = self.queue_ready(&queue).await;
        let Some(State::Holding {
            consumption,
            dry_since,
            ..
        }) = self.source_mut(slot).map(|s| &mut s.state)
        else {
            return Ok(());
        };
        let stop = match (ready, *dry_since) {
            (Some(0), Some(since)) => since.elapsed() >= poll,
            (Some(0), None) => {
                *dry_since = Some(Instant::now());
                false
            }
            // Messages ready but none delivered to us for long: give up holding.
            _ => consumption.last_delivery.elapsed() >= CANCEL_GRACE,
        };
        if stop {
            self.stop_consumer(slot).await?;
        }
        Ok(())
    }

    /// Ready messages in the high queue (0 when it is not being consumed, or on error: never
    /// hold normal back on a guess).
    async fn high_ready(&mut self) -> u32 {
        let Some(high) = self.source(Slot::High).filter(|s| s.state.is_receiving()) else {
            return 0;
        };
        let queue = high.queue.clone();
        self.queue_ready(&queue).await.unwrap_or(0)
    }

    /// Ready messages in a queue (a passive declare on the control channel); `None` on error.
    async fn queue_ready(&mut self, queue: &str) -> Option<u32> {
        let channel = match &self.control {
            Some(c) if c.status().connected() => c.clone(),
            _ => match self.session.connection.create_channel().await {
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
    pub(super) async fn consumer_ended(&mut self, slot: Slot) {
        let Some(src) = self.source_mut(slot) else {
            return;
        };
        let ours = matches!(src.state, State::Cancelling { .. });
        debug!(queue = src.queue, ours, "consumer ended");
        if !ours {
            warn!(
                queue = src.queue,
                "the broker cancelled our consumer; consuming again"
            );
        }
        let consumption = match std::mem::replace(&mut src.state, State::Idle) {
            State::Idle => None,
            State::Holding {
                consumption, held, ..
            } => {
                ack(&held, true).await;
                Some(consumption)
            }
            State::Consuming(consumption) | State::Cancelling { consumption, .. } => {
                Some(consumption)
            }
        };
        if let Some(c) = consumption
            && let Err(e) = c.channel.close(200, "consumer done".into()).await
        {
            debug!(error = %e, "closing a consumer channel");
        }
    }

    /// A consumer's stream failed: the connection is gone (the intake's has no recovery), so
    /// the session ends and the supervisor starts a new one. Nothing held was acked; the broker
    /// redelivers it and the store ignores the copies.
    pub(super) fn stream_error(&self, slot: Slot, error: lapin::Error) -> Error {
        if let Some(src) = self.source(slot) {
            warn!(queue = src.queue, error = %error, "consumer error; the session ends");
        }
        Error::Amqp(error)
    }

    pub(super) fn window_gauge(&self, slot: Slot, full: bool) {
        let Some(QueueKind::Work {
            namespace,
            priority,
        }) = self.source(slot).map(|s| &s.kind)
        else {
            return;
        };
        self.session
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
