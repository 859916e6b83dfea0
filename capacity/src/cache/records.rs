//! What the cache keeps of each watched object, and the small types its readers get back.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::convert::{pod_is_active, pod_requests, pod_role};
use crate::model::{PodRole, Resources};

/// What the cache keeps of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRecord {
    /// Namespace.
    pub namespace: String,
    /// `spec.nodeName`.
    pub node: Option<String>,
    /// Effective request.
    pub requests: Resources,
    /// Not terminal.
    pub active: bool,
    /// Phase `Running` (for an application's progress, [`crate::progress`]).
    pub running: bool,
    /// Labels (for converting reservations).
    pub labels: BTreeMap<String, String>,
    /// Spark role, when labelled.
    pub role: Option<PodRole>,
}

impl PodRecord {
    /// The record of a pod and its key (uid, or `namespace/name` without one). Takes the pod
    /// by value to move its labels rather than copy them.
    pub fn from_pod(mut pod: Pod, role_label: &str) -> (String, PodRecord) {
        let namespace = pod.metadata.namespace.take().unwrap_or_default();
        let key = pod.metadata.uid.take().unwrap_or_else(|| {
            format!("{namespace}/{}", pod.metadata.name.as_deref().unwrap_or(""))
        });
        let labels = pod.metadata.labels.take().unwrap_or_default();
        let active = pod_is_active(&pod);
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        let spec = pod.spec.unwrap_or_default();
        let record = PodRecord {
            role: pod_role(&labels, role_label),
            requests: pod_requests(&spec),
            node: spec.node_name.filter(|n| !n.is_empty()),
            active,
            running,
            labels,
            namespace,
        };
        (key, record)
    }
}

/// A ResourceQuota's `(namespace, name)`.
pub type QuotaKey = (String, String);

/// A quota as the cache keeps it: its key and hard limits (`None`: not one we model).
pub type QuotaEntry = (QuotaKey, Option<Resources>);

/// The three watched kinds (for readiness).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nodes.
    Nodes,
    /// Pods.
    Pods,
    /// ResourceQuotas.
    Quotas,
}

impl Kind {
    /// Metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nodes => "nodes",
            Kind::Pods => "pods",
            Kind::Quotas => "resourcequotas",
        }
    }
}

/// Allocatable and requested of one pool (for gauges).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolTotals {
    /// Sum of allocatable.
    pub allocatable: Resources,
    /// Sum of requested (pods only, no reservations).
    pub requested: Resources,
    /// Nodes.
    pub nodes: u32,
}
