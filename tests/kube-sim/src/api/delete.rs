//! DELETE: preconditions, propagation (Background, Foreground, Orphan), finalizers,
//! graceful pod termination, namespace termination, dry run.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{ApiError, success_status};
use crate::object;
use crate::quota;
use crate::resources::Res;

use super::get;

/// `DeleteOptions` (body and query merged).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    /// `gracePeriodSeconds`.
    pub grace: Option<i64>,
    /// `Background` (default), `Foreground` or `Orphan`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub pre_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub pre_rv: Option<String>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// What DELETE returns.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object (pods, namespaces, objects still finalizing).
    Object(Value),
    /// `Status` Success.
    Status(Value),
}

/// DELETE an object.
pub fn delete(
    c: &mut Cluster,
    res: Res,
    ns: &str,
    name: &str,
    d: &DeleteOpts,
) -> Result<Deleted, ApiError> {
    let def = res.def();
    let old = get(c, res, ns, name)?;
    if let Some(u) = &d.pre_uid
        && *u != old.uid
    {
        return Err(ApiError::conflict_msg(
            def,
            name,
            &format!(
                "Precondition failed: UID in precondition: {u}, UID in object meta: {}",
                old.uid
            ),
        ));
    }
    if let Some(r) = &d.pre_rv
        && *r != old.rv.to_string()
    {
        return Err(ApiError::conflict_msg(
            def,
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {r}, ResourceVersion in object meta: {}",
                old.rv
            ),
        ));
    }
    let returns_object = matches!(res, Res::Pod | Res::Namespace);
    if d.dry_run {
        return Ok(if returns_object {
            Deleted::Object(old.value.clone())
        } else {
            Deleted::Status(success_status(def, name, &old.uid))
        });
    }
    let propagation = d.propagation.clone().unwrap_or_else(|| "Background".into());
    if propagation == "Orphan" {
        crate::controllers::gc::orphan_dependents(c, &old.uid);
    }
    let already_deleting = old.value.pointer("/metadata/deletionTimestamp").is_some();
    let mut finalizers: Vec<Value> = old
        .value
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if propagation == "Foreground"
        && c.store.dependents.contains_key(&old.uid)
        && !finalizers.contains(&json!("foregroundDeletion"))
    {
        finalizers.push(json!("foregroundDeletion"));
    }
    // Namespaces: Terminating until the namespace controller emptied them.
    if res == Res::Namespace {
        if ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(
                def,
                name,
                "this namespace may not be deleted",
            ));
        }
        let mut v = old.value.clone();
        let now = object::time(object::now());
        let m = object::metadata_mut(&mut v);
        m.entry("deletionTimestamp").or_insert(json!(now));
        object::obj_field_mut(&mut v, "status").insert("phase".into(), json!("Terminating"));
        let obj = c.store.put(res, v);
        return Ok(Deleted::Object(obj.value.clone()));
    }
    // A pod already terminating stays so unless the grace period is cut to zero.
    if res == Res::Pod && already_deleting && d.grace != Some(0) && finalizers.is_empty() {
        return Ok(Deleted::Object(old.value.clone()));
    }
    // Pods on a node terminate gracefully; the kubelet removes them.
    let graceful_pod = res == Res::Pod && {
        let facts = old.pod.as_ref();
        let bound = facts.is_some_and(|f| f.node.is_some());
        let terminal = facts.is_some_and(|f| f.terminal());
        let grace = d.grace.unwrap_or_else(|| {
            old.value
                .pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        bound && !terminal && grace > 0 && !already_deleting
    };
    if !finalizers.is_empty() || graceful_pod {
        let mut v = old.value.clone();
        let now = object::time(object::now());
        let m = object::metadata_mut(&mut v);
        if !already_deleting {
            m.insert("deletionTimestamp".into(), json!(now));
        }
        if !finalizers.is_empty() {
            m.insert("finalizers".into(), json!(finalizers));
        }
        if graceful_pod {
            let grace = d.grace.unwrap_or_else(|| {
                old.value
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(30)
            });
            m.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if v == old.value {
            return Ok(Deleted::Object(old.value.clone()));
        }
        let obj = c.store.put(res, v);
        if graceful_pod {
            crate::controllers::kubelet::schedule_termination(c, &obj);
        }
        return Ok(Deleted::Object(obj.value.clone()));
    }
    let gone = c.store.remove(res, ns, name);
    // Quota usage is charged at admission, not later (events are not counted).
    if def.namespaced && res != Res::Event && res != Res::EventV1 {
        quota::sync_namespace(c, ns);
    }
    let value = gone
        .map(|g| g.value.clone())
        .unwrap_or_else(|| old.value.clone());
    Ok(if returns_object {
        Deleted::Object(value)
    } else {
        Deleted::Status(success_status(def, name, &old.uid))
    })
}
