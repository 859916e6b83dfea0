//! One consumed queue: its channel, consumer and pending-job window, and the small helpers
//! around a delivery (waiting for the next one, acking, reading its properties).

use std::time::Instant;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use lapin::{Channel, Consumer};
use tracing::warn;

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

/// One consumed queue.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) kind: QueueKind,
    pub(super) queue: String,
    pub(super) channel: Option<Channel>,
    pub(super) consumer: Option<Consumer>,
    /// When `basic.cancel` was sent: take in what is still buffered until the stream ends.
    pub(super) cancelling: Option<Instant>,
    pub(super) window: Option<Window>,
    /// Prefetch of the current consumer.
    pub(super) prefetch: u16,
    /// While the window is full, acks are held: the last stored delivery and how many stored
    /// deliveries are unacked. Once `held_count == prefetch` the broker cannot send more, so
    /// the consumer is cancelled with nothing in flight (a cancelled quorum-queue consumer's
    /// in-flight deliveries would otherwise come back out of order), then the held are acked.
    pub(super) held: Option<Delivery>,
    pub(super) held_count: usize,
    /// When the last delivery arrived.
    pub(super) last_delivery: Instant,
    /// Holding, and the queue was seen with nothing ready at this time.
    pub(super) dry_since: Option<Instant>,
}

impl Source {
    /// A queue not consumed yet.
    pub(super) fn new(kind: QueueKind, queue: String, window: Option<Window>) -> Self {
        Self {
            kind,
            queue,
            channel: None,
            consumer: None,
            cancelling: None,
            window,
            prefetch: 1,
            held: None,
            held_count: 0,
            last_delivery: Instant::now(),
            dry_since: None,
        }
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
