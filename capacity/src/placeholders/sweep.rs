//! Deleting placeholders: one attempt's objects on request, and the sweeper that removes
//! what a crashed process left (labels + age).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams};
use kube::{Api, ResourceExt};
use tracing::{debug, warn};

use super::{ATTEMPT_LABEL, Cleanup, MANAGED_BY_LABEL, PLACEHOLDER_LABEL, PlaceholderChecker};
use crate::Result;

/// Age of an object from its `creationTimestamp` (zero when unknown or in the future).
pub(super) fn age(created: Option<&Time>, now: SystemTime) -> Duration {
    let Some(created) = created else {
        return Duration::ZERO;
    };
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = u64::try_from(created.0.as_second()).unwrap_or(0);
    let created = Duration::from_secs(secs)
        + Duration::from_nanos(u64::try_from(created.0.subsec_nanosecond()).unwrap_or(0));
    now.saturating_sub(created)
}

fn delete_now() -> DeleteParams {
    DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    }
}

impl PlaceholderChecker {
    /// Deletes one attempt: its pods (explicitly, not waiting for GC) and its owner Lease.
    pub(super) async fn cleanup(&self, c: Cleanup) {
        let client = self.snapshot.client().clone();
        let selector =
            ListParams::default().labels(&format!("{ATTEMPT_LABEL}={}", c.attempt.nonce));
        let pods: Api<Pod> = Api::namespaced(client.clone(), &c.attempt.namespace);
        match pods.delete_collection(&delete_now(), &selector).await {
            Ok(_) => self
                .snapshot
                .metrics()
                .placeholders_deleted(c.reason, c.attempt.pods as u64),
            Err(e) => {
                warn!(error = %e, lease = %c.attempt.lease, "deleting placeholder pods failed; GC or the sweeper will")
            }
        }
        let leases: Api<Lease> = Api::namespaced(client, &c.attempt.namespace);
        match leases
            .delete(&c.attempt.lease, &DeleteParams::background())
            .await
        {
            Ok(_) => debug!(lease = %c.attempt.lease, reason = c.reason, "placeholders deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                warn!(error = %e, lease = %c.attempt.lease, "deleting placeholder owner failed; the sweeper will")
            }
        }
    }

    /// Deletes placeholder pods and owner Leases of this installation older than `max_age`
    /// that no check of this process holds. Returns how many objects it deleted.
    pub(super) async fn sweep(&self) -> Result<usize> {
        let client = self.snapshot.client().clone();
        let selector = format!(
            "{PLACEHOLDER_LABEL}=true,{MANAGED_BY_LABEL}={}",
            self.config.managed_by
        );
        let params = ListParams::default().labels(&selector);
        let held: HashSet<String> = self.lock().values().map(|(a, _)| a.nonce.clone()).collect();
        let now = SystemTime::now();
        let orphan = |labels: &std::collections::BTreeMap<String, String>,
                      created: Option<&Time>| {
            labels.get(ATTEMPT_LABEL).is_none_or(|n| !held.contains(n))
                && age(created, now) > self.config.max_age
        };
        let mut deleted = 0usize;
        let pods: Api<Pod> = Api::all(client.clone());
        for p in pods.list(&params).await? {
            if !orphan(p.labels(), p.metadata.creation_timestamp.as_ref()) {
                continue;
            }
            let api: Api<Pod> = Api::namespaced(client.clone(), &p.namespace().unwrap_or_default());
            match api.delete(&p.name_any(), &delete_now()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    warn!(error = %e, pod = %p.name_any(), "sweeping a placeholder pod failed")
                }
            }
        }
        if deleted > 0 {
            self.snapshot
                .metrics()
                .placeholders_deleted("sweep", deleted as u64);
        }
        let leases: Api<Lease> = Api::all(client.clone());
        for l in leases.list(&params).await? {
            if !orphan(l.labels(), l.metadata.creation_timestamp.as_ref()) {
                continue;
            }
            let api: Api<Lease> =
                Api::namespaced(client.clone(), &l.namespace().unwrap_or_default());
            match api.delete(&l.name_any(), &DeleteParams::background()).await {
                Ok(_) => deleted += 1,
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    warn!(error = %e, lease = %l.name_any(), "sweeping a placeholder owner failed")
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_from_creation_timestamps() {
        let created = Time(k8s_openapi::jiff::Timestamp::from_second(1_000).unwrap());
        let now = UNIX_EPOCH + Duration::from_secs(1_090);
        assert_eq!(age(Some(&created), now), Duration::from_secs(90));
        assert_eq!(
            age(Some(&created), UNIX_EPOCH),
            Duration::ZERO,
            "clock skew: not negative"
        );
        assert_eq!(age(None, now), Duration::ZERO);
    }
}
