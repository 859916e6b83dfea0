//! How far a submitted application's pods have come — driver pending or running, executors
//! running — read from the pods the cache already watches, so `GET /v1/jobs/{id}` and
//! `orchestrator jobs watch` can say it on every replica, leader or not, without asking the
//! API server.

use serde::Serialize;

use crate::cache::Cache;
use crate::model::PodRole;

/// The label the Spark Operator puts on an application's driver and executor pods.
pub const APP_NAME_LABEL: &str = "sparkoperator.k8s.io/app-name";

/// Where the driver pod is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriverState {
    /// Created, not running yet (waiting for a node, pulling its image).
    Pending,
    /// Running.
    Running,
    /// Finished (succeeded or failed).
    Ended,
}

/// An application's pods as the cache sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodProgress {
    /// The driver, once its pod exists.
    pub driver: Option<DriverState>,
    /// Executor pods running.
    pub executors_running: u32,
    /// Executor pods not finished (running or pending).
    pub executors_active: u32,
}

impl Cache {
    /// The pods of application `app` in `namespace` (one walk over the cached pods).
    pub fn app_pods(&self, namespace: &str, app: &str) -> PodProgress {
        let mut progress = PodProgress::default();
        for p in self.pods() {
            if p.namespace != namespace
                || p.labels.get(APP_NAME_LABEL).map(String::as_str) != Some(app)
            {
                continue;
            }
            match p.role {
                Some(PodRole::Driver) => {
                    progress.driver = Some(match (p.active, p.running) {
                        (false, _) => DriverState::Ended,
                        (true, true) => DriverState::Running,
                        (true, false) => DriverState::Pending,
                    });
                }
                Some(PodRole::Executor) if p.active => {
                    progress.executors_active += 1;
                    progress.executors_running += u32::from(p.running);
                }
                _ => {}
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use k8s_openapi::api::core::v1::{Pod, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::cache::{Kind, PodRecord};
    use crate::ledger::Ledger;

    fn pod(ns: &str, app: &str, role: &str, phase: &str) -> (String, PodRecord) {
        let labels = BTreeMap::from([
            (APP_NAME_LABEL.to_owned(), app.to_owned()),
            ("spark-role".to_owned(), role.to_owned()),
        ]);
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(format!("{app}-{role}-{phase}-{}", uuid_ish())),
                namespace: Some(ns.into()),
                labels: Some(labels),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
            ..Pod::default()
        };
        PodRecord::from_pod(pod, "spark-role")
    }

    fn uuid_ish() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn an_applications_pods_are_counted_by_role_and_phase() {
        let mut cache = Cache::new(
            "pool",
            "spark-role",
            vec![],
            Ledger::new(Duration::from_secs(60)),
        );
        cache.replace_pods([
            pod("team-a", "etl-1", "driver", "Running"),
            pod("team-a", "etl-1", "executor", "Running"),
            pod("team-a", "etl-1", "executor", "Running"),
            pod("team-a", "etl-1", "executor", "Pending"),
            pod("team-a", "etl-1", "executor", "Failed"),
            // Another application, and the same name in another namespace.
            pod("team-a", "etl-2", "executor", "Running"),
            pod("team-b", "etl-1", "executor", "Running"),
        ]);
        cache.mark_synced(Kind::Pods);
        let cases = [
            (
                ("team-a", "etl-1"),
                PodProgress {
                    driver: Some(DriverState::Running),
                    executors_running: 2,
                    executors_active: 3,
                },
            ),
            (
                ("team-a", "etl-2"),
                PodProgress {
                    driver: None,
                    executors_running: 1,
                    executors_active: 1,
                },
            ),
            (("team-a", "absent"), PodProgress::default()),
        ];
        for ((ns, app), expected) in cases {
            assert_eq!(cache.app_pods(ns, app), expected, "{ns}/{app}");
        }
        for (phase, state) in [
            ("Pending", DriverState::Pending),
            ("Succeeded", DriverState::Ended),
            ("Failed", DriverState::Ended),
        ] {
            cache.replace_pods([pod("team-a", "etl-3", "driver", phase)]);
            assert_eq!(
                cache.app_pods("team-a", "etl-3").driver,
                Some(state),
                "{phase}"
            );
        }
    }
}
