//! Response bodies: objects and lists as JSON (lists spliced from each object's cached
//! bytes), `PartialObjectMetadata[List]` when the client asks for metadata only, and
//! `meta.k8s.io/v1` Tables (what `kubectl get` prints) with the real column sets.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{Res, ResourceDef};
use crate::store::Obj;

/// What the `Accept` header asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain JSON.
    Json,
    /// `as=PartialObjectMetadata`.
    Metadata,
    /// `as=Table`.
    Table,
}

impl Format {
    /// From an `Accept` header.
    pub fn from_accept(accept: &str) -> Format {
        if accept.contains("as=Table") {
            Format::Table
        } else if accept.contains("as=PartialObjectMetadata") {
            Format::Metadata
        } else {
            Format::Json
        }
    }

    /// Response `Content-Type`.
    pub fn content_type(self, list: bool) -> &'static str {
        match (self, list) {
            (Format::Json, _) => "application/json",
            (Format::Metadata, false) => {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            }
            (Format::Metadata, true) => {
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            }
            (Format::Table, _) => "application/json;as=Table;g=meta.k8s.io;v=v1",
        }
    }
}

/// `PartialObjectMetadata` of an object.
pub fn metadata_only(v: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": v.get("metadata").cloned().unwrap_or(json!({}))})
}

/// One object in the requested format (`res` is the resource the client asked for).
pub fn object(res: Res, v: &Value, fmt: Format) -> Value {
    if res == Res::EventV1 && v.get("apiVersion").and_then(Value::as_str) == Some("v1") {
        return object(res, &crate::eventconv::core_to_v1(v), fmt);
    }
    match fmt {
        Format::Json => v.clone(),
        Format::Metadata => metadata_only(v),
        Format::Table => table(res.def(), std::slice::from_ref(v), None, None),
    }
}

/// One object's bytes in the requested format.
pub fn object_bytes(res: Res, o: &Obj, fmt: Format) -> Vec<u8> {
    match fmt {
        Format::Json if res != Res::EventV1 => o.json.to_vec(),
        _ => serde_json::to_vec(&object(res, &o.value, fmt)).unwrap_or_default(),
    }
}

/// A list body.
pub fn list(res: Res, items: &[Arc<Obj>], rv: u64, cont: Option<String>, fmt: Format) -> Vec<u8> {
    let def = res.def();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(c) = &cont {
        meta["continue"] = json!(c);
    }
    if res == Res::EventV1 {
        let values: Vec<Value> = items
            .iter()
            .map(|o| crate::eventconv::core_to_v1(&o.value))
            .collect();
        let v = match fmt {
            Format::Table => table(def, &values, Some(rv), cont),
            Format::Metadata => {
                json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "items": values.iter().map(metadata_only).collect::<Vec<_>>()})
            }
            Format::Json => {
                json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": meta, "items": values})
            }
        };
        return serde_json::to_vec(&v).unwrap_or_default();
    }
    match fmt {
        Format::Table => {
            let values: Vec<Value> = items.iter().map(|o| o.value.clone()).collect();
            serde_json::to_vec(&table(def, &values, Some(rv), cont)).unwrap_or_default()
        }
        Format::Metadata => {
            let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                "items": items.iter().map(|o| metadata_only(&o.value)).collect::<Vec<_>>()});
            serde_json::to_vec(&list).unwrap_or_default()
        }
        Format::Json => {
            let head =
                json!({"kind": def.list_kind(), "apiVersion": def.api_version(), "metadata": meta});
            let mut out = serde_json::to_vec(&head).unwrap_or_default();
            out.pop(); // the closing brace
            out.extend_from_slice(b",\"items\":[");
            for (i, o) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&o.json);
            }
            out.extend_from_slice(b"]}");
            out
        }
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// kubectl's `HumanDuration`.
pub fn human_age(ts: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(ts) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 600 => format!("{}m{}s", s / 60, s % 60),
        s if s < 3 * 3600 => format!("{}m", s / 60),
        s if s < 8 * 3600 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

fn age(v: &Value) -> Value {
    json!(human_age(s(v, "/metadata/creationTimestamp")))
}

fn pod_status(v: &Value) -> String {
    if v.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".into();
    }
    let mut reason = s(v, "/status/phase").to_string();
    if let Some(cs) = v
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
    {
        for c in cs {
            if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                reason = r.to_string();
            } else if let Some(r) = c
                .pointer("/state/terminated/reason")
                .and_then(Value::as_str)
            {
                reason = r.to_string();
            }
        }
    }
    reason
}

fn columns(def: &ResourceDef) -> Vec<(&'static str, &'static str, i32)> {
    match def.res {
        Res::Pod => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        Res::Node => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        Res::Namespace => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        Res::ResourceQuota => vec![
            ("Name", "string", 0),
            ("Age", "string", 0),
            ("Request", "string", 0),
            ("Limit", "string", 0),
        ],
        Res::Event | Res::EventV1 => vec![
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        Res::PriorityClass => vec![
            ("Name", "string", 0),
            ("Value", "integer", 0),
            ("Global-Default", "boolean", 0),
            ("Age", "string", 0),
            ("Preemption Policy", "string", 0),
        ],
        Res::Lease => vec![
            ("Name", "string", 0),
            ("Holder", "string", 0),
            ("Age", "string", 0),
        ],
        Res::Role | Res::ClusterRole => vec![("Name", "string", 0), ("Created At", "date", 0)],
        Res::RoleBinding | Res::ClusterRoleBinding => vec![
            ("Name", "string", 0),
            ("Role", "string", 0),
            ("Age", "string", 0),
        ],
        Res::SparkApplication => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Attempts", "integer", 0),
            ("Start", "string", 0),
            ("Finish", "string", 0),
            ("Age", "string", 0),
        ],
    }
}

fn quota_cells(v: &Value) -> (String, String) {
    let (mut req, mut lim) = (Vec::new(), Vec::new());
    if let Some(h) = v.pointer("/status/hard").and_then(Value::as_object) {
        for (k, hv) in h {
            let used = v
                .pointer(&format!("/status/used/{}", k.replace('/', "~1")))
                .and_then(Value::as_str)
                .unwrap_or("0");
            let cell = format!("{k}: {used}/{}", hv.as_str().unwrap_or(""));
            if k.starts_with("limits.") {
                lim.push(cell)
            } else {
                req.push(cell)
            }
        }
    }
    (req.join(", "), lim.join(", "))
}

fn cells(def: &ResourceDef, v: &Value) -> Vec<Value> {
    let name = json!(s(v, "/metadata/name"));
    match def.res {
        Res::Pod => {
            let cs = v
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = v
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = cs
                .iter()
                .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = cs
                .iter()
                .filter_map(|c| c.get("restartCount").and_then(Value::as_i64))
                .sum();
            let none = |x: &str| {
                if x.is_empty() {
                    "<none>".to_string()
                } else {
                    x.to_string()
                }
            };
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(v)),
                json!(restarts.to_string()),
                age(v),
                json!(none(s(v, "/status/podIP"))),
                json!(none(s(v, "/spec/nodeName"))),
                json!(none(s(v, "/status/nominatedNodeName"))),
                json!("<none>"),
            ]
        }
        Res::Node => {
            let ready = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
                })
                .and_then(|c| c.get("status").and_then(Value::as_str))
                == Some("True");
            let mut status = if ready {
                "Ready".to_string()
            } else {
                "NotReady".to_string()
            };
            if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            vec![
                name,
                json!(status),
                json!("<none>"),
                age(v),
                json!(s(v, "/status/nodeInfo/kubeletVersion")),
                json!(s(v, "/status/addresses/0/address")),
                json!("<none>"),
                json!(s(v, "/status/nodeInfo/osImage")),
                json!(s(v, "/status/nodeInfo/kernelVersion")),
                json!(s(v, "/status/nodeInfo/containerRuntimeVersion")),
            ]
        }
        Res::Namespace => vec![name, json!(s(v, "/status/phase")), age(v)],
        Res::ResourceQuota => {
            let (r, l) = quota_cells(v);
            vec![name, age(v), json!(r), json!(l)]
        }
        Res::Event | Res::EventV1 => {
            let (kind, oname) = if def.res == Res::Event {
                (s(v, "/involvedObject/kind"), s(v, "/involvedObject/name"))
            } else {
                (s(v, "/regarding/kind"), s(v, "/regarding/name"))
            };
            let last = [
                s(v, "/lastTimestamp"),
                s(v, "/deprecatedLastTimestamp"),
                s(v, "/eventTime"),
                s(v, "/metadata/creationTimestamp"),
            ]
            .into_iter()
            .find(|t| !t.is_empty())
            .unwrap_or("");
            let msg = if def.res == Res::Event {
                s(v, "/message")
            } else {
                s(v, "/note")
            };
            vec![
                json!(human_age(last)),
                json!(s(v, "/type")),
                json!(s(v, "/reason")),
                json!(format!("{}/{oname}", kind.to_lowercase())),
                json!(msg),
            ]
        }
        Res::PriorityClass => vec![
            name,
            json!(v.get("value").and_then(Value::as_i64).unwrap_or(0)),
            json!(
                v.get("globalDefault")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            age(v),
            json!(s(v, "/preemptionPolicy")),
        ],
        Res::Lease => vec![name, json!(s(v, "/spec/holderIdentity")), age(v)],
        Res::Role | Res::ClusterRole => {
            vec![name, json!(s(v, "/metadata/creationTimestamp"))]
        }
        Res::RoleBinding | Res::ClusterRoleBinding => vec![
            name,
            json!(format!(
                "{}/{}",
                s(v, "/roleRef/kind"),
                s(v, "/roleRef/name")
            )),
            age(v),
        ],
        Res::SparkApplication => vec![
            name,
            json!(s(v, "/status/applicationState/state")),
            json!(
                v.pointer("/status/executionAttempts")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
            ),
            json!(s(v, "/status/lastSubmissionAttemptTime")),
            json!(s(v, "/status/terminationTime")),
            age(v),
        ],
    }
}

/// A `meta.k8s.io/v1` Table of objects.
pub fn table(def: &ResourceDef, items: &[Value], rv: Option<u64>, cont: Option<String>) -> Value {
    let cols: Vec<Value> = columns(def)
        .into_iter()
        .map(|(n, t, p)| {
            let mut c =
                json!({"name": n, "type": t, "format": "", "description": n, "priority": p});
            if n == "Name" {
                c["format"] = json!("name");
            }
            c
        })
        .collect();
    let rows: Vec<Value> = items
        .iter()
        .map(|v| json!({"cells": cells(def, v), "object": metadata_only(v)}))
        .collect();
    let mut meta = json!({});
    if let Some(rv) = rv {
        meta["resourceVersion"] = json!(rv.to_string());
    }
    if let Some(c) = cont {
        meta["continue"] = json!(c);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": cols, "rows": rows})
}
