//! The admin API under `/sim/…` (clock speed, clock jumps, fault injection, watch
//! drops, forced 410s, node cordon/removal, pool scaling, stats). Each operation is a
//! plain function over the cluster so [`crate::SimHandle`] offers the same controls.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{self, Sub, WriteOpts};
use crate::cluster::{self, Cluster, Shared};
use crate::error::ApiError;
use crate::faults::{ErrorRule, FaultConfig};
use crate::resources::{ALL, Res};
use crate::server::{error_response, json_response};

/// Routes of the admin API.
pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/sim/stats", get(stats_h))
        .route("/sim/speed", get(speed_get).put(speed_put))
        .route("/sim/clock/advance", post(advance_h))
        .route(
            "/sim/faults",
            get(faults_get).put(faults_put).delete(faults_clear),
        )
        .route("/sim/faults/errors", post(faults_add_error))
        .route("/sim/watches/drop", post(drop_h))
        .route("/sim/watches/expire", post(expire_h))
        .route("/sim/nodes/{name}/cordon", post(cordon_h))
        .route("/sim/nodes/{name}/uncordon", post(uncordon_h))
        .route("/sim/nodes/{name}", delete(delete_node_h))
        .route("/sim/pools/{pool}/scale", post(scale_h))
        .route("/sim/access", get(access_get).delete(access_clear))
        .route("/sim/access/grants", get(grants_get))
}

fn ok(v: Value) -> Response {
    json_response(
        200,
        serde_json::to_vec(&v).unwrap_or_default(),
        "application/json",
    )
}

fn parse<T: for<'de> Deserialize<'de>>(body: &str) -> Result<T, ApiError> {
    let body = if body.trim().is_empty() { "{}" } else { body };
    serde_json::from_str(body)
        .map_err(|e| ApiError::bad_request(format!("invalid admin request: {e}")))
}

/// Simulator statistics.
pub fn stats(shared: &Shared) -> Value {
    let c = shared.lock();
    let mut objects = serde_json::Map::new();
    for r in ALL {
        let d = r.def();
        let key = if d.group.is_empty() {
            d.plural.to_string()
        } else {
            format!("{}.{}", d.plural, d.group)
        };
        objects.insert(key, json!(c.store.count(r.storage())));
    }
    let ws = &shared.watch_stats;
    json!({
        "simTimeSeconds": c.clock.now().as_secs_f64(),
        "speed": c.clock.speed(),
        "resourceVersion": c.store.rv().to_string(),
        "objects": objects,
        "pendingPods": c.ctl.scheduler.pending(),
        "watches": {
            "open": ws.open.load(Ordering::Relaxed),
            "started": ws.started.load(Ordering::Relaxed),
            "events": ws.events.load(Ordering::Relaxed),
            "dropped": ws.dropped.load(Ordering::Relaxed),
        },
        "requests": c.faults.requests,
        "faultsInjected": c.faults.injected_total,
        "forcedGonePending": c.faults.forced_gone,
    })
}

/// Change the clock speed.
pub fn set_speed(c: &mut Cluster, speed: f64) -> Result<(), ApiError> {
    if !(speed > 0.0 && speed.is_finite()) {
        return Err(ApiError::bad_request(format!(
            "speed must be a positive number, got {speed}"
        )));
    }
    c.clock.set_speed(speed);
    Ok(())
}

/// Jump the simulated clock forward.
pub fn advance(c: &mut Cluster, by: Duration) {
    c.clock.advance(by);
}

/// Close every open watch now.
pub fn drop_watches(shared: &Shared) {
    shared.drop_watches.send_modify(|g| *g += 1);
}

/// Set (or clear) a node's `spec.unschedulable`.
pub fn set_unschedulable(c: &mut Cluster, node: &str, unschedulable: bool) -> Result<(), ApiError> {
    let cur = api::get(c, Res::Node, "", node)?;
    let mut v = cur.value.clone();
    let spec = crate::object::obj_field_mut(&mut v, "spec");
    if unschedulable {
        spec.insert("unschedulable".into(), json!(true));
    } else {
        spec.remove("unschedulable");
    }
    let taint = json!({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": crate::object::time(crate::object::now())});
    let taints = spec.entry("taints").or_insert(json!([]));
    if let Value::Array(ts) = taints {
        ts.retain(|t| {
            t.get("key").and_then(Value::as_str) != Some("node.kubernetes.io/unschedulable")
        });
        if unschedulable {
            ts.push(taint);
        }
        if ts.is_empty() {
            spec.remove("taints");
        }
    }
    api::commit(
        c,
        Res::Node,
        &cur,
        v,
        Sub::Main,
        &WriteOpts::internal("kube-sim-admin"),
    )?;
    Ok(())
}

/// Delete a node (its pods go with it).
pub fn delete_node(c: &mut Cluster, node: &str) -> Result<(), ApiError> {
    api::get(c, Res::Node, "", node)?;
    c.store.remove(Res::Node, "", node);
    Ok(())
}

/// Grow or shrink a configured pool to `count` nodes.
pub fn scale_pool(c: &mut Cluster, pool: &str, count: usize) -> Result<usize, ApiError> {
    let cfg = c
        .cfg
        .pools
        .iter()
        .find(|p| p.name == pool)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(404, "NotFound", format!("pool {pool:?} is not configured"))
        })?;
    let mut existing: Vec<String> = c
        .store
        .iter(Res::Node, None, None)
        .filter(|n| n.labels.get("kube-sim.dev/pool").map(String::as_str) == Some(pool))
        .map(|n| n.key.1.clone())
        .collect();
    existing.sort();
    let mut i = 0;
    while existing.len() < count {
        let name = cluster::node_name(pool, i);
        if !existing.contains(&name) {
            api::create(
                c,
                Res::Node,
                "",
                cluster::node_object(&cfg, i, c.store.count(Res::Node) + i),
                &WriteOpts::internal("kube-sim-admin"),
            )?;
            existing.push(name);
        }
        i += 1;
    }
    while existing.len() > count {
        if let Some(name) = existing.pop() {
            c.store.remove(Res::Node, "", &name);
        }
    }
    Ok(existing.len())
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SpeedBody {
    speed: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdvanceBody {
    #[serde(default)]
    seconds: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DropBody {
    #[serde(default)]
    after_events: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpireBody {
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleBody {
    count: usize,
}

async fn stats_h(State(s): State<Arc<Shared>>) -> Response {
    ok(stats(&s))
}

async fn speed_get(State(s): State<Arc<Shared>>) -> Response {
    ok(json!({"speed": s.lock().clock.speed()}))
}

async fn speed_put(State(s): State<Arc<Shared>>, body: String) -> Response {
    let r =
        parse::<SpeedBody>(&body).and_then(|b| set_speed(&mut s.lock(), b.speed).map(|_| b.speed));
    match r {
        Ok(speed) => ok(json!({"speed": speed})),
        Err(e) => error_response(&e),
    }
}

async fn advance_h(State(s): State<Arc<Shared>>, body: String) -> Response {
    match parse::<AdvanceBody>(&body) {
        Ok(b) if b.seconds >= 0.0 && b.seconds.is_finite() => {
            let now = {
                let mut c = s.lock();
                advance(&mut c, Duration::from_secs_f64(b.seconds));
                c.clock.now().as_secs_f64()
            };
            s.wake.notify_one();
            ok(json!({"simTimeSeconds": now}))
        }
        Ok(_) => error_response(&ApiError::bad_request(
            "seconds must be a non-negative number",
        )),
        Err(e) => error_response(&e),
    }
}

async fn faults_get(State(s): State<Arc<Shared>>) -> Response {
    ok(serde_json::to_value(&s.lock().faults.config).unwrap_or(Value::Null))
}

async fn faults_put(State(s): State<Arc<Shared>>, body: String) -> Response {
    match parse::<FaultConfig>(&body)
        .and_then(|f| f.validate().map(|_| f).map_err(ApiError::bad_request))
    {
        Ok(f) => {
            s.lock().faults.set(f.clone());
            ok(serde_json::to_value(f).unwrap_or(Value::Null))
        }
        Err(e) => error_response(&e),
    }
}

async fn faults_clear(State(s): State<Arc<Shared>>) -> Response {
    let mut c = s.lock();
    c.faults.set(FaultConfig::default());
    c.faults.forced_gone = 0;
    ok(json!({}))
}

async fn faults_add_error(State(s): State<Arc<Shared>>, body: String) -> Response {
    match parse::<ErrorRule>(&body) {
        Ok(rule) => {
            let mut c = s.lock();
            let mut cfg = c.faults.config.clone();
            cfg.errors.push(rule);
            if let Err(e) = cfg.validate() {
                return error_response(&ApiError::bad_request(e));
            }
            c.faults.set(cfg.clone());
            ok(serde_json::to_value(cfg).unwrap_or(Value::Null))
        }
        Err(e) => error_response(&e),
    }
}

async fn drop_h(State(s): State<Arc<Shared>>, body: String) -> Response {
    match parse::<DropBody>(&body) {
        Ok(DropBody {
            after_events: Some(n),
        }) => {
            s.lock().faults.config.drop_watches_after = Some(n);
            ok(json!({"dropWatchesAfter": n}))
        }
        Ok(DropBody { after_events: None }) => {
            drop_watches(&s);
            ok(json!({"dropped": true}))
        }
        Err(e) => error_response(&e),
    }
}

async fn expire_h(State(s): State<Arc<Shared>>, body: String) -> Response {
    match parse::<ExpireBody>(&body) {
        Ok(b) => {
            s.lock().faults.forced_gone += b.count;
            ok(json!({"forcedGone": b.count}))
        }
        Err(e) => error_response(&e),
    }
}

async fn cordon_h(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let r = set_unschedulable(&mut s.lock(), &name, true);
    s.wake.notify_one();
    r.map(|_| ok(json!({"node": name, "unschedulable": true})))
        .unwrap_or_else(|e| error_response(&e))
}

async fn uncordon_h(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let r = set_unschedulable(&mut s.lock(), &name, false);
    s.wake.notify_one();
    r.map(|_| ok(json!({"node": name, "unschedulable": false})))
        .unwrap_or_else(|e| error_response(&e))
}

async fn delete_node_h(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> Response {
    let r = delete_node(&mut s.lock(), &name);
    s.wake.notify_one();
    r.map(|_| ok(json!({"deleted": name})))
        .unwrap_or_else(|e| error_response(&e))
}

async fn scale_h(State(s): State<Arc<Shared>>, Path(pool): Path<String>, body: String) -> Response {
    let r = parse::<ScaleBody>(&body).and_then(|b| scale_pool(&mut s.lock(), &pool, b.count));
    s.wake.notify_one();
    r.map(|n| ok(json!({"pool": pool, "count": n})))
        .unwrap_or_else(|e| error_response(&e))
}

/// `GET /sim/access`: the access log (`[auth]` only; otherwise an empty list).
async fn access_get(State(shared): State<Arc<Shared>>) -> Response {
    let c = shared.lock();
    let log = c.auth.as_ref().map(|a| a.access_log()).unwrap_or_default();
    ok(json!({"enabled": c.auth.is_some(), "entries": log}))
}

/// `DELETE /sim/access`: forget the access log.
async fn access_clear(State(shared): State<Arc<Shared>>) -> Response {
    if let Some(a) = shared.lock().auth.as_mut() {
        a.clear_access_log();
    }
    ok(json!({}))
}

/// `GET /sim/access/grants?user=WHO`: what the RBAC objects grant WHO (a configured user,
/// `NS/NAME` or `system:serviceaccount:NS:NAME`), each with `used`.
async fn grants_get(
    State(shared): State<Arc<Shared>>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let who = q.get("user").map(String::as_str).unwrap_or("");
    let mut c = shared.lock();
    let c = &mut *c;
    let Some(auth) = c.auth.as_mut() else {
        return error_response(&ApiError::bad_request("[auth] is not configured"));
    };
    match auth.grants_of(&c.store, who) {
        Some(list) => {
            let grants: Vec<Value> = list
                .into_iter()
                .map(|(g, used)| {
                    let mut v = serde_json::to_value(g).unwrap_or(Value::Null);
                    v["used"] = json!(used);
                    v
                })
                .collect();
            ok(json!({"user": who, "grants": grants}))
        }
        None => error_response(&ApiError::new(
            404,
            "NotFound",
            format!("no [auth] user or service account {who:?}"),
        )),
    }
}
