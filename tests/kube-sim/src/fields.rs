//! `metadata.managedFields` bookkeeping and server-side apply: which manager owns which
//! field, apply conflicts (409 with `FieldManagerConflict` causes, message as
//! `managedfields/internal/conflict.go` formats it), and ownership moving on updates.
//! Lists are treated as atomic (owned as a whole).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// A field path, e.g. `["spec", "holderIdentity"]`.
pub type Path = Vec<String>;

const SYSTEM_META: [&str; 9] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
];

/// Leaf fields of an object (objects recursed, lists and scalars are leaves), without
/// `apiVersion`, `kind`, system metadata and (unless `status`) the status.
pub fn leaves(v: &Value, status: bool) -> BTreeMap<Path, Value> {
    let mut out = BTreeMap::new();
    if let Some(m) = v.as_object() {
        for (k, c) in m {
            if k == "apiVersion" || k == "kind" || (k == "status" && !status) {
                continue;
            }
            walk(c, vec![k.clone()], &mut out);
        }
    }
    out.retain(|p, _| {
        !(p.len() == 2 && p[0] == "metadata" && SYSTEM_META.contains(&p[1].as_str()))
    });
    if status {
        out.retain(|p, _| p.first().is_some_and(|f| f == "status"));
    }
    out
}

fn walk(v: &Value, path: Path, out: &mut BTreeMap<Path, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(k.clone());
                walk(c, p, out);
            }
        }
        Value::Null => {}
        Value::Object(_) => {}
        other => {
            out.insert(path, other.clone());
        }
    }
}

/// Encode paths as `fieldsV1` (`{"f:spec":{"f:holderIdentity":{}}}`).
pub fn encode(paths: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for seg in p {
            let e = cur
                .entry(format!("f:{seg}"))
                .or_insert_with(|| Value::Object(Map::new()));
            cur = crate::object::as_map(e);
        }
    }
    Value::Object(root)
}

/// Decode `fieldsV1` into leaf paths.
pub fn decode(v: &Value) -> BTreeSet<Path> {
    fn rec(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let Some(m) = v.as_object() else { return };
        let children: Vec<(&String, &Value)> =
            m.iter().filter(|(k, _)| k.starts_with("f:")).collect();
        if (children.is_empty() || m.contains_key(".")) && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, c) in children {
            path.push(k[2..].to_string());
            rec(c, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    rec(v, &mut Vec::new(), &mut out);
    out
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// apiVersion of the request.
    pub api_version: String,
    /// `status` or empty.
    pub subresource: String,
    /// Time of the last change.
    pub time: String,
    /// Owned leaf paths.
    pub fields: BTreeSet<Path>,
}

/// Read the entries of an object.
pub fn entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e
                        .get("manager")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    operation: e
                        .get("operation")
                        .and_then(Value::as_str)
                        .unwrap_or("Update")
                        .to_string(),
                    api_version: e
                        .get("apiVersion")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    subresource: e
                        .get("subresource")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    time: e
                        .get("time")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    fields: e.get("fieldsV1").map(decode).unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": encode(&e.fields),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    let meta = crate::object::metadata_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Record an Update by `manager`: it takes ownership of every field it changed, and
/// every other manager loses those fields.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
) {
    let status = subresource == "status";
    let before = old.map(|o| leaves(o, status)).unwrap_or_default();
    let after = leaves(new, status);
    let mut changed: BTreeSet<Path> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(*v))
        .map(|(p, _)| p.clone())
        .collect();
    let removed: BTreeSet<Path> = before
        .keys()
        .filter(|p| !after.contains_key(*p))
        .cloned()
        .collect();
    let mut list = old.map(entries).unwrap_or_default();
    if changed.is_empty() && removed.is_empty() {
        store_entries(new, &list);
        return;
    }
    for e in &mut list {
        e.fields
            .retain(|p| !changed.iter().chain(removed.iter()).any(|c| overlaps(p, c)));
    }
    let now = crate::object::time(crate::object::now());
    match list
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update" && e.subresource == subresource)
    {
        Some(e) => {
            e.fields.append(&mut changed);
            e.time = now;
        }
        None => list.push(Entry {
            manager: manager.to_string(),
            operation: "Update".into(),
            api_version: api_version.to_string(),
            subresource: subresource.to_string(),
            time: now,
            fields: changed,
        }),
    }
    store_entries(new, &list);
}

fn print_manager(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s = format!("{s} with subresource {:?}", e.subresource);
    }
    if e.operation == "Update" {
        if e.time.is_empty() {
            s = format!("{s} using {}", e.api_version);
        } else {
            s = format!("{s} using {} at {}", e.api_version, e.time);
        }
    }
    s
}

fn path_string(p: &Path) -> String {
    p.iter().map(|s| format!(".{s}")).collect()
}

fn deep_merge(dst: &mut Value, src: &Value) {
    match (dst, src) {
        (Value::Object(d), Value::Object(s)) => {
            for (k, v) in s {
                if v.is_null() {
                    d.remove(k);
                    continue;
                }
                match d.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => {
                        deep_merge(existing, v)
                    }
                    _ => {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (d, s) => *d = s.clone(),
    }
}

fn remove_path(v: &mut Value, p: &[String]) {
    let Some((last, parents)) = p.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parents {
        match cur.get_mut(seg) {
            Some(c) => cur = c,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(last);
    }
}

/// Server-side apply of `applied` (the request body) by `manager` onto `existing`
/// (absent for a create). Returns the new object or a 409 naming the conflicts.
pub fn apply(
    existing: Option<&Value>,
    applied: &Value,
    manager: &str,
    api_version: &str,
    subresource: &str,
    force: bool,
) -> Result<Value, ApiError> {
    let status = subresource == "status";
    let mine = leaves(applied, status);
    let current = existing.map(|e| leaves(e, status)).unwrap_or_default();
    let mut list = existing.map(entries).unwrap_or_default();
    let is_me =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == subresource;

    let mut conflicts: Vec<(Entry, Path)> = Vec::new();
    for (p, v) in &mine {
        if current.get(p) == Some(v) {
            continue;
        }
        for e in list.iter().filter(|e| !is_me(e)) {
            if e.fields.iter().any(|f| overlaps(f, p)) {
                conflicts.push((e.clone(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|(e, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", print_manager(e)), "field": path_string(p)}))
            .collect();
        let message = if conflicts.len() == 1 {
            format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                print_manager(&conflicts[0].0),
                path_string(&conflicts[0].1)
            )
        } else {
            let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (e, p) in &conflicts {
                by.entry(print_manager(e)).or_default().push(path_string(p));
            }
            let parts: Vec<String> = by
                .iter()
                .map(|(m, ps)| format!("conflicts with {m}:\n- {}", ps.join("\n- ")))
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                parts.join("\n")
            )
        };
        let mut err = ApiError::new(409, "Conflict", message);
        err.details = Some(json!({"causes": causes}));
        return Err(err);
    }

    let mut out = existing.cloned().unwrap_or_else(|| json!({}));
    let mut body = applied.clone();
    if let Some(m) = body.as_object_mut()
        && !status
    {
        m.remove("status");
    }
    deep_merge(&mut out, &body);
    // Fields this manager applied before, no longer applies, and nobody else owns go away.
    let previously: BTreeSet<Path> = list
        .iter()
        .filter(|e| is_me(e))
        .flat_map(|e| e.fields.iter().cloned())
        .collect();
    for p in previously.iter().filter(|p| !mine.contains_key(*p)) {
        let shared = list
            .iter()
            .filter(|e| !is_me(e))
            .any(|e| e.fields.contains(p));
        if !shared {
            remove_path(&mut out, p);
        }
    }
    // Changed values move to this manager; equal values stay shared.
    for e in list.iter_mut().filter(|e| !is_me(e)) {
        e.fields.retain(|f| {
            !mine
                .iter()
                .any(|(p, v)| overlaps(f, p) && current.get(p) != Some(v))
        });
    }
    list.retain(|e| !is_me(e));
    list.push(Entry {
        manager: manager.to_string(),
        operation: "Apply".into(),
        api_version: api_version.to_string(),
        subresource: subresource.to_string(),
        time: crate::object::time(crate::object::now()),
        fields: mine.keys().cloned().collect(),
    });
    store_entries(&mut out, &list);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_v1_roundtrip() {
        let set: BTreeSet<Path> = [
            vec!["spec".to_string(), "a".to_string()],
            vec!["metadata".into(), "labels".into(), "x".into()],
        ]
        .into();
        assert_eq!(decode(&encode(&set)), set);
    }

    #[test]
    fn apply_conflicts_with_another_manager() {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {}});
        let a = apply(
            Some(&lease),
            &json!({"spec": {"holderIdentity": "a"}}),
            "mgr-a",
            "coordination.k8s.io/v1",
            "",
            false,
        )
        .unwrap();
        let err = apply(
            Some(&a),
            &json!({"spec": {"holderIdentity": "b"}}),
            "mgr-b",
            "coordination.k8s.io/v1",
            "",
            false,
        )
        .unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "Conflict");
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.holderIdentity"
        );
        // same value: no conflict, shared ownership
        apply(
            Some(&a),
            &json!({"spec": {"holderIdentity": "a"}}),
            "mgr-b",
            "coordination.k8s.io/v1",
            "",
            false,
        )
        .unwrap();
        // force takes over
        let b = apply(
            Some(&a),
            &json!({"spec": {"holderIdentity": "b"}}),
            "mgr-b",
            "coordination.k8s.io/v1",
            "",
            true,
        )
        .unwrap();
        assert_eq!(b["spec"]["holderIdentity"], "b");
    }

    #[test]
    fn update_moves_ownership() {
        let lease = json!({"metadata": {"name": "l"}, "spec": {}});
        let a = apply(
            Some(&lease),
            &json!({"spec": {"holderIdentity": "a"}}),
            "mgr-a",
            "v1",
            "",
            false,
        )
        .unwrap();
        let mut upd = a.clone();
        upd["spec"]["holderIdentity"] = Value::Null;
        upd["spec"]
            .as_object_mut()
            .unwrap()
            .remove("holderIdentity");
        record_update(Some(&a), &mut upd, "mgr-a", "v1", "");
        // after the field is gone, b may apply without conflict
        apply(
            Some(&upd),
            &json!({"spec": {"holderIdentity": "b"}}),
            "mgr-b",
            "v1",
            "",
            false,
        )
        .unwrap();
    }
}
