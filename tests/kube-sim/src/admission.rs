//! Admission and defaulting on create: pod defaults (phase, QoS class, default
//! tolerations, scheduler name, ...), namespace defaults, Priority admission and
//! ResourceQuota admission (delegated to [`crate::quota`]); plus the pod-update rule
//! that most of a pod's spec is immutable.

use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::error::{ApiError, Cause};
use crate::resources::Res;
use crate::{object, podres, quota};

fn default_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent"
    } else {
        match last.split_once(':') {
            Some((_, "latest")) | None => "Always",
            Some(_) => "IfNotPresent",
        }
    }
}

fn default_container(c: &mut Value) {
    let image = c
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let m = object::as_map(c);
    m.entry("imagePullPolicy")
        .or_insert(json!(default_pull_policy(&image)));
    m.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    m.entry("terminationMessagePolicy").or_insert(json!("File"));
    let res = object::obj_field_mut(c, "resources");
    // Requests default to limits when unset.
    if let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() {
        let req = res.entry("requests").or_insert(json!({}));
        let req = object::as_map(req);
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// Defaults applied on create (what registries' `PrepareForCreate` and the default
/// admission plugins do).
pub fn default_create(c: &mut Cluster, res: Res, v: &mut Value) -> Result<(), ApiError> {
    match res {
        Res::Pod => {
            let spec = object::obj_field_mut(v, "spec");
            spec.entry("restartPolicy").or_insert(json!("Always"));
            spec.entry("dnsPolicy").or_insert(json!("ClusterFirst"));
            spec.entry("schedulerName")
                .or_insert(json!("default-scheduler"));
            spec.entry("terminationGracePeriodSeconds")
                .or_insert(json!(30));
            spec.entry("securityContext").or_insert(json!({}));
            spec.entry("enableServiceLinks").or_insert(json!(true));
            let sa = spec
                .get("serviceAccountName")
                .cloned()
                .unwrap_or(json!("default"));
            spec.insert("serviceAccountName".into(), sa.clone());
            spec.insert("serviceAccount".into(), sa);
            for field in ["containers", "initContainers"] {
                if let Some(Value::Array(cs)) = spec.get_mut(field) {
                    cs.iter_mut().for_each(default_container);
                }
            }
            // DefaultTolerationSeconds admission.
            let tolerations = spec.entry("tolerations").or_insert(json!([]));
            if let Value::Array(ts) = tolerations {
                for key in [
                    "node.kubernetes.io/not-ready",
                    "node.kubernetes.io/unreachable",
                ] {
                    let has = ts.iter().any(|t| {
                        t.get("key").and_then(Value::as_str) == Some(key)
                            && t.get("effect")
                                .and_then(Value::as_str)
                                .is_none_or(|e| e == "NoExecute")
                    });
                    if !has {
                        ts.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
                    }
                }
            }
            let qos = podres::qos_class(v.get("spec").unwrap_or(&Value::Null));
            let status = object::obj_field_mut(v, "status");
            status.clear();
            status.insert("phase".into(), json!("Pending"));
            status.insert("qosClass".into(), json!(qos));
        }
        Res::Namespace => {
            object::obj_field_mut(v, "spec").insert("finalizers".into(), json!(["kubernetes"]));
            object::obj_field_mut(v, "status").insert("phase".into(), json!("Active"));
            let name = object::name(v).to_string();
            let labels = object::metadata_mut(v).entry("labels").or_insert(json!({}));
            object::as_map(labels).insert("kubernetes.io/metadata.name".into(), json!(name));
        }
        Res::PriorityClass => {
            let m = object::as_map(v);
            m.entry("preemptionPolicy")
                .or_insert(json!("PreemptLowerPriority"));
            if m.get("globalDefault").and_then(Value::as_bool) == Some(true) {
                let other = c.store.iter(Res::PriorityClass, None, None).find(|p| {
                    p.value.get("globalDefault").and_then(Value::as_bool) == Some(true)
                        && p.key.1 != object::name(v)
                });
                if let Some(o) = other {
                    return Err(ApiError::invalid(
                        Res::PriorityClass.def(),
                        object::name(v),
                        vec![Cause::new(
                            "FieldValueInvalid",
                            "globalDefault",
                            format!(
                                "Invalid value: true: globalDefault {} already exists",
                                o.key.1
                            ),
                        )],
                    ));
                }
            }
        }
        Res::ResourceQuota => {
            // The quota controller fills the status; a new quota starts with hard only.
            let hard = v.pointer("/spec/hard").cloned().unwrap_or(json!({}));
            let status = object::obj_field_mut(v, "status");
            status.clear();
            status.insert("hard".into(), hard);
        }
        _ => {}
    }
    Ok(())
}

/// Admission plugins that may reject a create: Priority and ResourceQuota.
pub fn admit_create(c: &mut Cluster, res: Res, v: &mut Value, name: &str) -> Result<(), ApiError> {
    if res == Res::Pod {
        admit_priority(c, v, name)?;
    }
    quota::admit(c, res, v, name)
}

fn admit_priority(c: &Cluster, v: &mut Value, name: &str) -> Result<(), ApiError> {
    let def = Res::Pod.def();
    let class_name = v
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .map(String::from);
    let class = match &class_name {
        Some(n) if !n.is_empty() => match c.store.get(Res::PriorityClass, "", n) {
            Some(pc) => Some(pc),
            None => {
                return Err(ApiError::forbidden(
                    def,
                    name,
                    &format!("no PriorityClass with name {n} was found"),
                ));
            }
        },
        _ => c
            .store
            .iter(Res::PriorityClass, None, None)
            .find(|p| p.value.get("globalDefault").and_then(Value::as_bool) == Some(true))
            .cloned(),
    };
    let (priority, policy) = match &class {
        Some(pc) => (
            pc.value.get("value").and_then(Value::as_i64).unwrap_or(0),
            pc.value
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string()),
    };
    let spec = object::obj_field_mut(v, "spec");
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != priority
    {
        return Err(ApiError::forbidden(
            def,
            name,
            &format!(
                "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ),
        ));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(pc) = &class
        && class_name.as_deref().is_none_or(str::is_empty)
    {
        spec.insert("priorityClassName".into(), json!(pc.key.1));
    }
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

/// Pod updates may change only images, `activeDeadlineSeconds`, added tolerations,
/// `terminationGracePeriodSeconds` and scheduling gates (`ValidatePodUpdate`).
pub fn pod_update_forbidden(old: &Value, new: &Value) -> Vec<Cause> {
    let (Some(os), Some(ns)) = (old.get("spec"), new.get("spec")) else {
        return Vec::new();
    };
    let strip = |s: &Value| {
        let mut s = s.clone();
        let m = object::as_map(&mut s);
        for k in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            m.remove(k);
        }
        for field in ["containers", "initContainers"] {
            if let Some(Value::Array(cs)) = m.get_mut(field) {
                for c in cs {
                    object::as_map(c).remove("image");
                }
            }
        }
        s
    };
    if strip(os) == strip(ns) && old.pointer("/spec/nodeName") == new.pointer("/spec/nodeName") {
        Vec::new()
    } else {
        vec![Cause::new(
            "FieldValueForbidden",
            "spec",
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        )]
    }
}
