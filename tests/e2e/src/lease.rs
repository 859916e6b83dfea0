//! The daemon's leader Lease, held by the test as another replica would hold it. A daemon
//! started meanwhile is a standby: it runs everything but admission and cron, and its real
//! election code waits for the Lease to expire.
//!
//! The Lease lasts an hour, longer than any test, and is never renewed: a renewal that came
//! late on a loaded machine would let the standby lead early, behind the test's back. Letting
//! go deletes it; [`crate::world::World::start_submitter`] then restarts the daemon, which takes
//! the free Lease at once (a standby already asleep would wait out the hour).

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};

/// Who holds the Lease while the test does.
const HOLDER: &str = "e2e-test-standby-maker";
/// The Lease's duration: longer than any test.
const DURATION_SECONDS: i32 = 3600;

/// A Lease the test holds.
pub struct HeldLease {
    api: Api<Lease>,
    name: String,
}

impl HeldLease {
    /// Creates the Lease `namespace/name`, held by the test.
    pub async fn take(client: kube::Client, namespace: &str, name: &str) -> Self {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(HOLDER.to_owned()),
                lease_duration_seconds: Some(DURATION_SECONDS),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                ..LeaseSpec::default()
            }),
        };
        api.create(&PostParams::default(), &lease)
            .await
            .unwrap_or_else(|e| panic!("cannot take the Lease {namespace}/{name}: {e}"));
        Self {
            api,
            name: name.to_owned(),
        }
    }

    /// Deletes the Lease: the next replica to look takes it.
    pub async fn release(self) {
        self.api
            .delete(&self.name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("cannot release the Lease {}: {e}", self.name));
    }
}
