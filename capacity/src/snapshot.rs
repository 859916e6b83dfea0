//! The **snapshot** strategy: three kube-runtime watchers (Nodes, Pods, ResourceQuotas) keep
//! the [`Cache`] current; `check` packs the gang over it under a read lock, with no API call.
//!
//! The watchers list once (paged), then follow the watch from the list's resourceVersion;
//! a dropped stream resumes from the last version seen (bookmarks included), a `410 Gone`
//! relists (`Init … InitDone`, applied to the cache as one replacement), and errors back off
//! and retry. Until every kind has synced once, `view` and `check` answer
//! [`Error::NotReady`]. [`SnapshotChecker::run`] drives all three and the housekeeping tick
//! (ledger expiry, gauges) in one cancellable loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, ResourceQuota};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::cache::{Cache, Kind, PodRecord, QuotaEntry};
use crate::config::CapacityConfig;
use crate::convert::node_view;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::model::GangDemand;
use crate::progress::PodProgress;
use crate::summary::ClusterSummary;
use crate::verdict::{Placement, Verdict};
use crate::view::{ClusterView, NodeView};
use crate::{CapacityChecker, Error, Result};

/// "Now" for the ledger: tokio's clock, so tests with paused time control expiry.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The snapshot strategy (see the module docs). Share it behind an `Arc`: the dry-run and
/// placeholder strategies wrap it.
pub struct SnapshotChecker {
    client: Client,
    cache: RwLock<Cache>,
    /// Bumped whenever the cache is write-locked: a view built at a generation holds while it
    /// stays the same.
    generation: AtomicU64,
    /// The last view built, shared by every reader until the cache changes (a round over a
    /// 5,000-node cluster copied it every time, most of it node labels).
    last_view: Mutex<Option<BuiltView>>,
    metrics: Metrics,
    housekeeping: Duration,
    page_size: u32,
    pool_label: String,
    role_label: String,
    binding: bool,
    ready: watch::Sender<bool>,
}

/// A view and what it is valid for.
struct BuiltView {
    generation: u64,
    /// The first promise in it lapses then.
    until: Option<Instant>,
    view: Arc<ClusterView>,
}

/// Objects gathered during a relist, applied at `InitDone`.
#[derive(Default)]
struct Relists {
    nodes: Option<Vec<NodeView>>,
    pods: Option<Vec<(String, PodRecord)>>,
    quotas: Option<Vec<QuotaEntry>>,
}

impl SnapshotChecker {
    /// A checker over the cluster `client` talks to; nothing happens until [`Self::run`].
    /// The config should have passed [`CapacityConfig::validate`].
    pub fn new(client: Client, config: &CapacityConfig, metrics: Metrics) -> Self {
        let cache = Cache::new(
            &config.pool_label,
            &config.role_label,
            config.autoscale_pools(),
            Ledger::new(config.ledger_ttl).with_exclusive_nodes(config.binding_placements),
        );
        SnapshotChecker {
            client,
            cache: RwLock::new(cache),
            generation: AtomicU64::new(0),
            last_view: Mutex::new(None),
            metrics,
            housekeeping: config.housekeeping_interval,
            binding: config.binding_placements,
            page_size: 500,
            pool_label: config.pool_label.clone(),
            role_label: config.role_label.clone(),
            ready: watch::Sender::new(false),
        }
    }

    /// The client (for the strategies built on top).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The metrics it records into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn read(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        let cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        // Under the lock: a reader that sees this generation sees the change made under it.
        self.generation.fetch_add(1, Ordering::AcqRel);
        cache
    }

    /// The view at `now`: the last one built while the cache has not changed and none of its
    /// promises has lapsed, else a new one.
    fn shared_view(&self, now: Instant) -> Result<Arc<ClusterView>> {
        let mut last = self
            .last_view
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let cache = self.read();
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(built) = last.as_ref()
            && built.generation == generation
            && built.until.is_none_or(|until| now < until)
        {
            return Ok(built.view.clone());
        }
        let view = Arc::new(cache.view(now)?);
        *last = Some(BuiltView {
            generation,
            until: cache.ledger().next_expiry(now),
            view: view.clone(),
        });
        Ok(view)
    }

    /// Waits until every watch has synced once, at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let mut rx = self.ready.subscribe();
        match tokio::time::timeout(timeout, rx.wait_for(|r| *r)).await {
            Ok(Ok(_)) => Ok(()),
            _ => self.read().ensure_ready(),
        }
    }

    /// The snapshot verdict with no metrics recorded (for the strategies built on top).
    pub fn verdict(&self, demand: &GangDemand) -> Result<Verdict> {
        self.read().check(demand, now())
    }

    /// Reads the cache (tests and diagnostics: exact node requests, pod counts, the ledger).
    pub fn with_cache<T>(&self, f: impl FnOnce(&Cache) -> T) -> T {
        f(&self.read())
    }

    /// The cluster per pool now, for people (see [`crate::summary`]).
    pub fn summary(&self) -> ClusterSummary {
        self.read().summary(now())
    }

    /// How far application `app`'s pods have come (see [`crate::progress`]).
    pub fn app_pods(&self, namespace: &str, app: &str) -> PodProgress {
        self.read().app_pods(namespace, app)
    }

    /// Watches Nodes, Pods and ResourceQuotas into the cache until `token` is cancelled.
    #[tracing::instrument(name = "capacity_watch", skip_all)]
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        let config = watcher::Config::default().page_size(self.page_size);
        let mut nodes = watch_stream(Api::<Node>::all(self.client.clone()), config.clone())
            .default_backoff()
            .boxed();
        let mut pods = watch_stream(Api::<Pod>::all(self.client.clone()), config.clone())
            .default_backoff()
            .boxed();
        let mut quotas = watch_stream(Api::<ResourceQuota>::all(self.client.clone()), config)
            .default_backoff()
            .boxed();
        let mut relists = Relists::default();
        let mut tick = tokio::time::interval(self.housekeeping);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        info!("capacity snapshot: watching nodes, pods and resource quotas");
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                Some(ev) = nodes.next() => self.on_node(ev, &mut relists),
                Some(ev) = pods.next() => self.on_pod(ev, &mut relists),
                Some(ev) = quotas.next() => self.on_quota(ev, &mut relists),
                _ = tick.tick() => self.housekeeping(),
            }
        }
        info!("capacity snapshot: watches stopped");
        Ok(())
    }

    fn on_error(&self, kind: Kind, e: &watcher::Error) {
        warn!(kind = kind.as_str(), error = %e, "capacity watch error; retrying with backoff");
        self.metrics.watch_error(kind.as_str());
    }

    fn synced(&self, cache: &mut Cache, kind: Kind) {
        cache.mark_synced(kind);
        self.metrics.watch_event(kind.as_str(), "relist");
        let ready = cache.ensure_ready().is_ok();
        self.metrics.ready(ready);
        self.ready
            .send_if_modified(|r| std::mem::replace(r, ready) != ready);
        debug!(kind = kind.as_str(), ready, "capacity watch synced");
    }

    fn on_node(&self, ev: Result<Event<Node>, watcher::Error>, relists: &mut Relists) {
        let kind = Kind::Nodes;
        let pool_label = &self.pool_label;
        match ev {
            Ok(Event::Init) => relists.nodes = Some(Vec::new()),
            Ok(Event::InitApply(n)) => relists
                .nodes
                .get_or_insert_with(Vec::new)
                .push(node_view(&n, pool_label)),
            Ok(Event::InitDone) => {
                let mut cache = self.write();
                cache.replace_nodes(relists.nodes.take().unwrap_or_default());
                self.synced(&mut cache, kind);
            }
            Ok(Event::Apply(n)) => {
                self.write().upsert_node(node_view(&n, pool_label));
                self.metrics.watch_event(kind.as_str(), "apply");
            }
            Ok(Event::Delete(n)) => {
                self.write().remove_node(&n.name_any());
                self.metrics.watch_event(kind.as_str(), "delete");
            }
            Err(e) => self.on_error(kind, &e),
        }
    }

    fn on_pod(&self, ev: Result<Event<Pod>, watcher::Error>, relists: &mut Relists) {
        let kind = Kind::Pods;
        let role_label = &self.role_label;
        match ev {
            Ok(Event::Init) => relists.pods = Some(Vec::new()),
            Ok(Event::InitApply(p)) => relists
                .pods
                .get_or_insert_with(Vec::new)
                .push(PodRecord::from_pod(p, role_label)),
            Ok(Event::InitDone) => {
                let mut cache = self.write();
                cache.replace_pods(relists.pods.take().unwrap_or_default());
                self.synced(&mut cache, kind);
            }
            Ok(Event::Apply(p)) => {
                let (key, record) = PodRecord::from_pod(p, role_label);
                self.write().upsert_pod(key, record);
                self.metrics.watch_event(kind.as_str(), "apply");
            }
            Ok(Event::Delete(p)) => {
                let (key, _) = PodRecord::from_pod(p, role_label);
                self.write().remove_pod(&key);
                self.metrics.watch_event(kind.as_str(), "delete");
            }
            Err(e) => self.on_error(kind, &e),
        }
    }

    fn on_quota(&self, ev: Result<Event<ResourceQuota>, watcher::Error>, relists: &mut Relists) {
        let kind = Kind::Quotas;
        match ev {
            Ok(Event::Init) => relists.quotas = Some(Vec::new()),
            Ok(Event::InitApply(q)) => relists
                .quotas
                .get_or_insert_with(Vec::new)
                .push(Cache::quota_entry(&q)),
            Ok(Event::InitDone) => {
                let mut cache = self.write();
                cache.replace_quotas(relists.quotas.take().unwrap_or_default());
                self.synced(&mut cache, kind);
            }
            Ok(Event::Apply(q)) => {
                let (key, hard) = Cache::quota_entry(&q);
                self.write().upsert_quota(key, hard);
                self.metrics.watch_event(kind.as_str(), "apply");
            }
            Ok(Event::Delete(q)) => {
                let (key, _) = Cache::quota_entry(&q);
                self.write().remove_quota(&key);
                self.metrics.watch_event(kind.as_str(), "delete");
            }
            Err(e) => self.on_error(kind, &e),
        }
    }

    /// Drops lapsed reservations and refreshes the gauges.
    pub fn housekeeping(&self) {
        let now = now();
        // Write-locked only when there is something to drop: a write makes the next view new.
        let lapsed = self.read().ledger().any_lapsed(now);
        let expired = if lapsed {
            self.write().expire(now)
        } else {
            Vec::new()
        };
        for key in &expired {
            info!(gang = %key, "capacity reservation expired before its pods appeared");
        }
        let cache = self.read();
        for (pool, totals) in cache.pool_totals() {
            self.metrics
                .cluster(&pool, &totals.allocatable, &totals.requested);
        }
        let stats = cache.ledger_stats(now);
        self.metrics.ledger(stats.entries, &stats.reserved);
    }

    /// Records a verdict or error under a strategy's name.
    pub(crate) fn record(&self, strategy: &'static str, result: &Result<Verdict>) {
        match result {
            Ok(v) => self.metrics.verdict(strategy, v),
            Err(e) => self.metrics.error(strategy, e),
        }
    }
}

#[async_trait::async_trait]
impl CapacityChecker for SnapshotChecker {
    fn name(&self) -> &'static str {
        "snapshot"
    }

    fn view(&self) -> Result<Arc<ClusterView>> {
        self.shared_view(now())
    }

    fn binding_placements(&self) -> bool {
        self.binding
    }

    async fn check(&self, demand: &GangDemand) -> Result<Verdict> {
        let span = info_span!("capacity_check", strategy = "snapshot", gang = %demand.key, namespace = %demand.namespace);
        async {
            let _timer = self.metrics.time_check("snapshot");
            let result = self.verdict(demand);
            self.record("snapshot", &result);
            debug!(verdict = ?result.as_ref().map(verdict_code), "capacity verdict");
            result
        }
        .instrument(span)
        .await
    }

    fn reserve(&self, demand: &GangDemand, placement: &Placement) {
        self.write().reserve(demand, placement, now());
        debug!(gang = %demand.key, nodes = ?placement.nodes, "capacity reserved");
    }

    fn release(&self, key: &str) {
        // Rounds release every candidate's key, almost never held: a read lock answers that
        // without making the next view a new one.
        if self.read().ledger().get(key).is_none() {
            return;
        }
        if self.write().release(key) {
            debug!(gang = %key, "capacity reservation released");
        }
    }
}

/// `fits`, `wait:<kind>`, `never:<kind>` for logs.
pub(crate) fn verdict_code(v: &Verdict) -> String {
    match v {
        Verdict::Fits(p) if p.scale_up.is_empty() => "fits".into(),
        Verdict::Fits(_) => "fits:scale-up".into(),
        Verdict::Wait(w) => format!("wait:{}", w.kind.code()),
        Verdict::Never(n) => format!("never:{}", n.kind.code()),
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e.to_string())
    }
}
