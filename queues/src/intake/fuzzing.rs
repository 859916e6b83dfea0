//! The intake's classification of one delivery, opened to the fuzz targets (`fuzz/`) behind
//! the `fuzzing` feature: the rules stay crate-private for everyone else, and the fuzzer runs
//! exactly the code a RabbitMQ message meets, without a broker.

use jobs::catalog::Catalog;
use jobs::model::Priority;

use super::classify::{Incoming, QueueKind, classify as classify_incoming};
use crate::store::IntakeItem;
use crate::topology::Names;

/// One delivery's parts (what the worker reads from a lapin `Delivery`).
#[derive(Debug, Clone, Default)]
pub struct Delivery<'a> {
    /// Message body.
    pub body: &'a [u8],
    /// Routing key it was published with.
    pub routing_key: &'a str,
    /// AMQP `message_id`.
    pub message_id: Option<String>,
    /// AMQP `content_type`.
    pub content_type: Option<String>,
    /// AMQP `content_encoding`.
    pub content_encoding: Option<String>,
    /// AMQP `reply_to`.
    pub reply_to: Option<String>,
    /// The work queue it came from, `None` for the unroutable queue.
    pub queue: Option<(String, Priority)>,
}

/// The job to store or the dead letter to record.
pub fn classify(delivery: &Delivery<'_>, catalog: &Catalog, names: &Names) -> IntakeItem {
    let incoming = Incoming {
        body: delivery.body,
        routing_key: delivery.routing_key,
        message_id: delivery.message_id.clone(),
        content_type: delivery.content_type.clone(),
        content_encoding: delivery.content_encoding.clone(),
        reply_to: delivery.reply_to.clone(),
        ..Incoming::default()
    };
    let queue = match &delivery.queue {
        Some((namespace, priority)) => QueueKind::Work {
            namespace: namespace.clone(),
            priority: *priority,
        },
        None => QueueKind::Unroutable,
    };
    classify_incoming(&incoming, &queue, catalog, names)
}
