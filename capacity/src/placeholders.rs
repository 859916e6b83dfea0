//! The **placeholders** strategy: after the snapshot says a gang fits, ask the real scheduler.
//! One pause pod per pod of the gang — same requests, node selector and tolerations — at a
//! negative priority (`spark-placeholder`, `preemptionPolicy: Never`: they never evict anyone
//! and anyone may evict them). `Fits` when all are bound within the timeout, with the nodes the
//! scheduler actually chose; otherwise `Wait(NotConfirmed)` and they are deleted.
//!
//! **Release.** On `reserve` (the ledger takes over the accounting) or `release`, the checker
//! deletes them; until then the real Spark pods, which have a higher priority, would preempt
//! them anyway, so a slow deletion never blocks the application.
//!
//! **Owner and garbage collection.** Each attempt creates a Lease
//! `spark-placeholder-<gang hash>-<nonce>` in the placeholders' namespace that owns its pods
//! (ownerReference, `controller: true`): deleting the Lease deletes the pods (background GC).
//! A per-attempt Lease rather than the orchestrator's own leader Lease because ownerReferences
//! cannot cross namespaces — a namespaced owner is looked up in the dependent's namespace, so
//! pods in team namespaces owned by a Lease elsewhere would be collected at once. A Lease
//! rather than a ConfigMap because it says what it is: held by `managed_by` for
//! `max_age` seconds.
//!
//! **Orphans.** Pods and Leases carry `spark-orchestrator.dev/placeholder=true` and
//! `app.kubernetes.io/managed-by=<managed_by>`. The sweeper (in [`PlaceholderChecker::run`])
//! deletes those older than `max_age` that no check of this process holds — what a crash
//! leaves behind. Placeholders count against the namespace quota; set
//! `placeholders.namespace` to a dedicated namespace to keep them out of team quotas.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, ResourceExt};
use tokio::sync::{OnceCell, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::PlaceholderConfig;
use crate::dryrun::classify_refusal;
use crate::fit::role_name;
use crate::model::GangDemand;
use crate::podspec::{StandIn, stand_in_pod};
use crate::snapshot::SnapshotChecker;
use crate::verdict::{Placement, Verdict, WaitKind, WaitReason};
use crate::view::ClusterView;
use crate::{CapacityChecker, Error, Result};

mod sweep;

/// Label on every placeholder pod and owner Lease.
pub const PLACEHOLDER_LABEL: &str = "spark-orchestrator.dev/placeholder";
/// Label naming the gang (a hash of its key).
pub const GANG_LABEL: &str = "spark-orchestrator.dev/placeholder-gang";
/// Label naming one confirmation attempt.
pub const ATTEMPT_LABEL: &str = "spark-orchestrator.dev/placeholder-attempt";
/// Annotation with the gang's key in full.
pub const GANG_ANNOTATION: &str = "spark-orchestrator.dev/gang";
/// The installation's label.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// One attempt's objects.
#[derive(Debug, Clone)]
struct Attempt {
    namespace: String,
    lease: String,
    nonce: String,
    pods: usize,
}

/// Where an attempt of this process stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the scheduler.
    Confirming,
    /// All bound; held until `reserve`/`release`.
    Held,
}

/// A request to delete an attempt's objects.
#[derive(Debug)]
struct Cleanup {
    attempt: Attempt,
    reason: &'static str,
}

/// The placeholder strategy (see the module docs). Needs [`PlaceholderChecker::run`] running
/// (deletions and the sweeper) next to the snapshot's.
pub struct PlaceholderChecker {
    snapshot: Arc<SnapshotChecker>,
    config: PlaceholderConfig,
    in_flight: Mutex<HashMap<String, (Attempt, Stage)>>,
    cleanups: mpsc::UnboundedSender<Cleanup>,
    cleanup_rx: Mutex<Option<mpsc::UnboundedReceiver<Cleanup>>>,
    priority_class: OnceCell<()>,
}

/// FNV-1a: a short, stable, name-safe id for a gang key.
fn gang_hash(key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// A per-attempt suffix, unique within the process and across restarts.
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!(
        "{:x}",
        (t as u64).wrapping_mul(31).wrapping_add(n) & 0xff_ffff_ffff
    )
}

/// Removes the attempt from the in-flight set and queues its deletion if the check is
/// dropped (the caller timed out or was cancelled) before it decided.
struct AttemptGuard<'a> {
    checker: &'a PlaceholderChecker,
    key: String,
    armed: bool,
}

impl Drop for AttemptGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.checker.finish(&self.key, "cancelled");
        }
    }
}

impl PlaceholderChecker {
    /// Placeholder confirmation on top of a snapshot checker (which must be running).
    pub fn new(snapshot: Arc<SnapshotChecker>, config: PlaceholderConfig) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        PlaceholderChecker {
            snapshot,
            config,
            in_flight: Mutex::new(HashMap::new()),
            cleanups: tx,
            cleanup_rx: Mutex::new(Some(rx)),
            priority_class: OnceCell::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Attempt, Stage)>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Placeholders of checks in progress / held, for the gauges.
    fn update_gauges(&self, in_flight: &HashMap<String, (Attempt, Stage)>) {
        let count = |stage| {
            in_flight
                .values()
                .filter(|(_, s)| *s == stage)
                .map(|(a, _)| a.pods)
                .sum::<usize>()
        };
        let m = self.snapshot.metrics();
        m.placeholders(
            "confirming",
            i64::try_from(count(Stage::Confirming)).unwrap_or(i64::MAX),
        );
        m.placeholders(
            "held",
            i64::try_from(count(Stage::Held)).unwrap_or(i64::MAX),
        );
    }

    /// Forgets the gang's attempt and queues the deletion of its objects.
    fn finish(&self, key: &str, reason: &'static str) {
        let mut in_flight = self.lock();
        let Some((attempt, _)) = in_flight.remove(key) else {
            return;
        };
        // The receiver lives as long as `run`; after shutdown the sweeper of the next process
        // removes what is left.
        let _ = self.cleanups.send(Cleanup { attempt, reason });
        self.update_gauges(&in_flight);
    }

    /// Creates the PriorityClass if it does not exist (once per process).
    async fn ensure_priority_class(&self) -> Result<()> {
        self.priority_class
            .get_or_try_init(|| async {
                let api: Api<PriorityClass> = Api::all(self.snapshot.client().clone());
                let class = PriorityClass {
                    metadata: ObjectMeta {
                        name: Some(self.config.priority_class.clone()),
                        labels: Some(BTreeMap::from([(MANAGED_BY_LABEL.to_string(), self.config.managed_by.clone())])),
                        ..Default::default()
                    },
                    value: self.config.priority,
                    preemption_policy: Some("Never".into()),
                    global_default: Some(false),
                    description: Some("Spark orchestrator capacity placeholders: evicted by any real pod".into()),
                };
                match api.create(&PostParams::default(), &class).await {
                    Ok(_) => info!(class = %self.config.priority_class, "created the placeholder PriorityClass"),
                    Err(kube::Error::Api(s)) if s.code == 409 => {}
                    Err(e) => return Err(Error::Kube(format!("creating PriorityClass: {e}"))),
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Creates the attempt's owner Lease and pods; on a refusal returns the verdict it implies.
    async fn create(
        &self,
        demand: &GangDemand,
        attempt: &Attempt,
        hash: &str,
    ) -> Result<Option<Verdict>> {
        let client = self.snapshot.client().clone();
        let labels = BTreeMap::from([
            (PLACEHOLDER_LABEL.to_string(), "true".to_string()),
            (MANAGED_BY_LABEL.to_string(), self.config.managed_by.clone()),
            (GANG_LABEL.to_string(), hash.to_string()),
            (ATTEMPT_LABEL.to_string(), attempt.nonce.clone()),
        ]);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(attempt.lease.clone()),
                namespace: Some(attempt.namespace.clone()),
                labels: Some(labels.clone()),
                annotations: Some(BTreeMap::from([(
                    GANG_ANNOTATION.to_string(),
                    demand.key.clone(),
                )])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.managed_by.clone()),
                lease_duration_seconds: Some(
                    i32::try_from(self.config.max_age.as_secs()).unwrap_or(i32::MAX),
                ),
                ..Default::default()
            }),
        };
        let leases: Api<Lease> = Api::namespaced(client.clone(), &attempt.namespace);
        let lease = leases
            .create(&PostParams::default(), &lease)
            .await
            .map_err(|e| Error::Kube(format!("creating placeholder owner Lease: {e}")))?;
        let owner = OwnerReference {
            api_version: "coordination.k8s.io/v1".into(),
            kind: "Lease".into(),
            name: attempt.lease.clone(),
            uid: lease.uid().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let pods: Api<Pod> = Api::namespaced(client, &attempt.namespace);
        for (i, pod) in demand.pods.iter().enumerate() {
            let p = stand_in_pod(
                pod,
                StandIn {
                    name: Some(format!("{}-{i}", attempt.lease)),
                    namespace: &attempt.namespace,
                    labels: labels.clone(),
                    image: &self.config.image,
                    priority_class: Some(&self.config.priority_class),
                    owners: vec![owner.clone()],
                    ..Default::default()
                },
            );
            match pods.create(&PostParams::default(), &p).await {
                Ok(_) => self.snapshot.metrics().placeholders_created(1),
                Err(kube::Error::Api(s)) => {
                    return classify_refusal(s.code, &s.reason, &s.message, role_name(pod.role))
                        .map(Some);
                }
                Err(e) => return Err(Error::Kube(format!("creating placeholder pod: {e}"))),
            }
        }
        Ok(None)
    }

    /// Follows the attempt's pods until all are bound or the timeout passes. Returns the node
    /// of each bound pod by name, and the scheduler's last word on one still pending.
    async fn wait_bound(&self, attempt: &Attempt) -> (BTreeMap<String, String>, Option<String>) {
        let api: Api<Pod> = Api::namespaced(self.snapshot.client().clone(), &attempt.namespace);
        let config =
            watcher::Config::default().labels(&format!("{ATTEMPT_LABEL}={}", attempt.nonce));
        let mut stream = watch_stream(api, config).default_backoff().boxed();
        let mut bound = BTreeMap::new();
        let mut pending_reason = None;
        let deadline = tokio::time::sleep(self.config.timeout);
        tokio::pin!(deadline);
        while bound.len() < attempt.pods {
            tokio::select! {
                () = &mut deadline => break,
                ev = stream.next() => match ev {
                    Some(Ok(Event::Apply(p) | Event::InitApply(p))) => {
                        let name = p.name_any();
                        match p.spec.as_ref().and_then(|s| s.node_name.clone()) {
                            Some(node) => { bound.insert(name, node); }
                            None => {
                                bound.remove(&name);
                                if let Some(m) = unschedulable_message(&p) { pending_reason = Some(m); }
                            }
                        }
                    }
                    Some(Ok(Event::Delete(p))) => { bound.remove(&p.name_any()); }
                    Some(Ok(Event::Init | Event::InitDone)) => {}
                    Some(Err(e)) => warn!(error = %e, "placeholder watch error; retrying"),
                    None => break,
                },
            }
        }
        (bound, pending_reason)
    }

    async fn confirm(&self, demand: &GangDemand) -> Result<Verdict> {
        match self.snapshot.verdict(demand)? {
            Verdict::Fits(_) => {}
            Verdict::Wait(w)
                if !self.config.require_snapshot_fit
                    && matches!(w.kind, WaitKind::Insufficient { .. }) => {}
            other => return Ok(other),
        }
        self.ensure_priority_class().await?;
        let hash = gang_hash(&demand.key);
        let nonce = nonce();
        let attempt = Attempt {
            namespace: self
                .config
                .namespace
                .clone()
                .unwrap_or_else(|| demand.namespace.clone()),
            lease: format!("spark-placeholder-{hash}-{nonce}"),
            nonce,
            pods: demand.pods.len(),
        };
        // A previous attempt for the same gang (never reserved) is superseded.
        self.finish(&demand.key, "superseded");
        {
            let mut in_flight = self.lock();
            in_flight.insert(demand.key.clone(), (attempt.clone(), Stage::Confirming));
            self.update_gauges(&in_flight);
        }
        let mut guard = AttemptGuard {
            checker: self,
            key: demand.key.clone(),
            armed: true,
        };
        match self.create(demand, &attempt, &hash).await {
            Ok(None) => {}
            Ok(Some(refused)) => {
                guard.armed = false;
                self.finish(&demand.key, "wait");
                return Ok(refused);
            }
            Err(e) => {
                guard.armed = false;
                self.finish(&demand.key, "wait");
                return Err(e);
            }
        }
        let (bound, pending) = self.wait_bound(&attempt).await;
        guard.armed = false;
        if bound.len() == attempt.pods {
            let nodes = (0..attempt.pods)
                .map(|i| {
                    bound
                        .get(&format!("{}-{i}", attempt.lease))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            let mut in_flight = self.lock();
            if let Some(entry) = in_flight.get_mut(&demand.key) {
                entry.1 = Stage::Held;
            }
            self.update_gauges(&in_flight);
            return Ok(Verdict::Fits(Placement {
                nodes,
                scale_up: Vec::new(),
            }));
        }
        self.finish(&demand.key, "wait");
        let mut message = format!(
            "{} of {} placeholder pods bound within {}",
            bound.len(),
            attempt.pods,
            humantime::format_duration(self.config.timeout)
        );
        if let Some(reason) = pending {
            message.push_str(&format!("; the scheduler says: {reason}"));
        }
        Ok(Verdict::Wait(WaitReason {
            kind: WaitKind::NotConfirmed,
            message,
        }))
    }

    /// Deletes queued attempts and sweeps orphans every `sweep_interval` until `token` is
    /// cancelled; then deletes what is still queued (best effort, bounded by a grace period).
    #[tracing::instrument(name = "capacity_placeholders", skip_all)]
    pub async fn run(&self, token: CancellationToken) -> Result<()> {
        let Some(mut rx) = self
            .cleanup_rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(Error::Kube(
                "PlaceholderChecker::run is already running".into(),
            ));
        };
        if let Err(e) = self.ensure_priority_class().await {
            warn!(error = %e, "placeholder PriorityClass not ensured yet; retried on the first check");
        }
        let mut tick = tokio::time::interval(self.config.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                Some(c) = rx.recv() => self.cleanup(c).await,
                _ = tick.tick() => {
                    match self.sweep().await {
                        Ok(0) => {}
                        Ok(n) => info!(deleted = n, "placeholder sweeper removed orphans"),
                        Err(e) => warn!(error = %e, "placeholder sweep failed; next round retries"),
                    }
                }
            }
        }
        let drain = async {
            while let Ok(c) = rx.try_recv() {
                self.cleanup(c).await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!("placeholder deletions abandoned at shutdown; the next sweeper removes them");
        }
        Ok(())
    }
}

/// The `PodScheduled=False` message, if the scheduler gave one.
fn unschedulable_message(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone())
}

#[async_trait::async_trait]
impl CapacityChecker for PlaceholderChecker {
    fn name(&self) -> &'static str {
        "placeholders"
    }

    fn view(&self) -> Result<Arc<ClusterView>> {
        self.snapshot.view()
    }

    fn binding_placements(&self) -> bool {
        self.snapshot.binding_placements()
    }

    async fn check(&self, demand: &GangDemand) -> Result<Verdict> {
        let span = info_span!("capacity_check", strategy = "placeholders", gang = %demand.key, namespace = %demand.namespace);
        async {
            let _timer = self.snapshot.metrics().time_check("placeholders");
            let result = self.confirm(demand).await;
            self.snapshot.record("placeholders", &result);
            debug!(verdict = ?result.as_ref().map(crate::snapshot::verdict_code), "capacity verdict");
            result
        }
        .instrument(span)
        .await
    }

    fn reserve(&self, demand: &GangDemand, placement: &Placement) {
        self.snapshot.reserve(demand, placement);
        self.finish(&demand.key, "reserve");
    }

    fn release(&self, key: &str) {
        self.snapshot.release(key);
        self.finish(key, "release");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gang_hashes_are_stable_and_name_safe() {
        assert_eq!(gang_hash("job-1/attempt-1"), gang_hash("job-1/attempt-1"));
        assert_ne!(gang_hash("a"), gang_hash("b"));
        assert!(
            gang_hash("Ünïcode key!")
                .chars()
                .all(|c| c.is_ascii_hexdigit())
        );
        assert_eq!(gang_hash("").len(), 16);
        assert_ne!(nonce(), nonce());
    }
}
