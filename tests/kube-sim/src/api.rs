//! The API server's write and read paths, shared by HTTP handlers and the emulated
//! controllers: decode → default → admit → validate → store, optimistic concurrency,
//! patches, server-side apply, graceful and cascading deletion, list with selectors
//! and paging.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{ApiError, Cause};
use crate::patch::{self, PatchType};
use crate::resources::Res;
use crate::store::Obj;
use crate::{admission, crd, fields, object, quota, validation};

mod delete;
mod list;

pub use delete::{DeleteOpts, Deleted, delete};
pub use list::{ListOpts, list, selected};

/// Main resource or `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// The object itself.
    Main,
    /// `/status`.
    Status,
}

impl Sub {
    fn name(self) -> &'static str {
        match self {
            Sub::Main => "",
            Sub::Status => "status",
        }
    }
}

/// Options of a write.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `fieldManager` (or the default derived from the User-Agent).
    pub manager: String,
    /// `fieldValidation=Strict`.
    pub strict: bool,
    /// `force=true` (apply).
    pub force: bool,
    /// Whether the caller named the field manager explicitly.
    pub manager_given: bool,
    /// The write is a server-side apply that already computed `managedFields`.
    pub applying: bool,
}

impl WriteOpts {
    /// Options for writes made by the emulated controllers.
    pub fn internal(manager: &str) -> WriteOpts {
        WriteOpts {
            manager: manager.to_string(),
            manager_given: true,
            ..Default::default()
        }
    }
}

fn check_type(res: Res, v: &Value) -> Result<(), ApiError> {
    let def = res.def();
    if !v.is_object() {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: expected an object",
            def.kind, def.version, def.kind
        )));
    }
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str)
        && av != def.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    if let Some(k) = v.get("kind").and_then(Value::as_str)
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    Ok(())
}

/// Decode a body: type check, prune unknown fields (error under Strict), set apiVersion/kind.
fn decode(res: Res, v: Value, strict: bool) -> Result<(Value, Vec<Cause>), ApiError> {
    check_type(res, &v)?;
    let def = res.def();
    let (mut out, unknown, causes) = if def.custom {
        let mut v = v;
        let (causes, unknown) = crd::prune_and_validate(&mut v);
        (v, unknown, causes)
    } else {
        let (v, unknown) = validation::canonicalize_builtin(res, v)?;
        (v, unknown, Vec::new())
    };
    if strict && !unknown.is_empty() {
        return Err(validation::strict_error(def, &unknown));
    }
    let m = object::as_map(&mut out);
    m.insert("apiVersion".into(), json!(def.api_version()));
    m.insert("kind".into(), json!(def.kind));
    Ok((out, causes))
}

fn namespace_check(c: &Cluster, res: Res, ns: &str, name: &str) -> Result<(), ApiError> {
    if !res.def().namespaced {
        return Ok(());
    }
    match c.store.get(Res::Namespace, "", ns) {
        None => Err(ApiError::not_found(Res::Namespace.def(), ns)),
        Some(n)
            if n.value.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") =>
        {
            Err(ApiError::forbidden(
                res.def(),
                name,
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// Create an object.
pub fn create(
    c: &mut Cluster,
    res: Res,
    ns: &str,
    body: Value,
    o: &WriteOpts,
) -> Result<Value, ApiError> {
    let def = res.def();
    let (mut v, schema_causes) = decode(res, body, o.strict)?;
    let body_ns = object::namespace(&v).to_string();
    if def.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        object::metadata_mut(&mut v).insert("namespace".into(), json!(ns));
    } else {
        object::metadata_mut(&mut v).remove("namespace");
    }
    let mut name = object::name(&v).to_string();
    if name.is_empty() {
        match object::meta_str(&v, "generateName").map(String::from) {
            Some(g) if !g.is_empty() => {
                name = format!("{g}{}", object::random_suffix(&mut c.rng));
                object::metadata_mut(&mut v).insert("name".into(), json!(name));
            }
            _ => {
                return Err(ApiError::invalid(
                    def,
                    "",
                    vec![Cause::new(
                        "FieldValueRequired",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    )],
                ));
            }
        }
    }
    namespace_check(c, res, ns, &name)?;
    let meta = object::metadata_mut(&mut v);
    for k in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        meta.remove(k);
    }
    if !o.applying {
        meta.remove("managedFields");
    }
    admission::default_create(c, res, &mut v)?;
    let mut causes = schema_causes;
    if let Some(cause) = validation::validate_name(res, &name) {
        causes.insert(0, cause);
    }
    causes.extend(validation::validate_builtin(res, &v));
    admission::admit_create(c, res, &mut v, &name)?;
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, causes));
    }
    if c.store.get(res, ns, &name).is_some() {
        return Err(ApiError::already_exists(def, &name));
    }
    let uid = object::random_uid(&mut c.rng);
    let meta = object::metadata_mut(&mut v);
    meta.insert("uid".into(), json!(uid));
    meta.insert(
        "creationTimestamp".into(),
        json!(object::time(object::now())),
    );
    if def.custom {
        meta.insert("generation".into(), json!(1));
    }
    if o.dry_run {
        return Ok(v);
    }
    if res != Res::Event && res != Res::EventV1 && v.pointer("/metadata/managedFields").is_none() {
        fields::record_update(None, &mut v, &o.manager, &def.api_version(), "");
    }
    let obj = c.store.put(res, v);
    // Quota usage is charged at admission, not later (events are not counted).
    if def.namespaced && res != Res::Event && res != Res::EventV1 {
        quota::sync_namespace(c, ns);
    }
    Ok(obj.value.clone())
}

/// Get an object or 404.
pub fn get(c: &Cluster, res: Res, ns: &str, name: &str) -> Result<Arc<Obj>, ApiError> {
    c.store
        .get(res, ns, name)
        .ok_or_else(|| ApiError::not_found(res.def(), name))
}

fn requires_rv(res: Res) -> bool {
    matches!(res, Res::Lease | Res::SparkApplication)
}

/// Replace (PUT) an object or its status.
pub fn update(
    c: &mut Cluster,
    res: Res,
    ns: &str,
    name: &str,
    body: Value,
    sub: Sub,
    o: &WriteOpts,
) -> Result<Value, ApiError> {
    let def = res.def();
    let old = get(c, res, ns, name)?;
    check_type(res, &body)?;
    // The main endpoint ignores status and /status ignores the rest, before validation.
    let rv_in_body = object::meta_str(&body, "resourceVersion").map(String::from);
    let mut body = merge_sub(&old.value, body, sub, def.has_status);
    match &rv_in_body {
        Some(rv) => object::metadata_mut(&mut body).insert("resourceVersion".into(), json!(rv)),
        None => object::metadata_mut(&mut body).remove("resourceVersion"),
    };
    let (mut v, causes) = decode(res, body, o.strict)?;
    let body_name = object::name(&v);
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let rv = object::meta_str(&v, "resourceVersion")
        .unwrap_or("")
        .to_string();
    if rv.is_empty() && requires_rv(res) {
        return Err(ApiError::invalid(
            def,
            name,
            vec![Cause::new(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                "Invalid value: 0: must be specified for an update",
            )],
        ));
    }
    if !rv.is_empty() && rv != old.rv.to_string() {
        return Err(ApiError::conflict(def, name));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, name, causes));
    }
    user_commit(c, res, &old, v.take(), sub, o)
}

/// Take the main object from `new` and the status from `old` (or the other way round).
fn merge_sub(old: &Value, mut new: Value, sub: Sub, has_status: bool) -> Value {
    if !has_status {
        return new;
    }
    match sub {
        Sub::Main => {
            let m = object::as_map(&mut new);
            match old.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.remove("status");
                }
            }
            new
        }
        Sub::Status => {
            let mut out = old.clone();
            let m = object::as_map(&mut out);
            match new.get("status") {
                Some(s) => {
                    m.insert("status".into(), s.clone());
                }
                None => {
                    m.remove("status");
                }
            }
            // Only the status changes on /status, but metadata RV preconditions still apply.
            out
        }
    }
}

/// A user's update: like [`commit`], but a pod's spec is mostly immutable.
fn user_commit(
    c: &mut Cluster,
    res: Res,
    old: &Arc<Obj>,
    new: Value,
    sub: Sub,
    o: &WriteOpts,
) -> Result<Value, ApiError> {
    if res == Res::Pod && sub == Sub::Main {
        let causes = admission::pod_update_forbidden(&old.value, &new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(res.def(), &old.key.1, causes));
        }
    }
    commit(c, res, old, new, sub, o)
}

/// Common tail of every update: keep system metadata, validate, bump generation,
/// record field ownership, finish deletions, store.
pub fn commit(
    c: &mut Cluster,
    res: Res,
    old: &Arc<Obj>,
    mut new: Value,
    sub: Sub,
    o: &WriteOpts,
) -> Result<Value, ApiError> {
    let def = res.def();
    let name = old.key.1.clone();
    {
        let om = old.value.get("metadata").cloned().unwrap_or(json!({}));
        let m = object::metadata_mut(&mut new);
        for k in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "generateName",
        ] {
            match om.get(k) {
                Some(x) => {
                    m.insert(k.into(), x.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.remove("resourceVersion");
        if om.get("managedFields").is_some() && !o.manager_given {
            // keep the old bookkeeping when the caller did not say who it is
        }
    }
    {
        let m = object::as_map(&mut new);
        m.insert("apiVersion".into(), json!(def.api_version()));
        m.insert("kind".into(), json!(def.kind));
    }
    let causes = validation::validate_builtin(res, &new);
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, &name, causes));
    }
    if def.custom && old.value.get("spec") != new.get("spec") {
        let g = old
            .value
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        object::metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
    }
    if res != Res::Event && res != Res::EventV1 && !o.applying {
        // Updates keep the recorded ownership (whatever the body carried) and move the
        // changed fields to this manager; an apply computed it already.
        let old_mf = old.value.pointer("/metadata/managedFields").cloned();
        let m = object::metadata_mut(&mut new);
        match old_mf {
            Some(mf) => m.insert("managedFields".into(), mf),
            None => m.remove("managedFields"),
        };
        {
            fields::record_update(
                Some(&old.value),
                &mut new,
                &o.manager,
                &def.api_version(),
                sub.name(),
            );
        }
    }
    let mut cmp_old = old.value.clone();
    let mut cmp_new = new.clone();
    for x in [&mut cmp_old, &mut cmp_new] {
        let m = object::metadata_mut(x);
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    if cmp_old == cmp_new {
        return Ok(old.value.clone());
    }
    if o.dry_run {
        let mut out = new;
        object::metadata_mut(&mut out).insert("resourceVersion".into(), json!(old.rv.to_string()));
        return Ok(out);
    }
    let finalizing = new.pointer("/metadata/deletionTimestamp").is_some()
        && new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_none_or(|f| f.is_empty())
        && res != Res::Namespace
        && (res != Res::Pod || {
            // A pod goes once its containers are gone (unbound or terminated).
            let unbound = new
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty);
            let phase = new
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("");
            unbound || phase == "Succeeded" || phase == "Failed"
        });
    if finalizing {
        let gone = c.store.remove(res, &old.key.0, &name);
        return Ok(gone.map(|g| g.value.clone()).unwrap_or(new));
    }
    let obj = c.store.put(res, new);
    Ok(obj.value.clone())
}

/// PATCH an object or its status.
#[allow(clippy::too_many_arguments)]
pub fn patch(
    c: &mut Cluster,
    res: Res,
    ns: &str,
    name: &str,
    pt: PatchType,
    body: Value,
    sub: Sub,
    o: &WriteOpts,
) -> Result<Value, ApiError> {
    let def = res.def();
    if pt == PatchType::Strategic && def.custom {
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
            patch::supported(true),
        ));
    }
    if pt == PatchType::Apply {
        if !o.manager_given || o.manager.is_empty() {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        check_type(res, &body)?;
        let existing = c.store.get(res, ns, name);
        let Some(old) = existing else {
            if sub == Sub::Status {
                return Err(ApiError::not_found(def, name));
            }
            let mut v = fields::apply(None, &body, &o.manager, &def.api_version(), "", o.force)?;
            object::metadata_mut(&mut v).insert("name".into(), json!(name));
            return create(
                c,
                res,
                ns,
                v,
                &WriteOpts {
                    applying: true,
                    ..o.clone()
                },
            );
        };
        let (pruned, causes) = decode(res, body, o.strict)?;
        if !causes.is_empty() {
            return Err(ApiError::invalid(def, name, causes));
        }
        let mut applied = pruned;
        // apiVersion/kind were set by decode; they are not fields anyone owns.
        let new = fields::apply(
            Some(&old.value),
            &applied,
            &o.manager,
            &def.api_version(),
            sub.name(),
            o.force,
        )?;
        applied = merge_sub(&old.value, new, sub, def.has_status);
        return user_commit(
            c,
            res,
            &old,
            applied,
            sub,
            &WriteOpts {
                applying: true,
                ..o.clone()
            },
        );
    }
    let old = get(c, res, ns, name)?;
    let mut target = old.value.clone();
    match pt {
        PatchType::Merge => patch::merge(&mut target, &body),
        PatchType::Strategic => patch::strategic(&mut target, &body),
        PatchType::Json => patch::json(&mut target, &body)?,
        PatchType::Apply => {}
    }
    let rv = object::meta_str(&target, "resourceVersion")
        .unwrap_or("")
        .to_string();
    if !rv.is_empty() && rv != old.rv.to_string() {
        return Err(ApiError::conflict(def, name));
    }
    let target = merge_sub(&old.value, target, sub, def.has_status);
    let (v, causes) = decode(res, target, o.strict)?;
    if !causes.is_empty() {
        return Err(ApiError::invalid(def, name, causes));
    }
    user_commit(c, res, &old, v, sub, o)
}
