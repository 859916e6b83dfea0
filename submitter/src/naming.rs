//! Names and labels of what the orchestrator creates: deterministic from the job and attempt,
//! so a crash between creating an application and recording it leads to adoption, never a
//! second application.

use std::collections::BTreeMap;

use jobs::LABEL_DOMAIN;
use jobs::model::Job;

/// Label holding the job id on the SparkApplication and (through the operator) its pods.
pub const JOB_ID_LABEL: &str = "spark-orchestrator.dev/job-id";
/// Label holding the attempt number.
pub const ATTEMPT_LABEL: &str = "spark-orchestrator.dev/attempt";
/// Label holding the queue level.
pub const PRIORITY_LABEL: &str = "spark-orchestrator.dev/priority";
/// Label holding the job's namespace (also the object's namespace; kept for cross-namespace queries).
pub const NAMESPACE_LABEL: &str = "spark-orchestrator.dev/namespace";
/// Label holding the job name.
pub const JOB_NAME_LABEL: &str = "spark-orchestrator.dev/job-name";
/// Marks objects the orchestrator manages.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "spark-orchestrator";

const _: () = assert!(JOB_ID_LABEL.len() > LABEL_DOMAIN.len());

/// The SparkApplication name for a job's attempt: `<name>-<10 hex of the id>` on the first
/// attempt, `-<attempt>` appended after; a DNS-1035 label (starts with a letter, ≤ 63).
pub fn app_name(job: &Job, attempt: u32) -> String {
    let suffix = if attempt <= 1 {
        format!("-{}", job.id.short())
    } else {
        format!("-{}-{attempt}", job.id.short())
    };
    let mut base = if job.name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("j{}", job.name)
    } else {
        job.name.clone()
    };
    base.truncate(63 - suffix.len());
    let base = base.trim_end_matches('-');
    format!("{base}{suffix}")
}

/// Labels on the application (and, through the operator, on its pods): the job's tags plus
/// the orchestrator's own.
pub fn labels(job: &Job, attempt: u32) -> BTreeMap<String, String> {
    let mut labels = job.tags.clone();
    labels.extend(pod_selector(job, attempt));
    labels.insert(PRIORITY_LABEL.into(), job.priority.as_str().into());
    labels.insert(NAMESPACE_LABEL.into(), job.namespace.clone());
    labels.insert(JOB_NAME_LABEL.into(), job.name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    labels
}

/// The labels that identify one attempt's pods (what the capacity ledger waits for).
pub fn pod_selector(job: &Job, attempt: u32) -> BTreeMap<String, String> {
    BTreeMap::from([
        (JOB_ID_LABEL.to_owned(), job.id.to_string()),
        (ATTEMPT_LABEL.to_owned(), attempt.to_string()),
    ])
}

/// Key of a job attempt's capacity demand and reservation.
pub fn demand_key(job: &Job, attempt: u32) -> String {
    demand_key_of(job.id, attempt)
}

/// [`demand_key`] from the id alone (preemption knows a victim by its running record).
pub fn demand_key_of(id: jobs::JobId, attempt: u32) -> String {
    format!("{id}/{attempt}")
}
