//! The RabbitMQ topology, declared idempotently from the catalog, and the names in it.
//!
//! Everything hangs off one prefix (`orchestrator` in production; tests use a unique one so
//! they can share a broker):
//!
//! | name | kind | purpose |
//! |---|---|---|
//! | `{p}.jobs` | topic exchange, alternate-exchange `{p}.unroutable` | publishers route by `{namespace}.{priority}` |
//! | `{p}.{ns}.high`, `{p}.{ns}.normal` | quorum queues | the per-namespace FIFO intake queues |
//! | `{p}.{ns}.dead` | quorum queue | dead letters of that namespace (copies; the store is authoritative) |
//! | `{p}.unroutable` | fanout exchange + quorum queue | whatever `{p}.jobs` could not route (unknown namespace) |
//! | `{p}.dead` | quorum queue | dead letters that belong to no served namespace |
//! | `{p}.retry.{d}` | fanout exchange + quorum queue with `x-message-ttl = d` | delay tiers: a message published here comes back to `{p}.jobs` after `d` with its routing key |
//! | `{p}.events` | topic exchange | job state changes, routing key `{namespace}.{state}` |
//!
//! Intake queues are quorum queues with `x-delivery-limit` (without it RabbitMQ ≥ 3.10
//! requeues to the *back*, breaking FIFO; with it a poison message ends in `{p}.{ns}.dead`
//! instead of looping), `x-dead-letter-strategy = at-least-once` + `x-overflow =
//! reject-publish` (the only safe dead-lettering for quorum queues; publishers see a nack
//! when a queue is full), and `x-single-active-consumer` so two orchestrator replicas never
//! interleave one queue. Redeclaring with different arguments fails with 406, so changing an
//! argument means new queue names (a new prefix).

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, ExchangeKind};
use tracing::debug;

use crate::error::{Error, Result};
use jobs::catalog::Catalog;
use jobs::model::Priority;
use jobs::state::JobState;

/// Knobs of the topology. Changing any queue argument needs a new prefix (RabbitMQ refuses to
/// redeclare a queue with different arguments).
#[derive(Debug, Clone)]
pub struct TopologyConfig {
    /// Prefix of every exchange and queue name; `[A-Za-z0-9._-]`, 1–64 characters.
    pub prefix: String,
    /// `x-delivery-limit` of intake queues: deliveries (crashes, channel closes) before a
    /// message is treated as poison and dead-lettered by the broker.
    pub delivery_limit: u32,
    /// `x-max-length` of each intake queue; beyond it publishes are nacked. `None`: unbounded.
    pub max_queue_length: Option<u64>,
    /// `x-max-length` of each dead-letter queue (oldest copies dropped beyond it).
    pub dead_queue_max_length: u64,
    /// Delay tiers for [`crate::publisher::Publisher`] delayed publishes, ascending.
    pub retry_tiers: Vec<Duration>,
}

impl TopologyConfig {
    /// Production defaults for a prefix: delivery limit 20, unbounded intake queues, dead
    /// queues capped at 100,000, tiers 1s, 5s, 30s, 2m, 10m.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            delivery_limit: 20,
            max_queue_length: None,
            dead_queue_max_length: 100_000,
            retry_tiers: [1, 5, 30, 120, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}

impl Default for TopologyConfig {
    fn default() -> Self {
        Self::new("orchestrator")
    }
}

/// Every AMQP name the orchestrator uses, derived from the prefix (cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix`; refused if the prefix is empty, too long or has characters
    /// outside `[A-Za-z0-9._-]`.
    pub fn new(prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        let ok_chars = prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if prefix.is_empty() || prefix.len() > 64 || !ok_chars {
            return Err(Error::InvalidArgument(format!(
                "topology prefix {prefix:?} must be 1–64 characters of [A-Za-z0-9._-]"
            )));
        }
        Ok(Self { prefix })
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{p}.jobs`: where publishers send jobs.
    pub fn jobs_exchange(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    /// `{p}.events`: job state changes.
    pub fn events_exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// `{p}.unroutable`: the alternate exchange of `{p}.jobs`, and its queue.
    pub fn unroutable(&self) -> String {
        format!("{}.unroutable", self.prefix)
    }

    /// `{p}.dead`: dead letters of no served namespace.
    pub fn global_dead_queue(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// `{p}.{ns}.{priority}`: an intake queue.
    pub fn queue(&self, namespace: &str, priority: Priority) -> String {
        format!("{}.{namespace}.{priority}", self.prefix)
    }

    /// `{p}.{ns}.dead`: a namespace's dead-letter queue.
    pub fn dead_queue(&self, namespace: &str) -> String {
        format!("{}.{namespace}.dead", self.prefix)
    }

    /// `{namespace}.{priority}`: the routing key of a job on `{p}.jobs`.
    pub fn routing_key(namespace: &str, priority: Priority) -> String {
        format!("{namespace}.{priority}")
    }

    /// `{namespace}.{state}`: the routing key of an event on `{p}.events`.
    pub fn event_key(namespace: &str, state: JobState) -> String {
        format!("{namespace}.{state}")
    }

    /// `{p}.retry.{label}`: a delay tier's exchange and queue.
    pub fn retry_tier(&self, delay: Duration) -> String {
        format!("{}.retry.{}", self.prefix, tier_label(delay))
    }
}

/// `1s`, `2m`, `250ms`: short and stable, for queue names.
fn tier_label(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The declared (or to-be-declared) topology for a catalog.
#[derive(Debug, Clone)]
pub struct Topology {
    names: Names,
    config: TopologyConfig,
    namespaces: Vec<String>,
}

impl Topology {
    /// The topology serving every namespace of `catalog`.
    pub fn new(config: TopologyConfig, catalog: &Catalog) -> Result<Self> {
        Self::for_namespaces(config, catalog.namespace_names().map(str::to_owned))
    }

    /// The topology for explicit namespaces (a catalog is the usual source).
    pub fn for_namespaces(
        mut config: TopologyConfig,
        namespaces: impl IntoIterator<Item = String>,
    ) -> Result<Self> {
        let names = Names::new(config.prefix.clone())?;
        config.retry_tiers.sort();
        config.retry_tiers.dedup();
        if config.retry_tiers.iter().any(|d| d.is_zero()) {
            return Err(Error::InvalidArgument(
                "retry tiers must be positive".into(),
            ));
        }
        let namespaces: Vec<String> = namespaces.into_iter().collect();
        for ns in &namespaces {
            // Every name must fit an AMQP short string (255 bytes).
            short(&names.queue(ns, Priority::Normal))?;
        }
        Ok(Self {
            names,
            config,
            namespaces,
        })
    }

    /// The names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The config.
    pub fn config(&self) -> &TopologyConfig {
        &self.config
    }

    /// The served namespaces.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The smallest tier at least `delay` long (the longest tier if none is): delays are
    /// rounded *up*, never shortened, except beyond the longest tier.
    pub fn tier_for(&self, delay: Duration) -> Option<Duration> {
        let tiers = &self.config.retry_tiers;
        tiers
            .iter()
            .copied()
            .find(|t| *t >= delay)
            .or_else(|| tiers.last().copied())
    }

    /// Declares everything; safe to repeat (same arguments), so every new session calls it. On
    /// a connection with lapin's recovery, keep the channel open for the connection's life so
    /// the declarations are replayed after a broker restart.
    pub async fn declare(&self, channel: &Channel) -> Result<()> {
        let n = &self.names;
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        let unroutable = n.unroutable();
        channel
            .exchange_declare(
                short(&unroutable)?,
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let mut jobs_args = FieldTable::default();
        jobs_args.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString(LongString::from(unroutable.as_bytes())),
        );
        channel
            .exchange_declare(
                short(&n.jobs_exchange())?,
                ExchangeKind::Topic,
                durable,
                jobs_args,
            )
            .await?;
        channel
            .exchange_declare(
                short(&n.events_exchange())?,
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await?;

        let global_dead = n.global_dead_queue();
        self.declare_queue(channel, &global_dead, self.dead_queue_args())
            .await?;
        self.declare_queue(channel, &unroutable, self.intake_args(&global_dead))
            .await?;
        channel
            .queue_bind(
                short(&unroutable)?,
                short(&unroutable)?,
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;

        for ns in &self.namespaces {
            let dead = n.dead_queue(ns);
            self.declare_queue(channel, &dead, self.dead_queue_args())
                .await?;
            for priority in Priority::ALL {
                let queue = n.queue(ns, priority);
                self.declare_queue(channel, &queue, self.intake_args(&dead))
                    .await?;
                channel
                    .queue_bind(
                        short(&queue)?,
                        short(&n.jobs_exchange())?,
                        short(&Names::routing_key(ns, priority))?,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
            }
        }

        for tier in &self.config.retry_tiers {
            let name = n.retry_tier(*tier);
            channel
                .exchange_declare(
                    short(&name)?,
                    ExchangeKind::Fanout,
                    durable,
                    FieldTable::default(),
                )
                .await?;
            let mut args = quorum_args();
            args.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(tier.as_millis()).unwrap_or(i64::MAX)),
            );
            // No dead-letter routing key: an expired message keeps the routing key it was
            // published with (`{namespace}.{priority}`) and goes back through `{p}.jobs`.
            args.insert(
                "x-dead-letter-exchange".into(),
                long_str(&n.jobs_exchange()),
            );
            args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
            args.insert("x-overflow".into(), long_str("reject-publish"));
            self.declare_queue(channel, &name, args).await?;
            channel
                .queue_bind(
                    short(&name)?,
                    short(&name)?,
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        debug!(
            prefix = n.prefix(),
            namespaces = self.namespaces.len(),
            "topology declared"
        );
        Ok(())
    }

    /// Deletes every queue and exchange of this topology (messages included). For tests and
    /// decommissioning; never called by the daemon.
    pub async fn delete(&self, channel: &Channel) -> Result<()> {
        let n = &self.names;
        let mut queues = vec![n.unroutable(), n.global_dead_queue()];
        for ns in &self.namespaces {
            queues.push(n.dead_queue(ns));
            queues.extend(Priority::ALL.map(|p| n.queue(ns, p)));
        }
        queues.extend(self.config.retry_tiers.iter().map(|t| n.retry_tier(*t)));
        for q in &queues {
            channel
                .queue_delete(short(q)?, QueueDeleteOptions::default())
                .await?;
        }
        let mut exchanges = vec![n.jobs_exchange(), n.unroutable(), n.events_exchange()];
        exchanges.extend(self.config.retry_tiers.iter().map(|t| n.retry_tier(*t)));
        for x in &exchanges {
            channel
                .exchange_delete(short(x)?, ExchangeDeleteOptions::default())
                .await?;
        }
        Ok(())
    }

    /// Empties a namespace's AMQP dead-letter queue (the store's records are purged with
    /// `JobStore::purge_dead_letters`). Returns how many messages were dropped.
    pub async fn purge_dead_queue(&self, channel: &Channel, namespace: &str) -> Result<u32> {
        Ok(channel
            .queue_purge(
                short(&self.names.dead_queue(namespace))?,
                QueuePurgeOptions::default(),
            )
            .await?)
    }

    /// Ready messages in a queue (a passive declare: no management plugin needed). Fails —
    /// and closes the channel — if the queue does not exist; use a throwaway channel.
    pub async fn ready_messages(channel: &Channel, queue: &str) -> Result<u32> {
        let q = channel
            .queue_declare(
                short(queue)?,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(q.message_count())
    }

    async fn declare_queue(&self, channel: &Channel, name: &str, args: FieldTable) -> Result<()> {
        channel
            .queue_declare(
                short(name)?,
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                args,
            )
            .await?;
        Ok(())
    }

    fn intake_args(&self, dead_queue: &str) -> FieldTable {
        let mut args = quorum_args();
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(self.config.delivery_limit)),
        );
        // Dead-letter through the default exchange straight into the namespace's dead queue.
        args.insert("x-dead-letter-exchange".into(), long_str(""));
        args.insert("x-dead-letter-routing-key".into(), long_str(dead_queue));
        args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
        args.insert("x-overflow".into(), long_str("reject-publish"));
        args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
        if let Some(max) = self.config.max_queue_length {
            args.insert(
                "x-max-length".into(),
                AMQPValue::LongLongInt(i64::try_from(max).unwrap_or(i64::MAX)),
            );
        }
        args
    }

    fn dead_queue_args(&self) -> FieldTable {
        let mut args = quorum_args();
        args.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(
                i64::try_from(self.config.dead_queue_max_length).unwrap_or(i64::MAX),
            ),
        );
        args.insert("x-overflow".into(), long_str("drop-head"));
        args
    }
}

fn quorum_args() -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), long_str("quorum"));
    args
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes()))
}

/// An AMQP short string (≤ 255 bytes), or an error naming the culprit (never a panic).
pub(crate) fn short(s: &str) -> Result<ShortString> {
    ShortString::try_new(s)
        .map_err(|e| Error::InvalidArgument(format!("{s:?} is not a usable AMQP name: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_documented_scheme() {
        let n = Names::new("orchestrator").unwrap();
        assert_eq!(n.jobs_exchange(), "orchestrator.jobs");
        assert_eq!(n.events_exchange(), "orchestrator.events");
        assert_eq!(
            n.queue("team-a", Priority::High),
            "orchestrator.team-a.high"
        );
        assert_eq!(
            n.queue("team-a", Priority::Normal),
            "orchestrator.team-a.normal"
        );
        assert_eq!(n.dead_queue("team-a"), "orchestrator.team-a.dead");
        assert_eq!(n.unroutable(), "orchestrator.unroutable");
        assert_eq!(n.global_dead_queue(), "orchestrator.dead");
        assert_eq!(Names::routing_key("team-a", Priority::High), "team-a.high");
        assert_eq!(
            Names::event_key("team-a", JobState::Waiting),
            "team-a.waiting"
        );
        assert_eq!(
            n.retry_tier(Duration::from_secs(5)),
            "orchestrator.retry.5s"
        );
        assert_eq!(
            n.retry_tier(Duration::from_secs(120)),
            "orchestrator.retry.2m"
        );
        assert_eq!(
            n.retry_tier(Duration::from_millis(250)),
            "orchestrator.retry.250ms"
        );
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for bad in ["", "has space", "a/b", &"x".repeat(65)] {
            assert!(Names::new(bad).is_err(), "{bad:?}");
        }
        assert!(Names::new("t-0191.x_y").is_ok());
    }

    #[test]
    fn delays_round_up_to_a_tier() {
        let t = Topology::for_namespaces(TopologyConfig::new("p"), ["a".to_owned()]).unwrap();
        let s = Duration::from_secs;
        assert_eq!(t.tier_for(Duration::from_millis(10)), Some(s(1)));
        assert_eq!(t.tier_for(s(1)), Some(s(1)));
        assert_eq!(t.tier_for(s(6)), Some(s(30)));
        assert_eq!(
            t.tier_for(s(3600)),
            Some(s(600)),
            "capped at the longest tier"
        );
        let mut none = TopologyConfig::new("p");
        none.retry_tiers.clear();
        let t = Topology::for_namespaces(none, Vec::new()).unwrap();
        assert_eq!(t.tier_for(s(1)), None);
    }
}
