//! The daemon's leader Lease, held by the test as another replica would hold it: taken, then
//! renewed well within its short duration until released. A daemon started meanwhile is a
//! standby (it runs everything but admission and cron) and takes over once the renewals stop,
//! through its real election code.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Who holds the Lease while the test does.
const HOLDER: &str = "e2e-test-standby-maker";
/// The Lease's duration: the daemon waits this long after the last renewal.
const DURATION_SECONDS: i32 = 1;

/// A Lease the test holds.
pub struct HeldLease {
    token: CancellationToken,
    renewer: JoinHandle<()>,
}

impl HeldLease {
    /// Creates (or takes over) the Lease `namespace/name` and keeps it renewed.
    pub async fn take(client: kube::Client, namespace: &str, name: &str) -> Self {
        let api: Api<Lease> = Api::namespaced(client, namespace);
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(HOLDER.to_owned()),
                lease_duration_seconds: Some(DURATION_SECONDS),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                ..LeaseSpec::default()
            }),
        };
        match api.create(&PostParams::default(), &lease).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => renew(&api, name).await,
            Err(e) => panic!("cannot take the Lease {namespace}/{name}: {e}"),
        }
        let token = CancellationToken::new();
        let stop = token.clone();
        let name = name.to_owned();
        let renewer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => renew(&api, &name).await,
                }
            }
        });
        Self { token, renewer }
    }

    /// Stops renewing: the Lease expires within its duration and a standby takes it.
    pub async fn release(self) {
        self.token.cancel();
        let _ = self.renewer.await;
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

async fn renew(api: &Api<Lease>, name: &str) {
    let patch = json!({"spec": {
        "holderIdentity": HOLDER,
        "leaseDurationSeconds": DURATION_SECONDS,
        "renewTime": now(),
    }});
    if let Err(e) = api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        // A missed renewal only risks an early takeover, which the next tests would notice.
        eprintln!("renewing the held Lease {name}: {e}");
    }
}
