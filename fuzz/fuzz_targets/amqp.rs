//! Any AMQP delivery through the intake's classification (`queues::intake::fuzzing`): the
//! first four bytes choose the queue, content type, message id and content encoding from
//! values publishers really send, the rest is the body. A stored job always belongs to a
//! served namespace and to the queue it came from, carries the message id's UUID when one was
//! given, and came in plain JSON; a dead letter always says what was wrong.
#![no_main]

mod common;

use jobs::Priority;
use libfuzzer_sys::fuzz_target;
use queues::Names;
use queues::intake::fuzzing::{Delivery, classify};
use queues::store::IntakeItem;

const MESSAGE_ID: &str = "019ab0c4-5e6f-7a8b-9c0d-1e2f3a4b5c6d";

fuzz_target!(|data: &[u8]| {
    let (head, body) = data.split_at(data.len().min(4));
    let pick = |i: usize, n: usize| head.get(i).map_or(0, |b| usize::from(*b) % n);
    let queue = [
        Some(("team-a", Priority::Normal)),
        Some(("team-a", Priority::High)),
        Some(("team-b", Priority::Normal)),
        Some(("nobody", Priority::High)),
        None,
    ][pick(0, 5)];
    let content_type = [
        None,
        Some("application/json"),
        Some("application/json; charset=utf-8"),
        Some("text/plain"),
        Some("APPLICATION/JSON"),
    ][pick(1, 5)];
    let message_id = [
        None,
        Some(MESSAGE_ID),
        Some("order-17"),
        Some(""),
        Some("00000000-0000-0000-0000-000000000000"),
    ][pick(2, 5)];
    let content_encoding = [None, Some(""), Some("gzip")][pick(3, 3)];
    let routing_key = match queue {
        Some((ns, p)) => format!("{ns}.{p}"),
        None => "team-a.urgent".to_owned(),
    };
    let delivery = Delivery {
        body,
        routing_key: &routing_key,
        message_id: message_id.map(str::to_owned),
        content_type: content_type.map(str::to_owned),
        content_encoding: content_encoding.map(str::to_owned),
        reply_to: None,
        queue: queue.map(|(ns, p)| (ns.to_owned(), p)),
    };
    let names = Names::new("fuzz").expect("a valid prefix");
    match classify(&delivery, &common::CATALOG, &names) {
        IntakeItem::Job(j) => {
            let job = &j.job;
            assert!(
                common::CATALOG.namespace(&job.namespace).is_some(),
                "unserved namespace stored"
            );
            let (ns, priority) = queue.expect("nothing from the unroutable queue is stored");
            assert_eq!(
                (job.namespace.as_str(), job.priority),
                (ns, priority),
                "stored off its queue"
            );
            if message_id == Some(MESSAGE_ID) {
                assert_eq!(
                    job.id.to_string(),
                    MESSAGE_ID,
                    "the message id's UUID was not kept"
                );
            }
            assert!(
                content_type.is_none_or(|c| c.to_ascii_lowercase().starts_with("application/json"))
            );
            assert!(
                content_encoding.is_none_or(str::is_empty),
                "an encoded body was stored"
            );
        }
        IntakeItem::Dead(d) => {
            assert!(
                !d.problems.is_empty(),
                "a dead letter without problems: {}",
                d.message
            );
            assert!(!d.message.is_empty());
        }
    }
});
