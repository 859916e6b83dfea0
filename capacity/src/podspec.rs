//! Pod objects standing in for a gang's pods: the dry-run probes and the placeholders. Both
//! carry exactly the demand's requests (memory limit = request, as Spark sets it; no cpu
//! limit), node selector and tolerations, so admission and the scheduler judge the same shape
//! the real pod will have. They never carry the gang's own pod labels: a placeholder must not
//! be mistaken for a real pod of the gang by the ledger.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSpec, ResourceRequirements, Toleration as K8sToleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use crate::convert::taint_effect_name;
use crate::model::{PodDemand, Toleration};

/// The Kubernetes form of a toleration.
pub fn k8s_toleration(t: &Toleration) -> K8sToleration {
    K8sToleration {
        key: t.key.clone(),
        operator: Some(if t.exists { "Exists" } else { "Equal" }.to_string()),
        value: if t.exists { None } else { t.value.clone() },
        effect: t.effect.map(|e| taint_effect_name(e).to_string()),
        toleration_seconds: None,
    }
}

/// What else the stand-in pod needs.
#[derive(Debug, Clone, Default)]
pub struct StandIn<'a> {
    /// `metadata.name` (or `None` with `generate_name`).
    pub name: Option<String>,
    /// `metadata.generateName`.
    pub generate_name: Option<String>,
    /// Namespace.
    pub namespace: &'a str,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Container image.
    pub image: &'a str,
    /// `priorityClassName`.
    pub priority_class: Option<&'a str>,
    /// Owner references.
    pub owners: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

/// A pod with the demand's shape.
pub fn stand_in_pod(demand: &PodDemand, s: StandIn<'_>) -> Pod {
    let requests = BTreeMap::from([
        (
            "cpu".to_string(),
            Quantity(format!("{}m", demand.requests.cpu_millis)),
        ),
        (
            "memory".to_string(),
            Quantity(demand.requests.memory_bytes.to_string()),
        ),
    ]);
    let limits = BTreeMap::from([(
        "memory".to_string(),
        Quantity(demand.requests.memory_bytes.to_string()),
    )]);
    Pod {
        metadata: ObjectMeta {
            name: s.name,
            generate_name: s.generate_name,
            namespace: Some(s.namespace.to_string()),
            labels: Some(s.labels),
            owner_references: (!s.owners.is_empty()).then_some(s.owners),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "pause".into(),
                image: Some(s.image.to_string()),
                resources: Some(ResourceRequirements {
                    requests: Some(requests),
                    limits: Some(limits),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            node_selector: (!demand.node_selector.is_empty()).then(|| demand.node_selector.clone()),
            tolerations: (!demand.tolerations.is_empty())
                .then(|| demand.tolerations.iter().map(k8s_toleration).collect()),
            priority_class_name: s.priority_class.map(str::to_string),
            termination_grace_period_seconds: Some(0),
            automount_service_account_token: Some(false),
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::pod_requests;
    use crate::model::{PodRole, TaintEffect};
    use crate::testing::{gi, labels, pod, toleration};

    #[test]
    fn the_stand_in_has_the_demands_shape() {
        let mut d = pod(PodRole::Executor, 1500, gi(7));
        d.node_selector = labels(&[("pool", "spot")]);
        d.tolerations = vec![
            toleration(Some("spot"), Some("true"), Some(TaintEffect::NoSchedule)),
            toleration(None, None, None),
        ];
        let p = stand_in_pod(
            &d,
            StandIn {
                namespace: "ns",
                image: "pause",
                ..Default::default()
            },
        );
        let spec = p.spec.unwrap();
        assert_eq!(pod_requests(&spec), d.requests);
        assert_eq!(spec.node_selector, Some(d.node_selector.clone()));
        let t = spec.tolerations.unwrap();
        assert_eq!(t[0].operator.as_deref(), Some("Equal"));
        assert_eq!(t[0].value.as_deref(), Some("true"));
        assert_eq!(t[0].effect.as_deref(), Some("NoSchedule"));
        assert_eq!(
            (t[1].key.as_deref(), t[1].operator.as_deref()),
            (None, Some("Exists"))
        );
    }
}
