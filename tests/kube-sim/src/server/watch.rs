//! Watch streams: newline-delimited JSON events over a chunked body, starting from a
//! resourceVersion (history replay), from "now" with synthetic ADDED events, or as a
//! streaming list (`sendInitialEvents`); BOOKMARKs, `410 Gone` as an ERROR event,
//! `timeoutSeconds`, selectors (objects leaving the selection are sent as DELETED),
//! and fault injection (forced 410, drop now, drop after N events).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api;
use crate::cluster::Shared;
use crate::error::ApiError;
use crate::resources::Res;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventType, Obj, WatchEvent};

use super::render::{self, Format};

/// Counters of watch activity.
#[derive(Debug, Default)]
pub struct WatchStats {
    /// Streams open now.
    pub open: AtomicU64,
    /// Streams opened so far.
    pub started: AtomicU64,
    /// Events written so far.
    pub events: AtomicU64,
    /// Streams closed by fault injection.
    pub dropped: AtomicU64,
}

/// A watch request.
#[derive(Debug, Clone)]
pub struct WatchReq {
    /// Resource.
    pub res: Res,
    /// Namespace (None: all).
    pub ns: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// `resourceVersion`.
    pub rv: Option<String>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// `sendInitialEvents`.
    pub initial_events: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// Output format.
    pub format: Format,
}

fn matches(req: &WatchReq, o: &Obj) -> bool {
    req.ns.as_ref().is_none_or(|n| &o.key.0 == n) && api::selected(o, &req.labels, &req.fields)
}

fn line(req: &WatchReq, etype: &str, o: &Obj) -> Bytes {
    let mut out = Vec::with_capacity(o.json.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(etype.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(&render::object_bytes(req.res, o, req.format));
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(req: &WatchReq, rv: u64, initial_end: bool) -> Bytes {
    let def = req.res.def();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let (kind, api_version) = match req.format {
        Format::Json => (def.kind.to_string(), def.api_version()),
        Format::Metadata => (
            "PartialObjectMetadata".to_string(),
            "meta.k8s.io/v1".to_string(),
        ),
        Format::Table => ("Table".to_string(), "meta.k8s.io/v1".to_string()),
    };
    let ev = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version, "metadata": meta}});
    let mut b = serde_json::to_vec(&ev).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

fn error_line(e: &ApiError) -> Bytes {
    let mut b =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.to_status()})).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// The line for an event, if this watch should see it.
fn event_line(req: &WatchReq, ev: &WatchEvent) -> Option<Bytes> {
    let now = matches(req, &ev.obj);
    let before = ev.prev.as_ref().is_some_and(|p| matches(req, p));
    match ev.etype {
        EventType::Added if now => Some(line(req, "ADDED", &ev.obj)),
        EventType::Modified if now && before => Some(line(req, "MODIFIED", &ev.obj)),
        EventType::Modified if now => Some(line(req, "ADDED", &ev.obj)),
        EventType::Modified if before => Some(line(req, "DELETED", &ev.obj)),
        EventType::Deleted if before || now => Some(line(req, "DELETED", &ev.obj)),
        _ => None,
    }
}

/// Start a watch; the response streams until timeout, drop or disconnect.
pub fn start(shared: Arc<Shared>, req: WatchReq) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut initial: Vec<Bytes> = Vec::new();
    let mut sub: Option<broadcast::Receiver<Arc<WatchEvent>>> = None;
    let drop_after;
    let bookmark_every;
    {
        let mut c = shared.lock();
        drop_after = c.faults.config.drop_watches_after;
        bookmark_every = c.cfg.simulation.bookmark_interval;
        if c.faults.forced_gone > 0 {
            c.faults.forced_gone -= 1;
            let rv = c.store.rv();
            initial.push(error_line(&ApiError::too_old(rv.saturating_sub(1), rv)));
        } else {
            let rv_param = req.rv.clone().unwrap_or_default();
            if rv_param.is_empty() || rv_param == "0" || req.initial_events {
                for o in c.store.iter(req.res.storage(), req.ns.as_deref(), None) {
                    if api::selected(o, &req.labels, &req.fields) {
                        initial.push(line(&req, "ADDED", o));
                    }
                }
                if req.initial_events && req.bookmarks {
                    initial.push(bookmark(&req, c.store.rv(), true));
                }
                sub = Some(c.store.kind(req.res.storage()).tx.subscribe());
            } else {
                match rv_param.parse::<u64>() {
                    Err(_) => initial.push(error_line(&ApiError::bad_request(format!(
                        "invalid resource version: {rv_param:?}"
                    )))),
                    Ok(n) => match c.store.events_since(req.res.storage(), n) {
                        Err(oldest) => initial.push(error_line(&ApiError::too_old(n, oldest))),
                        Ok(evs) => {
                            for ev in evs {
                                if let Some(l) = event_line(&req, &ev) {
                                    initial.push(l);
                                }
                            }
                            if req.initial_events && req.bookmarks {
                                initial.push(bookmark(&req, c.store.rv(), true));
                            }
                            sub = Some(c.store.kind(req.res.storage()).tx.subscribe());
                        }
                    },
                }
            }
        }
    }
    let content_type = req.format.content_type(false);
    let stats_shared = shared.clone();
    stats_shared
        .watch_stats
        .started
        .fetch_add(1, Ordering::Relaxed);
    stats_shared
        .watch_stats
        .open
        .fetch_add(1, Ordering::Relaxed);
    let mut drop_rx = shared.drop_watches.subscribe();
    drop_rx.mark_unchanged();
    tokio::spawn(async move {
        let stats = &shared.watch_stats;
        let mut sent: u64 = 0;
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(bookmark_every.max(Duration::from_millis(10)));
        tick.tick().await;
        'outer: {
            for l in initial {
                if tx.send(l).await.is_err() {
                    break 'outer;
                }
                sent += 1;
                stats.events.fetch_add(1, Ordering::Relaxed);
                if drop_after.is_some_and(|n| sent >= n) {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    break 'outer;
                }
            }
            let Some(mut rx) = sub else { break 'outer };
            loop {
                let sleep = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = sleep => break,
                    _ = drop_rx.changed() => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    _ = tx.closed() => break,
                    _ = tick.tick(), if req.bookmarks => {
                        let rv = {
                            let c = shared.lock();
                            rx.is_empty().then(|| c.store.rv())
                        };
                        if let Some(rv) = rv
                            && tx.send(bookmark(&req, rv, false)).await.is_err()
                        {
                            break;
                        }
                    }
                    ev = rx.recv() => {
                        match ev {
                            Ok(ev) => {
                                if let Some(l) = event_line(&req, &ev) {
                                    if tx.send(l).await.is_err() {
                                        break;
                                    }
                                    sent += 1;
                                    stats.events.fetch_add(1, Ordering::Relaxed);
                                    if drop_after.is_some_and(|n| sent >= n) {
                                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                }
                            }
                            // Too slow: close; the client resumes from its last version.
                            Err(_) => break,
                        }
                    }
                }
            }
        }
        stats.open.fetch_sub(1, Ordering::Relaxed);
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .header("cache-control", "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Shape of a watch ERROR line, for tests.
pub fn is_error_line(v: &Value) -> bool {
    v.get("type").and_then(Value::as_str) == Some("ERROR")
}
