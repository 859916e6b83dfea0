//! The **dry-run** strategy: the snapshot verdict, then — only when the snapshot says the gang
//! fits — a server-side `dryRun=All` create of one pod per distinct shape of the gang, so that
//! admission (ResourceQuota incl. scoped quotas, LimitRange, validation, webhooks) gives its
//! verdict on exactly what Spark will create.
//!
//! **Dry-run does not schedule.** Admission runs, nothing is stored, the scheduler never sees
//! the pod: a successful dry-run says "the API server would accept these pods", not "they would
//! be bound". So it can only *refuse* a fit the snapshot found, never confirm one the snapshot
//! did not (node fit always comes from the snapshot). Quota admission also checks each pod
//! alone against current usage, not the gang's sum: the gang-level quota check stays the
//! snapshot's. Refusals map to verdicts by [`classify_refusal`]:
//!
//! | API answer | verdict |
//! |---|---|
//! | 403 `exceeded quota` — the pod alone is above the limit | `Never(ExceedsQuota)` |
//! | 403 `exceeded quota` — usage leaves no room now | `Wait(Quota)` |
//! | 403 `must specify …` (quota needs requests/limits the pod lacks), webhook denial | `Never(Invalid)` |
//! | 400 / 422 invalid | `Never(Invalid)` |
//! | other 403 (RBAC: the orchestrator may not create pods), 404, 409, 5xx, timeouts | `Err(Kube)` |

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use tracing::{Instrument, debug, info_span};

use crate::config::DryRunConfig;
use crate::fit::{fmt_amount, role_name};
use crate::model::{GangDemand, PodDemand};
use crate::podspec::{StandIn, stand_in_pod};
use crate::quantity::{parse_millis, parse_units};
use crate::snapshot::SnapshotChecker;
use crate::verdict::{NeverKind, NeverReason, Placement, Resource, Verdict, WaitKind, WaitReason};
use crate::view::ClusterView;
use crate::{CapacityChecker, Error, Result};

/// The dry-run strategy (see the module docs).
pub struct DryRunChecker {
    snapshot: Arc<SnapshotChecker>,
    config: DryRunConfig,
}

impl DryRunChecker {
    /// Dry-run confirmation on top of a snapshot checker (which must be running).
    pub fn new(snapshot: Arc<SnapshotChecker>, config: DryRunConfig) -> Self {
        DryRunChecker { snapshot, config }
    }

    async fn confirm(&self, demand: &GangDemand, placement: Placement) -> Result<Verdict> {
        let mut previous: Option<&PodDemand> = None;
        for (i, pod) in demand.pods.iter().enumerate() {
            if previous.is_some_and(|p| {
                p.requests == pod.requests
                    && p.node_selector == pod.node_selector
                    && p.tolerations == pod.tolerations
            }) {
                continue;
            }
            previous = Some(pod);
            let probe = stand_in_pod(
                pod,
                StandIn {
                    generate_name: Some("capacity-probe-".into()),
                    namespace: &demand.namespace,
                    image: &self.config.image,
                    ..Default::default()
                },
            );
            let api: Api<Pod> = Api::namespaced(self.snapshot.client().clone(), &demand.namespace);
            let params = PostParams {
                dry_run: true,
                field_manager: Some(self.config.field_manager.clone()),
            };
            match api.create(&params, &probe).await {
                Ok(_) => debug!(pod = i, "dry-run create admitted"),
                Err(kube::Error::Api(status)) => {
                    let who = role_name(pod.role);
                    return classify_refusal(status.code, &status.reason, &status.message, who);
                }
                Err(e) => return Err(Error::Kube(format!("dry-run create: {e}"))),
            }
        }
        Ok(Verdict::Fits(placement))
    }
}

/// What an API refusal of a dry-run create means for the gang (table in the module docs).
pub fn classify_refusal(code: u16, reason: &str, message: &str, who: &str) -> Result<Verdict> {
    let never = |status: u16, why: String| {
        Ok(Verdict::Never(NeverReason {
            kind: NeverKind::Invalid { status },
            message: why,
        }))
    };
    match code {
        403 if message.contains("exceeded quota") => Ok(quota_verdict(message, who)),
        403 if message.contains("must specify") || message.contains("admission webhook") => never(
            403,
            format!("the API server refuses the {who} pod: {message}"),
        ),
        400 | 422 => never(
            code,
            format!("the API server refuses the {who} pod as invalid: {message}"),
        ),
        _ => Err(Error::Kube(format!(
            "dry-run create of the {who} pod: {code} {reason}: {message}"
        ))),
    }
}

/// Parses `exceeded quota: q, requested: requests.cpu=2, used: requests.cpu=3, limited:
/// requests.cpu=4` into never (the pod alone is over) or wait (no room now).
fn quota_verdict(message: &str, who: &str) -> Verdict {
    let section = |start: &str, end: Option<&str>| -> Vec<(String, String)> {
        let Some(from) = message.find(start).map(|i| i + start.len()) else {
            return vec![];
        };
        let rest = &message[from..];
        let rest = end
            .and_then(|e| rest.find(e))
            .map_or(rest, |to| &rest[..to]);
        rest.split(',')
            .filter_map(|kv| kv.trim().split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let quota = message
        .split("exceeded quota: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("")
        .to_string();
    let requested = section("requested: ", Some(", used: "));
    let used = section("used: ", Some(", limited: "));
    let limited = section("limited: ", None);
    for (key, limit) in &limited {
        let resource = if key.contains("cpu") {
            Resource::Cpu
        } else if key.contains("memory") {
            Resource::Memory
        } else if key.ends_with("pods") {
            Resource::Pods
        } else {
            continue;
        };
        let parse = |v: &str| {
            if resource == Resource::Cpu {
                parse_millis(v)
            } else {
                parse_units(v)
            }
        };
        let value = |list: &[(String, String)]| {
            list.iter()
                .find(|(k, _)| k == key)
                .and_then(|(_, v)| parse(v))
                .unwrap_or(0)
        };
        let (req, use_, lim) = (value(&requested), value(&used), parse(limit).unwrap_or(0));
        if req.saturating_add(use_) <= lim {
            continue;
        }
        if req > lim {
            return Verdict::Never(NeverReason {
                kind: NeverKind::ExceedsQuota { resource },
                message: format!(
                    "the {who} pod alone requests {} {}, more than quota {quota} allows ({key} {})",
                    fmt_amount(resource, req),
                    resource.as_str(),
                    fmt_amount(resource, lim)
                ),
            });
        }
        return Verdict::Wait(WaitReason {
            kind: WaitKind::Quota {
                resource,
                short_by: (req + use_).saturating_sub(lim),
            },
            message: format!(
                "quota {quota} admission refuses the {who} pod now: {key} {} used of {}, the pod needs {}",
                fmt_amount(resource, use_),
                fmt_amount(resource, lim),
                fmt_amount(resource, req)
            ),
        });
    }
    // A quota on something we do not model (limits.*, ephemeral storage …): it may free up.
    Verdict::Wait(WaitReason {
        kind: WaitKind::NotConfirmed,
        message: format!("admission refuses the {who} pod now: {message}"),
    })
}

#[async_trait::async_trait]
impl CapacityChecker for DryRunChecker {
    fn name(&self) -> &'static str {
        "dry-run"
    }

    fn view(&self) -> Result<Arc<ClusterView>> {
        self.snapshot.view()
    }

    fn binding_placements(&self) -> bool {
        self.snapshot.binding_placements()
    }

    async fn check(&self, demand: &GangDemand) -> Result<Verdict> {
        let span = info_span!("capacity_check", strategy = "dry-run", gang = %demand.key, namespace = %demand.namespace);
        async {
            let _timer = self.snapshot.metrics().time_check("dry-run");
            let result = match self.snapshot.verdict(demand) {
                Ok(Verdict::Fits(placement)) => self.confirm(demand, placement).await,
                other => other,
            };
            self.snapshot.record("dry-run", &result);
            result
        }
        .instrument(span)
        .await
    }

    fn reserve(&self, demand: &GangDemand, placement: &Placement) {
        self.snapshot.reserve(demand, placement);
    }

    fn release(&self, key: &str) {
        self.snapshot.release(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(v: &Result<Verdict>) -> String {
        match v {
            Ok(Verdict::Fits(_)) => "fits".into(),
            Ok(Verdict::Wait(w)) => format!("wait:{}", w.kind.code()),
            Ok(Verdict::Never(n)) => format!("never:{}", n.kind.code()),
            Err(e) => format!("error:{}", e.metric_label()),
        }
    }

    #[test]
    fn refusals_become_verdicts() {
        let quota = |req: &str, used: &str, lim: &str| {
            format!(
                "pods \"capacity-probe-x\" is forbidden: exceeded quota: compute, requested: requests.cpu={req}, used: requests.cpu={used}, limited: requests.cpu={lim}"
            )
        };
        let cases = [
            (403, "Forbidden", quota("2", "3", "4"), "wait:quota"),
            (403, "Forbidden", quota("5", "0", "4"), "never:exceeds-quota"),
            (403, "Forbidden", "pods \"x\" is forbidden: failed quota: q: must specify limits.cpu for: pause".to_string(), "never:invalid"),
            (403, "Forbidden", "admission webhook \"policy.example\" denied the request: no".to_string(), "never:invalid"),
            (403, "Forbidden", "pods is forbidden: User \"orchestrator\" cannot create resource \"pods\"".to_string(), "error:kube"),
            (422, "Invalid", "Pod \"x\" is invalid: spec.containers[0].image: Required value".to_string(), "never:invalid"),
            (400, "BadRequest", "bad".to_string(), "never:invalid"),
            (500, "InternalError", "boom".to_string(), "error:kube"),
            (404, "NotFound", "namespaces \"x\" not found".to_string(), "error:kube"),
            (
                403,
                "Forbidden",
                "pods \"x\" is forbidden: exceeded quota: q, requested: limits.ephemeral-storage=1Gi, used: limits.ephemeral-storage=9Gi, limited: limits.ephemeral-storage=10Gi".to_string(),
                "wait:not-confirmed",
            ),
        ];
        for (status, reason, message, want) in cases {
            assert_eq!(
                code(&classify_refusal(status, reason, &message, "executor")),
                want,
                "{message}"
            );
        }
    }

    #[test]
    fn quota_refusal_says_how_short() {
        let msg = "pods \"p\" is forbidden: exceeded quota: compute, requested: requests.memory=2Gi, used: requests.memory=7Gi,requests.cpu=1, limited: requests.cpu=8,requests.memory=8Gi";
        let Ok(Verdict::Wait(w)) = classify_refusal(403, "Forbidden", msg, "driver") else {
            panic!("wait")
        };
        assert_eq!(
            w.kind,
            WaitKind::Quota {
                resource: Resource::Memory,
                short_by: 1 << 30
            }
        );
        assert_eq!(
            w.message,
            "quota compute admission refuses the driver pod now: requests.memory 7Gi used of 8Gi, the pod needs 2Gi"
        );
    }
}
