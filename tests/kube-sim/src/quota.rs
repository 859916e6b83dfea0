//! ResourceQuota: admission exactly as the real plugin counts it (against the quota's
//! `status.hard`/`status.used`, 403 `exceeded quota: …` with canonical quantities) and
//! the quota controller's part (`status.hard = spec.hard`, `status.used` recomputed
//! from the non-terminal pods and object counts).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::podres;
use crate::quantity::{format_resource, parse_resource};
use crate::resources::{ALL, Res};

/// What one pod adds to each quota resource.
fn pod_usage(spec: &Value) -> BTreeMap<String, i64> {
    let r = podres::pod_requests(spec);
    let l = podres::pod_limits(spec);
    BTreeMap::from([
        ("pods".to_string(), 1),
        ("count/pods".to_string(), 1),
        ("requests.cpu".to_string(), r.cpu),
        ("cpu".to_string(), r.cpu),
        ("requests.memory".to_string(), r.mem),
        ("memory".to_string(), r.mem),
        ("limits.cpu".to_string(), l.cpu),
        ("limits.memory".to_string(), l.mem),
    ])
}

fn count_resource(res: Res) -> String {
    let d = res.def();
    if d.group.is_empty() {
        format!("count/{}", d.plural)
    } else {
        format!("count/{}.{}", d.plural, d.group)
    }
}

fn used_for(c: &Cluster, ns: &str, resource: &str) -> i64 {
    let u = c.store.ns_usage.get(ns).copied().unwrap_or_default();
    match resource {
        "pods" => u.pods,
        "count/pods" => u.count_pods,
        "requests.cpu" | "cpu" => u.requests.cpu,
        "requests.memory" | "memory" => u.requests.mem,
        "limits.cpu" => u.limits.cpu,
        "limits.memory" => u.limits.mem,
        other => ALL
            .iter()
            .find(|r| r.def().namespaced && count_resource(**r) == other)
            .map(|r| c.store.iter(*r, Some(ns), None).count() as i64)
            .unwrap_or(0),
    }
}

fn pretty(items: &BTreeMap<String, i64>) -> String {
    items
        .iter()
        .map(|(k, v)| format!("{k}={}", format_resource(k, *v)))
        .collect::<Vec<_>>()
        .join(",")
}

fn quantity_map(v: Option<&Value>) -> BTreeMap<String, i64> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, q)| {
                    q.as_str()
                        .and_then(|s| parse_resource(k, s))
                        .map(|n| (k.clone(), n))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// ResourceQuota admission for a create of `v` (a pod, or any object counted by
/// `count/<resource>`).
pub fn admit(c: &Cluster, res: Res, v: &Value, name: &str) -> Result<(), ApiError> {
    let def = res.def();
    if !def.namespaced {
        return Ok(());
    }
    let ns = crate::object::namespace(v);
    let display = if name.is_empty() { "Unknown" } else { name };
    let usage = if res == Res::Pod {
        pod_usage(v.get("spec").unwrap_or(&Value::Null))
    } else {
        BTreeMap::from([(count_resource(res), 1)])
    };
    for q in c.store.iter(Res::ResourceQuota, Some(ns), None) {
        let hard = quantity_map(q.value.pointer("/status/hard"));
        if hard.is_empty() {
            continue;
        }
        let used = quantity_map(q.value.pointer("/status/used"));
        let qname = &q.key.1;
        if res == Res::Pod {
            let spec = v.get("spec").unwrap_or(&Value::Null);
            let mut missing: Vec<String> = Vec::new();
            for (qres, field, r) in [
                ("cpu", "requests", "cpu"),
                ("limits.cpu", "limits", "cpu"),
                ("limits.memory", "limits", "memory"),
                ("memory", "requests", "memory"),
                ("requests.cpu", "requests", "cpu"),
                ("requests.memory", "requests", "memory"),
            ] {
                if hard.contains_key(qres) {
                    let names = podres::containers_missing(spec, field, r);
                    if !names.is_empty() {
                        missing.push(format!("{qres} for: {}", names.join(",")));
                    }
                }
            }
            if !missing.is_empty() {
                return Err(ApiError::forbidden(
                    def,
                    display,
                    &format!("failed quota: {qname}: must specify {}", missing.join("; ")),
                ));
            }
        }
        let relevant: Vec<&String> = hard.keys().filter(|k| usage.contains_key(*k)).collect();
        let unknown: Vec<String> = relevant
            .iter()
            .filter(|k| !used.contains_key(**k))
            .map(|k| k.to_string())
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::forbidden(
                def,
                display,
                &format!(
                    "status unknown for quota: {qname}, resources: {}",
                    unknown.join(",")
                ),
            ));
        }
        let mut req = BTreeMap::new();
        let mut usd = BTreeMap::new();
        let mut lim = BTreeMap::new();
        for k in relevant {
            let add = usage[k];
            let now = used[k];
            if now + add > hard[k] {
                req.insert(k.clone(), add);
                usd.insert(k.clone(), now);
                lim.insert(k.clone(), hard[k]);
            }
        }
        if !req.is_empty() {
            return Err(ApiError::forbidden(
                def,
                display,
                &format!(
                    "exceeded quota: {qname}, requested: {}, used: {}, limited: {}",
                    pretty(&req),
                    pretty(&usd),
                    pretty(&lim)
                ),
            ));
        }
    }
    Ok(())
}

/// Recompute `status` of every quota in a namespace.
pub fn sync_namespace(c: &mut Cluster, ns: &str) {
    let quotas: Vec<_> = c
        .store
        .iter(Res::ResourceQuota, Some(ns), None)
        .cloned()
        .collect();
    for q in quotas {
        let hard = q.value.pointer("/spec/hard").cloned().unwrap_or(json!({}));
        let mut used = serde_json::Map::new();
        if let Some(h) = hard.as_object() {
            for k in h.keys() {
                used.insert(k.clone(), json!(format_resource(k, used_for(c, ns, k))));
            }
        }
        let status = json!({"hard": hard, "used": used});
        if q.value.get("status") != Some(&status) {
            let mut v = q.value.clone();
            crate::object::as_map(&mut v).insert("status".into(), status);
            c.store.put(Res::ResourceQuota, v);
        }
    }
}

/// Recompute every quota.
pub fn sync_all(c: &mut Cluster) {
    let namespaces: Vec<String> = c
        .store
        .iter(Res::ResourceQuota, None, None)
        .map(|q| q.key.0.clone())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    for ns in namespaces {
        if seen.insert(ns.clone()) {
            sync_namespace(c, &ns);
        }
    }
}
