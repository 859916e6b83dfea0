//! One consumed queue: its channel, consumer and pending-job window, and the small helpers
//! around a delivery (waiting for the next one, acking, reading its properties).

use std::time::Instant;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::{Channel, Consumer};
use tracing::warn;

use jobs::Priority;

use super::{Incoming, QueueKind};
use crate::amqp::{SOURCE_HEADER, header_str, prop_str, published_at};
use crate::store::JobSource;

/// The pending-job window of one (namespace, priority).
#[derive(Debug)]
pub(super) struct Window {
    pub(super) max: u64,
    /// Pending jobs as last counted, plus what this worker added since.
    pub(super) pending: u64,
    pub(super) checked: Instant,
}

impl Window {
    pub(super) fn has_room(&self) -> bool {
        self.pending < self.max
    }

    pub(super) fn room(&self) -> u64 {
        self.max.saturating_sub(self.pending)
    }
}

/// Which queue of a worker a source is: a namespace's high or normal queue, or the
/// unroutable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    High,
    Normal,
    Unroutable,
}

/// A queue's consumer while it exists: its channel (one per consumer, closed with it), the
/// prefetch it was started with and when it last delivered.
#[derive(Debug)]
pub(super) struct Consumption {
    pub(super) channel: Channel,
    pub(super) consumer: Consumer,
    pub(super) prefetch: u16,
    pub(super) last_delivery: Instant,
}

/// What a queue's consumer is doing.
#[derive(Debug)]
pub(super) enum State {
    /// No consumer: not started yet, or the window was full and the backlog stays in RabbitMQ.
    Idle,
    /// Consuming; each committed batch is acked at once.
    Consuming(Consumption),
    /// The window filled up while consuming: batches are still stored, but their acks are held
    /// (the last stored delivery and how many are unacked). Once `held_count` reaches the
    /// prefetch the broker cannot send more, so the consumer is cancelled with nothing in
    /// flight (a cancelled quorum-queue consumer's in-flight deliveries would otherwise come
    /// back out of order), then the held are acked. `dry_since`: when the queue was seen with
    /// nothing ready (then nothing is in flight either).
    Holding {
        consumption: Consumption,
        held: Box<Delivery>,
        held_count: usize,
        dry_since: Option<Instant>,
    },
    /// `basic.cancel` sent: what is still buffered is taken in (and acked) until the stream
    /// ends.
    Cancelling {
        consumption: Consumption,
        since: Instant,
    },
}

impl State {
    /// The consumer, in every state that has one.
    pub(super) fn consumption(&self) -> Option<&Consumption> {
        match self {
            State::Idle => None,
            State::Consuming(c)
            | State::Holding { consumption: c, .. }
            | State::Cancelling { consumption: c, .. } => Some(c),
        }
    }

    /// [`State::consumption`], mutably.
    pub(super) fn consumption_mut(&mut self) -> Option<&mut Consumption> {
        match self {
            State::Idle => None,
            State::Consuming(c)
            | State::Holding { consumption: c, .. }
            | State::Cancelling { consumption: c, .. } => Some(c),
        }
    }

    /// Consuming or holding: a consumer the broker still sends to.
    pub(super) fn is_receiving(&self) -> bool {
        matches!(self, State::Consuming(_) | State::Holding { .. })
    }
}

/// One consumed queue.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) slot: Slot,
    pub(super) kind: QueueKind,
    pub(super) queue: String,
    pub(super) window: Option<Window>,
    pub(super) state: State,
}

impl Source {
    /// A queue not consumed yet.
    pub(super) fn new(kind: QueueKind, queue: String, window: Option<Window>) -> Self {
        let slot = match &kind {
            QueueKind::Work {
                priority: Priority::High,
                ..
            } => Slot::High,
            QueueKind::Work {
                priority: Priority::Normal,
                ..
            } => Slot::Normal,
            QueueKind::Unroutable => Slot::Unroutable,
        };
        Self {
            slot,
            kind,
            queue,
            window,
            state: State::Idle,
        }
    }

    /// The window is full (a queue without a window never is).
    pub(super) fn window_full(&self) -> bool {
        self.window.as_ref().is_some_and(|w| !w.has_room())
    }
}

pub(super) async fn next_delivery(
    consumer: Option<&mut Consumer>,
) -> Option<lapin::Result<Delivery>> {
    match consumer {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Acks (with `multiple`: every earlier delivery of the channel too). A failed ack is not an
/// error: the broker redelivers and the store deduplicates.
pub(super) async fn ack(delivery: &Delivery, multiple: bool) {
    match delivery.acker.ack(BasicAckOptions { multiple }).await {
        Ok(true) => {}
        Ok(false) => warn!(
            delivery_tag = delivery.delivery_tag,
            "ack not sent: the channel closed after the commit; the broker will redeliver and the store ignore the copies"
        ),
        Err(e) => {
            warn!(error = %e, "ack failed; the broker will redeliver and the store ignore the copies")
        }
    }
}

pub(super) fn incoming(d: &Delivery) -> Incoming<'_> {
    let p = &d.properties;
    Incoming {
        body: &d.data,
        routing_key: d.routing_key.as_str(),
        redelivered: d.redelivered,
        message_id: prop_str(p.message_id()),
        content_type: prop_str(p.content_type()),
        content_encoding: prop_str(p.content_encoding()),
        reply_to: prop_str(p.reply_to()),
        correlation_id: prop_str(p.correlation_id()),
        published_at: published_at(p),
        source: match header_str(p, SOURCE_HEADER).as_deref() {
            Some("cron") => JobSource::Cron,
            _ => JobSource::Amqp,
        },
    }
}
