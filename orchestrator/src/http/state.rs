//! What every handler shares: the job store, the catalog, the authenticator, the metrics
//! registry, the readiness probe and the limits.

use std::sync::Arc;
use std::time::Duration;

use jobs::Catalog;
use prometheus_client::registry::Registry;
use queues::JobStore;

use super::auth::Authenticator;
use super::cluster::ClusterInfo;
use super::metrics::HttpMetrics;

/// One component's readiness: `Ok`, or why not (shown in `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `broker`, `database`, `kubernetes`, …
    pub name: String,
    /// `Ok(())` when usable, else the reason.
    pub status: Result<(), String>,
}

impl Component {
    /// A component's result.
    pub fn new(name: impl Into<String>, status: Result<(), String>) -> Self {
        Self {
            name: name.into(),
            status,
        }
    }
}

/// Can this replica serve? The daemon's implementation checks the broker, the database and
/// Kubernetes; `/readyz` answers 503 naming the components that fail. Implementations bound
/// each check with a timeout: a probe must answer.
#[async_trait::async_trait]
pub trait Readiness: Send + Sync {
    /// Checks every component.
    async fn check(&self) -> Vec<Component>;
}

/// A readiness probe over the job store alone: the database answers, and its schema has
/// every migration this build knows (a replica on an old schema is not ready). For tests and
/// for tools that serve the API without the broker or Kubernetes.
#[derive(Debug, Clone)]
pub struct StoreReadiness {
    store: JobStore,
}

impl StoreReadiness {
    /// Over a store.
    pub fn new(store: JobStore) -> Self {
        Self { store }
    }
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[async_trait::async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Vec<Component> {
        let pool = self.store.pool();
        let database = match tokio::time::timeout(
            CHECK_TIMEOUT,
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool),
        )
        .await
        {
            Err(_) => Err("no answer within 2 s".to_owned()),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(applied)) => {
                let known = queues::store::MIGRATOR.iter().count();
                if usize::try_from(applied).is_ok_and(|a| a >= known) {
                    Ok(())
                } else {
                    Err(format!(
                        "the schema has {applied} of {known} migrations; run `orchestrator migrate`"
                    ))
                }
            }
        };
        vec![Component::new("database", database)]
    }
}

/// Limits and switches of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body accepted (413 beyond). Default: the catalog's
    /// `limits.max_message_bytes`, so an HTTP job is bounded like an AMQP one.
    pub max_body_bytes: usize,
    /// Whether `/metrics` asks for a token with the `read` role (default: open, as
    /// Prometheus scrapers usually are).
    pub metrics_require_auth: bool,
}

impl ApiOptions {
    /// Defaults derived from the catalog.
    pub fn for_catalog(catalog: &Catalog) -> Self {
        Self {
            max_body_bytes: catalog.limits().max_message_bytes,
            metrics_require_auth: false,
        }
    }
}

/// The handlers' shared state (cheap to clone).
#[derive(Clone)]
pub struct ApiState {
    /// The job store.
    pub store: JobStore,
    /// What jobs may ask for; validates submitted jobs and schedule templates.
    pub catalog: Arc<Catalog>,
    /// Bearer tokens.
    pub auth: Arc<Authenticator>,
    /// Every metric of the process (rendered by `/metrics`).
    pub registry: Arc<Registry>,
    /// The API's own request metrics (registered in `registry`).
    pub http_metrics: Arc<HttpMetrics>,
    /// `/readyz`'s probe.
    pub readiness: Arc<dyn Readiness>,
    /// Limits.
    pub options: ApiOptions,
    /// The cluster summary behind `/v1/cluster` (`None`: this process watches no cluster).
    pub cluster: Option<Arc<dyn ClusterInfo>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// State with options derived from the catalog. The API's request metrics are added
    /// to `registry`, which holds every other metric of the process.
    pub fn new(
        store: JobStore,
        catalog: Arc<Catalog>,
        auth: Arc<Authenticator>,
        mut registry: Registry,
        readiness: Arc<dyn Readiness>,
    ) -> Self {
        let options = ApiOptions::for_catalog(&catalog);
        let http_metrics = Arc::new(HttpMetrics::default());
        http_metrics.register(&mut registry);
        Self {
            store,
            catalog,
            auth,
            registry: Arc::new(registry),
            http_metrics,
            readiness,
            options,
            cluster: None,
        }
    }

    /// Serves `/v1/cluster` from `cluster`.
    pub fn with_cluster(mut self, cluster: Arc<dyn ClusterInfo>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Replaces the options.
    pub fn with_options(mut self, options: ApiOptions) -> Self {
        self.options = options;
        self
    }
}
