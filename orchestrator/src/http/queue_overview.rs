//! `GET /v1/queues`: for every (namespace, priority) queue the caller may see — depth
//! (queued, waiting), the oldest wait, and the first jobs in line with their waiting reasons.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use jobs::{JobId, JobState, Priority};
use queues::store::QueueStats;
use serde::{Deserialize, Serialize};

use super::auth::Role;
use super::error::{ApiError, Body as ErrorBody};
use super::extract::{Authed, QueryParams};
use super::jobs::listing_scope;
use super::state::ApiState;

/// Query of `GET /v1/queues`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueuesQuery {
    /// Only this namespace (default: every namespace the token may see); `422` when it is not
    /// served.
    #[param(
        pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        min_length = 1,
        max_length = 63
    )]
    namespace: Option<String>,
    /// Jobs shown per queue (0–100, default 5).
    #[param(minimum = 0, maximum = 100)]
    heads: Option<u32>,
}

/// One queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueView {
    /// Namespace.
    namespace: String,
    /// Level.
    priority: Priority,
    /// Jobs pending (`queued` + `waiting`).
    depth: u64,
    /// Jobs `queued`.
    queued: u64,
    /// Jobs `waiting`.
    waiting: u64,
    /// When the longest-waiting pending job became pending.
    #[schema(required)]
    oldest_queued_at: Option<DateTime<Utc>>,
    /// How long it has waited.
    #[schema(required)]
    oldest_wait_seconds: Option<f64>,
    /// The first jobs in line.
    heads: Vec<HeadView>,
}

/// A job near the front of its queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeadView {
    /// Id.
    id: JobId,
    /// Name.
    name: String,
    /// `queued` or `waiting`.
    state: JobState,
    /// 1 = head.
    position: u64,
    /// Current attempt.
    attempt: u32,
    /// When it became pending.
    queued_at: DateTime<Utc>,
    /// Why it waits (code).
    #[schema(required)]
    waiting_reason: Option<String>,
    /// Why it waits (sentence).
    #[schema(required)]
    waiting_message: Option<String>,
    /// When the leader's replay of the queue expects it to start.
    estimated_start_at: Option<DateTime<Utc>>,
}

/// The response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueList {
    /// Every served queue in scope, high before normal.
    queues: Vec<QueueView>,
}

/// `GET /v1/queues?namespace=&heads=`: every served queue in scope, high before normal,
/// empty ones included (depth 0).
#[utoipa::path(
    get, path = "/v1/queues", tag = "queues", operation_id = "listQueues",
    summary = "Depth, oldest wait and first jobs of every queue",
    description = "Requires the `read` role; a token limited to namespaces sees only theirs.",
    params(QueuesQuery),
    responses(
        (status = 200, description = "Every served queue in scope, high first.", body = QueueList),
        (status = 422, description = "The namespace is not served.", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<ApiState>,
    Authed(caller): Authed,
    QueryParams(q): QueryParams<QueuesQuery>,
) -> Result<Json<QueueList>, ApiError> {
    caller.require(Role::Read, None)?;
    let heads_per_queue = match q.heads {
        None => 5,
        Some(n) if n <= 100 => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "invalid-query",
                format!("heads {n} is out of range; use 0 to 100"),
            ));
        }
    };
    let scope = listing_scope(&state, &caller, q.namespace.as_deref())?;
    let namespaces: Vec<String> = match scope {
        Some(list) => list,
        None => state.catalog.namespace_names().map(str::to_owned).collect(),
    };
    let stats: HashMap<(String, Priority), QueueStats> = state
        .store
        .queue_stats()
        .await?
        .into_iter()
        .map(|s| ((s.namespace.clone(), s.priority), s))
        .collect();
    let mut heads: HashMap<(String, Priority), Vec<HeadView>> = HashMap::new();
    if heads_per_queue > 0 {
        let pending = state.store.pending_heads(heads_per_queue).await?;
        let ids: Vec<JobId> = pending.iter().map(|p| p.job.id).collect();
        let mut estimates = state.store.estimates(&ids).await?;
        for p in pending {
            heads
                .entry((p.job.namespace.clone(), p.job.priority))
                .or_default()
                .push(HeadView {
                    id: p.job.id,
                    name: p.job.name.clone(),
                    state: p.state,
                    position: p.position,
                    attempt: p.attempt,
                    queued_at: p.queued_at,
                    waiting_reason: p.waiting.as_ref().map(|w| w.code.clone()),
                    waiting_message: p.waiting.as_ref().map(|w| w.message.clone()),
                    estimated_start_at: estimates.remove(&p.job.id),
                });
        }
    }
    let now = Utc::now();
    let mut queues = Vec::new();
    for priority in [Priority::High, Priority::Normal] {
        for ns in &namespaces {
            let key = (ns.clone(), priority);
            let s = stats.get(&key);
            let oldest = s.and_then(|s| s.oldest_queued_at);
            queues.push(QueueView {
                namespace: ns.clone(),
                priority,
                queued: s.map_or(0, |s| s.queued),
                waiting: s.map_or(0, |s| s.waiting),
                depth: s.map_or(0, |s| s.queued + s.waiting),
                oldest_queued_at: oldest,
                oldest_wait_seconds: oldest
                    .map(|t| ((now - t).num_milliseconds().max(0) as f64) / 1000.0),
                heads: heads.remove(&key).unwrap_or_default(),
            });
        }
    }
    Ok(Json(QueueList { queues }))
}
