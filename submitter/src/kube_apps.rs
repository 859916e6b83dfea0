//! The Kubernetes edge of the submitter: creating `SparkApplication`s (adopting one that a
//! previous run already created), deleting them, and watching them and their pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::app_status::{AppObservation, ContainerObservation, PodObservation, PodPhase};
use crate::naming::{ATTEMPT_LABEL, JOB_ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL};

/// A `SparkApplication`, with spec and status kept as JSON: the orchestrator writes the spec
/// it rendered and reads a few status fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct SparkApplication {
    /// Object metadata.
    pub metadata: ObjectMeta,
    /// The spec as rendered by [`crate::spark_app`].
    #[serde(default)]
    pub spec: Value,
    /// Written by the Spark Operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// The one place the Spark Operator's group and version are written: rendering and the client
/// both read them from here.
impl k8s_openapi::Resource for SparkApplication {
    const API_VERSION: &'static str = "sparkoperator.k8s.io/v1beta2";
    const GROUP: &'static str = "sparkoperator.k8s.io";
    const KIND: &'static str = "SparkApplication";
    const VERSION: &'static str = "v1beta2";
    const URL_PATH_SEGMENT: &'static str = "sparkapplications";
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for SparkApplication {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl SparkApplication {
    /// Wraps a rendered application (`apiVersion`/`kind`/`metadata`/`spec` JSON).
    pub fn from_rendered(rendered: Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(rendered)
    }

    /// `status.applicationState.state`.
    pub fn state(&self) -> &str {
        state_of(self.status.as_ref())
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        label_of(&self.metadata, key)
    }
}

/// What the orchestrator reads back of an application: its metadata and status. Watch events
/// and create responses carry the whole object, but its spec — most of it, and the
/// orchestrator's own rendering — is skipped while parsing: the watch cache keeps no copy of
/// any spec, and a create builds no second one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ObservedApp {
    /// Object metadata, less `managedFields` (see [`lean_metadata`]).
    #[serde(default, deserialize_with = "lean_metadata")]
    pub metadata: ObjectMeta,
    /// Written by the Spark Operator.
    #[serde(default)]
    pub status: Option<Value>,
}

impl k8s_openapi::Resource for ObservedApp {
    const API_VERSION: &'static str = SparkApplication::API_VERSION;
    const GROUP: &'static str = SparkApplication::GROUP;
    const KIND: &'static str = SparkApplication::KIND;
    const VERSION: &'static str = SparkApplication::VERSION;
    const URL_PATH_SEGMENT: &'static str = SparkApplication::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl k8s_openapi::Metadata for ObservedApp {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl ObservedApp {
    /// `status.applicationState.state`.
    pub fn state(&self) -> &str {
        state_of(self.status.as_ref())
    }

    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        label_of(&self.metadata, key)
    }
}

/// `metadata` as sent, less `managedFields`: the API server's record of who set which field,
/// a tree about as large as the spec, sent with every watch event and answer and never read
/// here.
fn lean_metadata<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Lean {
        annotations: Option<BTreeMap<String, String>>,
        creation_timestamp: Option<Time>,
        deletion_grace_period_seconds: Option<i64>,
        deletion_timestamp: Option<Time>,
        finalizers: Option<Vec<String>>,
        generate_name: Option<String>,
        generation: Option<i64>,
        labels: Option<BTreeMap<String, String>>,
        name: Option<String>,
        namespace: Option<String>,
        owner_references: Option<Vec<OwnerReference>>,
        resource_version: Option<String>,
        self_link: Option<String>,
        uid: Option<String>,
    }
    let m = Lean::deserialize(d)?;
    Ok(ObjectMeta {
        annotations: m.annotations,
        creation_timestamp: m.creation_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        deletion_timestamp: m.deletion_timestamp,
        finalizers: m.finalizers,
        generate_name: m.generate_name,
        generation: m.generation,
        labels: m.labels,
        managed_fields: None,
        name: m.name,
        namespace: m.namespace,
        owner_references: m.owner_references,
        resource_version: m.resource_version,
        self_link: m.self_link,
        uid: m.uid,
    })
}

fn state_of(status: Option<&Value>) -> &str {
    status
        .and_then(|s| s.pointer("/applicationState/state"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn label_of<'a>(metadata: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// How a create ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The object is new.
    Created,
    /// It already existed for this job and attempt (a previous run created it).
    Adopted,
}

/// Why a create failed, split by what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The API server refused the object itself (invalid spec): retrying will not help.
    #[error("the application was refused as invalid: {0}")]
    Invalid(String),
    /// Admission refused it for now (quota exceeded, webhook): retry later.
    #[error("the application was refused for now: {0}")]
    Refused(String),
    /// An object with this name exists and belongs to something else.
    #[error("{0}")]
    NameTaken(String),
    /// The API server could not be reached or failed: retry with backoff.
    #[error("kubernetes API: {0}")]
    Transient(#[from] kube::Error),
}

/// Creates the application `rendered` (its JSON, as [`crate::spark_app`] renders it) in
/// `namespace`, or adopts the one a previous run created for the same job and attempt (the
/// name is deterministic, so a crash between create and record cannot duplicate). The rendered
/// JSON is sent as it is and the answer read as an [`ObservedApp`]: no typed copy either way.
pub async fn create_or_adopt(
    client: &kube::Client,
    namespace: &str,
    rendered: &Value,
) -> Result<Created, SubmitError> {
    let api: Api<ObservedApp> = Api::namespaced(client.clone(), namespace);
    let create = async {
        let body = serde_json::to_vec(rendered).map_err(kube::Error::SerdeError)?;
        let mut request = kube::core::Request::new(api.resource_url())
            .create(&PostParams::default(), body)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("create");
        client.request::<ObservedApp>(request).await
    };
    match create.await {
        Ok(_) => Ok(Created::Created),
        Err(kube::Error::Api(s)) if s.reason == "AlreadyExists" || s.code == 409 => {
            let name = rendered["metadata"]["name"].as_str().unwrap_or_default();
            let existing = api.get(name).await?;
            let wanted = |k: &str| rendered["metadata"]["labels"][k].as_str();
            let same = |k: &str| existing.label(k).is_some() && existing.label(k) == wanted(k);
            if same(JOB_ID_LABEL) && same(ATTEMPT_LABEL) {
                Ok(Created::Adopted)
            } else {
                Err(SubmitError::NameTaken(format!(
                    "a SparkApplication named {name:?} exists and does not belong to this job attempt"
                )))
            }
        }
        Err(kube::Error::Api(s)) if s.code == 422 || s.code == 400 => {
            Err(SubmitError::Invalid(s.message))
        }
        Err(kube::Error::Api(s)) if s.code == 403 => Err(SubmitError::Refused(s.message)),
        Err(e) => Err(SubmitError::Transient(e)),
    }
}

/// Deletes an application and, through owner references, its pods. Gone already is fine.
pub async fn delete(api: &Api<SparkApplication>, name: &str) -> Result<(), kube::Error> {
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Watch-fed caches of the orchestrator's applications and their pods.
#[derive(Clone)]
pub struct Observer {
    apps: Store<ObservedApp>,
    pods: Store<Pod>,
    /// Terminated containers seen on the watch, by (namespace, application): Spark deletes an
    /// executor pod as soon as it exits, often before any snapshot sees why it died.
    evidence: Arc<Evidence>,
}

/// Out-of-memory terminations by (namespace, application): (pod role, container).
type Evidence = Mutex<HashMap<(String, String), Vec<(String, ContainerObservation)>>>;

fn app_key(app: &ObservedApp) -> (String, String) {
    (
        app.metadata.namespace.clone().unwrap_or_default(),
        app.metadata.name.clone().unwrap_or_default(),
    )
}

impl Observer {
    /// Starts the watches (all namespaces, only objects the orchestrator manages); they stop
    /// with `token`. Watches recover on their own (relist after 410, backoff on errors).
    pub fn start(client: kube::Client, token: CancellationToken) -> Self {
        let (apps, apps_writer) = reflector::store();
        let (pods, pods_writer) = reflector::store();
        let app_api: Api<ObservedApp> = Api::all(client.clone());
        let pod_api: Api<Pod> = Api::all(client);
        let app_stream = reflector::reflector(
            apps_writer,
            watcher(
                app_api,
                watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
            )
            .default_backoff(),
        );
        let pod_stream = reflector::reflector(
            pods_writer,
            watcher(pod_api, watcher::Config::default().labels(JOB_ID_LABEL)).default_backoff(),
        );
        let evidence: Arc<Evidence> = Arc::default();
        let recorder = evidence.clone();
        let pod_stream = pod_stream.inspect(move |event| {
            if let Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) = event {
                record_terminations(&recorder, pod);
            }
        });
        tokio::spawn(drive(app_stream, token.clone(), "sparkapplications"));
        tokio::spawn(drive(pod_stream, token, "pods"));
        Self {
            apps,
            pods,
            evidence,
        }
    }

    /// Waits for both initial lists.
    pub async fn ready(&self) -> bool {
        self.apps.wait_until_ready().await.is_ok() && self.pods.wait_until_ready().await.is_ok()
    }

    /// The bound, still active pods of every managed application: (namespace, application) →
    /// (node, requests). What deleting the application would free, for preemption's choice.
    pub fn placed_pods(&self) -> HashMap<(String, String), Vec<(String, capacity::Resources)>> {
        let mut out: HashMap<(String, String), Vec<(String, capacity::Resources)>> = HashMap::new();
        for pod in self.pods.state() {
            if !capacity::convert::pod_is_active(&pod) {
                continue;
            }
            let (Some(ns), Some(app), Some(spec)) = (
                pod.metadata.namespace.as_ref(),
                pod.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("sparkoperator.k8s.io/app-name")),
                pod.spec.as_ref(),
            ) else {
                continue;
            };
            let Some(node) = spec.node_name.clone() else {
                continue;
            };
            out.entry((ns.clone(), app.clone()))
                .or_default()
                .push((node, capacity::convert::pod_requests(spec)));
        }
        out
    }

    /// Every managed application with what its pods say, grouped by application.
    pub fn snapshot(&self) -> Vec<(Arc<ObservedApp>, AppObservation)> {
        let mut by_app: BTreeMap<(String, String), Vec<Arc<Pod>>> = BTreeMap::new();
        for pod in self.pods.state() {
            let labels = pod.metadata.labels.as_ref();
            if let (Some(ns), Some(app)) = (
                &pod.metadata.namespace,
                labels.and_then(|l| l.get("sparkoperator.k8s.io/app-name")),
            ) {
                by_app
                    .entry((ns.clone(), app.clone()))
                    .or_default()
                    .push(pod);
            }
        }
        let mut evidence = self
            .evidence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let apps = self.apps.state();
        let names: std::collections::HashSet<(String, String)> =
            apps.iter().map(|a| app_key(a)).collect();
        evidence.retain(|k, _| names.contains(k));
        apps.into_iter()
            .map(|app| {
                let key = app_key(&app);
                let pods = by_app.remove(&key).unwrap_or_default();
                let mut obs = observe(&app, &pods);
                // Pods that died and were deleted still count, with how they died.
                for (role, container) in evidence.get(&key).into_iter().flatten() {
                    if role == "executor" {
                        obs.executors.push(PodObservation {
                            phase: PodPhase::Failed,
                            created: None,
                            scheduled: true,
                            containers: vec![container.clone()],
                        });
                    } else if let Some(driver) = obs.driver.as_mut() {
                        driver.containers.push(container.clone());
                    }
                }
                (app, obs)
            })
            .collect()
    }
}

async fn drive<S, T>(stream: S, token: CancellationToken, what: &'static str)
where
    S: futures::Stream<Item = Result<T, watcher::Error>>,
{
    let mut stream = std::pin::pin!(stream);
    loop {
        tokio::select! {
            _ = token.cancelled() => break,
            item = stream.next() => match item {
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::warn!(error = %e, what, "watch error; retrying with backoff"),
                None => break,
            },
        }
    }
}

/// Remembers a pod's out-of-memory terminations under its application.
fn record_terminations(evidence: &Evidence, pod: &Pod) {
    let observed = pod_observation(pod);
    let oom: Vec<ContainerObservation> = observed
        .containers
        .into_iter()
        .filter(|c| matches!(&c.terminated, Some((reason, code)) if reason == "OOMKilled" || *code == 137))
        .collect();
    if oom.is_empty() {
        return;
    }
    let labels = pod.metadata.labels.as_ref();
    let (Some(ns), Some(app)) = (
        pod.metadata.namespace.clone(),
        labels
            .and_then(|l| l.get("sparkoperator.k8s.io/app-name"))
            .cloned(),
    ) else {
        return;
    };
    let role = labels
        .and_then(|l| l.get("spark-role"))
        .cloned()
        .unwrap_or_default();
    let mut evidence = evidence
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seen = evidence.entry((ns, app)).or_default();
    for c in oom {
        if !seen.iter().any(|(r, s)| *r == role && *s == c) {
            seen.push((role.clone(), c));
        }
    }
}

/// What an application and its pods say.
pub fn observe(app: &ObservedApp, pods: &[Arc<Pod>]) -> AppObservation {
    let role = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("spark-role"))
            .cloned()
            .unwrap_or_default()
    };
    let error_message = app
        .status
        .as_ref()
        .and_then(|s| s.pointer("/applicationState/errorMessage"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    AppObservation {
        state: app.state().to_owned(),
        error_message,
        driver: pods
            .iter()
            .find(|p| role(p) == "driver")
            .map(|p| pod_observation(p)),
        executors: pods
            .iter()
            .filter(|p| role(p) == "executor")
            .map(|p| pod_observation(p))
            .collect(),
    }
}

fn pod_observation(pod: &Pod) -> PodObservation {
    let status = pod.status.as_ref();
    let containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = c.state.as_ref();
                    let terminated = state
                        .and_then(|s| s.terminated.as_ref())
                        .or_else(|| c.last_state.as_ref().and_then(|s| s.terminated.as_ref()))
                        .map(|t| (t.reason.clone().unwrap_or_default(), t.exit_code));
                    ContainerObservation {
                        waiting_reason: state
                            .and_then(|s| s.waiting.as_ref())
                            .and_then(|w| w.reason.clone()),
                        terminated,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    PodObservation {
        phase: PodPhase::parse(status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending")),
        scheduled: pod.spec.as_ref().is_some_and(|s| s.node_name.is_some()),
        created: pod.metadata.creation_timestamp.as_ref().and_then(|t| {
            chrono::DateTime::from_timestamp(
                t.0.as_second(),
                t.0.subsec_nanosecond().unsigned_abs(),
            )
        }),
        containers,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::Resource;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    use super::{ObservedApp, SparkApplication};

    #[test]
    fn an_observed_app_keeps_metadata_and_status_but_not_spec_or_field_ownership() {
        let metadata = json!({
            "name": "etl-1a2b3c4d5e", "namespace": "team-a", "uid": "0b1c", "resourceVersion": "42",
            "generation": 3, "creationTimestamp": "2026-12-07T04:00:00Z",
            "deletionTimestamp": "2026-12-07T05:00:00Z", "deletionGracePeriodSeconds": 30,
            "generateName": "etl-", "selfLink": "/x", "finalizers": ["f"],
            "labels": {"orchestrator.dev/job-id": "j"}, "annotations": {"a": "b"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u"}],
            "managedFields": [{"manager": "orchestrator", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:mainClass": {}}}}]
        });
        let app: ObservedApp = serde_json::from_value(json!({
            "apiVersion": SparkApplication::API_VERSION, "kind": "SparkApplication",
            "metadata": metadata, "spec": {"mainClass": "Main"},
            "status": {"applicationState": {"state": "RUNNING"}}
        }))
        .unwrap();
        let mut expected: ObjectMeta = serde_json::from_value(metadata).unwrap();
        assert!(expected.managed_fields.is_some());
        expected.managed_fields = None;
        assert_eq!(app.metadata, expected, "every field but managedFields");
        assert_eq!(app.state(), "RUNNING");
        assert_eq!(app.label("orchestrator.dev/job-id"), Some("j"));
    }

    #[test]
    fn api_version_is_group_and_version() {
        assert_eq!(
            SparkApplication::API_VERSION,
            format!("{}/{}", SparkApplication::GROUP, SparkApplication::VERSION)
        );
    }
}
