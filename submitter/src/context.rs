//! The parts both submitter loops use — admission and reconciliation — and the PriorityClass
//! values they resolve, cached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use capacity::CapacityChecker;
use jobs::Catalog;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::api::{Api, ListParams};
use queues::JobStore;
use queues::store::HeadsCache;
use tokio::sync::Mutex;

use crate::config::SubmitterConfig;
use crate::estimate::live::LastRun;
use crate::flight::InFlight;
use crate::metrics::Metrics;
use crate::preempt::Holds;
use crate::sizes::Sizes;
use crate::spark_app::EmitSettings;

/// What the admission and reconcile loops share.
pub struct Context {
    /// The job store.
    pub store: JobStore,
    /// The capacity strategy.
    pub checker: Arc<dyn CapacityChecker>,
    /// The Kubernetes client.
    pub client: kube::Client,
    /// What jobs may ask for.
    pub catalog: Arc<Catalog>,
    /// Loop settings.
    pub config: SubmitterConfig,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Room freed by preemption, held for its preemptors across rounds.
    pub holds: Holds,
    /// When the round last replayed for start estimates.
    pub estimated: LastRun,
    /// Pending jobs' sizes, kept across rounds.
    pub sizes: std::sync::Mutex<Sizes>,
    /// The pending heads, kept across rounds while nothing changes them (the leader's
    /// listener, [`crate::service::listen`], says what changed).
    pub heads: HeadsCache,
    /// Held by the round deciding and confirming; one round at a time does (see
    /// [`crate::admission::round`]).
    pub deciding: Arc<Mutex<()>>,
    /// Admissions of rounds still creating or recording them.
    pub in_flight: InFlight,
    priorities: Mutex<Option<(Instant, BTreeMap<String, i32>)>>,
}

impl Context {
    /// Bundles the parts.
    pub fn new(
        store: JobStore,
        checker: Arc<dyn CapacityChecker>,
        client: kube::Client,
        catalog: Arc<Catalog>,
        config: SubmitterConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            checker,
            client,
            catalog,
            config,
            metrics,
            holds: Holds::default(),
            estimated: LastRun::default(),
            sizes: std::sync::Mutex::default(),
            heads: HeadsCache::default(),
            deciding: Arc::default(),
            in_flight: InFlight::default(),
            priorities: Mutex::new(None),
        }
    }

    /// PriorityClass values by name (refreshed at most once a minute; missing classes count 0).
    pub async fn priority_values(&self) -> BTreeMap<String, i32> {
        let mut cached = self.priorities.lock().await;
        if let Some((at, values)) = cached.as_ref()
            && at.elapsed().as_secs() < 60
        {
            return values.clone();
        }
        let api: Api<PriorityClass> = Api::all(self.client.clone());
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let values: BTreeMap<String, i32> = list
                    .items
                    .into_iter()
                    .filter_map(|pc| pc.metadata.name.map(|n| (n, pc.value)))
                    .collect();
                *cached = Some((Instant::now(), values.clone()));
                values
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list PriorityClasses; using the last known values");
                cached.as_ref().map(|(_, v)| v.clone()).unwrap_or_default()
            }
        }
    }

    /// Settings for rendering applications.
    pub fn emit_settings(&self) -> EmitSettings {
        EmitSettings {
            service_account: self.config.service_account.clone(),
            time_to_live_seconds: self.config.app_ttl.map(|d| d.0.as_secs()),
        }
    }
}
