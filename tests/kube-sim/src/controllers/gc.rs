//! Garbage collector: deletes dependents whose owners are all gone (background
//! cascade), orphans dependents on `propagationPolicy=Orphan`, and completes
//! foreground deletions once the blocking dependents are gone.

use serde_json::{Value, json};

use crate::api::{self, DeleteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::resources::Res;

/// Remove the ownerReferences to `uid` from its dependents.
pub fn orphan_dependents(c: &mut Cluster, uid: &str) {
    let deps: Vec<_> = c
        .store
        .dependents
        .get(uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    for (res, key) in deps {
        let Some(obj) = c.store.get(res, &key.0, &key.1) else {
            continue;
        };
        let mut v = obj.value.clone();
        if let Some(Value::Array(refs)) = object::metadata_mut(&mut v).get_mut("ownerReferences") {
            refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
        }
        let _ = api::commit(
            c,
            res,
            &obj,
            v,
            api::Sub::Main,
            &api::WriteOpts::internal("generic-garbage-collector"),
        );
    }
}

/// Process the queue of owners that changed.
pub fn step(c: &mut Cluster) {
    let queue: Vec<String> = std::mem::take(&mut c.ctl.gc_queue).into_iter().collect();
    for uid in queue {
        match c.store.get_uid(&uid) {
            Some((res, owner)) => {
                // Foreground deletion finishes when no blocking dependents remain.
                let deleting = owner.value.pointer("/metadata/deletionTimestamp").is_some();
                let fg = owner
                    .value
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| f.contains(&json!("foregroundDeletion")));
                if deleting && fg {
                    let deps: Vec<_> = c
                        .store
                        .dependents
                        .get(&uid)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    if deps.is_empty() {
                        let mut v = owner.value.clone();
                        if let Some(Value::Array(f)) =
                            object::metadata_mut(&mut v).get_mut("finalizers")
                        {
                            f.retain(|x| x != "foregroundDeletion");
                        }
                        let _ = api::commit(
                            c,
                            res,
                            &owner,
                            v,
                            api::Sub::Main,
                            &api::WriteOpts::internal("generic-garbage-collector"),
                        );
                    } else {
                        for (dres, key) in deps {
                            let opts = DeleteOpts {
                                propagation: Some("Foreground".into()),
                                ..Default::default()
                            };
                            let _ = api::delete(c, dres, &key.0, &key.1, &opts);
                        }
                    }
                }
            }
            None => {
                let deps: Vec<_> = c
                    .store
                    .dependents
                    .get(&uid)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                for (dres, key) in deps {
                    let Some(dep) = c.store.get(dres, &key.0, &key.1) else {
                        continue;
                    };
                    // Delete only when every owner is gone.
                    let alive = dep
                        .owners
                        .iter()
                        .any(|o| o != &uid && c.store.get_uid(o).is_some());
                    if alive || dep.value.pointer("/metadata/deletionTimestamp").is_some() {
                        continue;
                    }
                    let _ = api::delete(c, dres, &key.0, &key.1, &DeleteOpts::default());
                }
            }
        }
    }
}

/// Whether a resource is one the collector may see as an owner (all of them).
pub fn is_owner_kind(_res: Res) -> bool {
    true
}
