//! Rendered Kubernetes manifests: loading multi-document YAML and the rules every object we
//! ship must follow.
//!
//! Each check returns every problem it finds, as a sentence naming the object
//! (`Deployment spark-orchestrator-migrate: …`), so one run of the tests shows them all.

use serde_json::Value;

use crate::{Error, Result};

/// Largest rendered YAML we read (deploy/ renders to about 150 KiB).
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// Parses multi-document YAML into JSON values, dropping empty documents. Every document must
/// be a Kubernetes object: a map with `apiVersion`, `kind` and `metadata.name`.
pub fn load(what: &str, text: &str) -> Result<Vec<Value>> {
    if text.len() > MAX_BYTES {
        return Err(Error::Invalid {
            what: what.into(),
            message: format!("{} bytes is more than {MAX_BYTES}", text.len()),
        });
    }
    let mut objects = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|source| Error::Yaml {
            what: format!("{what} document {}", i + 1),
            source,
        })?;
        if value.is_null() {
            continue;
        }
        let field = |p: &str| value.pointer(p).and_then(Value::as_str).unwrap_or("");
        if field("/apiVersion").is_empty()
            || field("/kind").is_empty()
            || field("/metadata/name").is_empty()
        {
            return Err(Error::Invalid {
                what: format!("{what} document {}", i + 1),
                message: "not a Kubernetes object (apiVersion, kind and metadata.name)".into(),
            });
        }
        objects.push(value);
    }
    Ok(objects)
}

/// `Kind name` (or `Kind namespace/name`), for messages.
pub fn describe(obj: &Value) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("?");
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) => format!("{} {ns}/{}", s("/kind"), s("/metadata/name")),
        None => format!("{} {}", s("/kind"), s("/metadata/name")),
    }
}

/// The objects of one kind.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects
        .iter()
        .filter(|o| o.get("kind").and_then(Value::as_str) == Some(kind))
        .collect()
}

/// One object by kind and name.
pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    of_kind(objects, kind)
        .into_iter()
        .find(|o| o.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// RBAC rules that grant more than they name: `*` anywhere (verbs, resources, apiGroups,
/// resourceNames), `nonResourceURLs`, a rule without verbs or resources, escalation verbs
/// (`escalate`, `bind`, `impersonate`), or access to Secrets.
pub fn rbac_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for obj in objects.iter().filter(|o| {
        matches!(
            o.get("kind").and_then(Value::as_str),
            Some("Role" | "ClusterRole")
        )
    }) {
        let who = describe(obj);
        if obj.get("aggregationRule").is_some() {
            problems.push(format!(
                "{who}: aggregationRule grants whatever other roles hold"
            ));
        }
        let rules = obj.get("rules").and_then(Value::as_array);
        if rules.is_none_or(|r| r.is_empty()) {
            problems.push(format!("{who}: no rules"));
        }
        for (i, rule) in rules.into_iter().flatten().enumerate() {
            for field in ["verbs", "resources", "apiGroups", "resourceNames"] {
                if strings(rule.get(field)).iter().any(|s| s.contains('*')) {
                    problems.push(format!("{who} rule {i}: `*` in {field}"));
                }
            }
            if rule.get("nonResourceURLs").is_some() {
                problems.push(format!("{who} rule {i}: nonResourceURLs"));
            }
            if strings(rule.get("verbs")).is_empty() || strings(rule.get("resources")).is_empty() {
                problems.push(format!("{who} rule {i}: names no verbs or no resources"));
            }
            if rule.get("apiGroups").and_then(Value::as_array).is_none() {
                problems.push(format!("{who} rule {i}: no apiGroups"));
            }
            for verb in strings(rule.get("verbs")) {
                if matches!(verb, "escalate" | "bind" | "impersonate") {
                    problems.push(format!(
                        "{who} rule {i}: verb {verb} lets it grant itself more"
                    ));
                }
            }
            if strings(rule.get("resources")).contains(&"secrets") {
                problems.push(format!("{who} rule {i}: access to Secrets"));
            }
        }
    }
    problems
}

/// The pod templates of workloads (Deployment, StatefulSet, DaemonSet, Job) and bare Pods.
pub fn pod_specs(objects: &[Value]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter_map(|o| {
            let spec = match o.get("kind").and_then(Value::as_str)? {
                "Pod" => o.get("spec"),
                "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                    o.pointer("/spec/template/spec")
                }
                "CronJob" => o.pointer("/spec/jobTemplate/spec/template/spec"),
                _ => None,
            }?;
            Some((describe(o), spec))
        })
        .collect()
}

/// Pods that are not hardened: each container (init containers too) must run as non-root with
/// a read-only root filesystem, no privilege escalation, every capability dropped, the
/// RuntimeDefault seccomp profile (its own or the pod's), requests and limits; no host
/// namespaces or hostPath volumes.
pub fn pod_security_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (who, spec) in pod_specs(objects) {
        let pod_sc = spec.get("securityContext");
        let pod_bool = |k: &str| pod_sc.and_then(|s| s.get(k)).and_then(Value::as_bool);
        let pod_seccomp = pod_sc
            .and_then(|s| s.pointer("/seccompProfile/type"))
            .and_then(Value::as_str);
        for host in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec.get(host).and_then(Value::as_bool) == Some(true) {
                problems.push(format!("{who}: {host}"));
            }
        }
        if spec
            .get("volumes")
            .and_then(Value::as_array)
            .is_some_and(|v| v.iter().any(|v| v.get("hostPath").is_some()))
        {
            problems.push(format!("{who}: a hostPath volume"));
        }
        let containers = ["containers", "initContainers"]
            .iter()
            .filter_map(|k| spec.get(*k).and_then(Value::as_array))
            .flatten();
        let mut any = false;
        for c in containers {
            any = true;
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            let who = format!("{who} container {name}");
            let sc = c.get("securityContext");
            let flag = |k: &str| sc.and_then(|s| s.get(k)).and_then(Value::as_bool);
            if flag("runAsNonRoot").or(pod_bool("runAsNonRoot")) != Some(true) {
                problems.push(format!("{who}: runAsNonRoot is not true"));
            }
            let uid = sc
                .and_then(|s| s.get("runAsUser"))
                .or_else(|| pod_sc.and_then(|s| s.get("runAsUser")))
                .and_then(Value::as_i64);
            if uid == Some(0) {
                problems.push(format!("{who}: runAsUser 0"));
            }
            if flag("readOnlyRootFilesystem") != Some(true) {
                problems.push(format!("{who}: readOnlyRootFilesystem is not true"));
            }
            if flag("allowPrivilegeEscalation") != Some(false) {
                problems.push(format!("{who}: allowPrivilegeEscalation is not false"));
            }
            if flag("privileged") == Some(true) {
                problems.push(format!("{who}: privileged"));
            }
            let drop = strings(sc.and_then(|s| s.pointer("/capabilities/drop")));
            if !drop.contains(&"ALL") {
                problems.push(format!("{who}: capabilities do not drop ALL"));
            }
            if !strings(sc.and_then(|s| s.pointer("/capabilities/add"))).is_empty() {
                problems.push(format!("{who}: adds capabilities"));
            }
            let seccomp = sc
                .and_then(|s| s.pointer("/seccompProfile/type"))
                .and_then(Value::as_str)
                .or(pod_seccomp);
            if seccomp != Some("RuntimeDefault") && seccomp != Some("Localhost") {
                problems.push(format!("{who}: seccompProfile is not RuntimeDefault"));
            }
            for (part, key) in [
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "memory"),
            ] {
                if c.pointer(&format!("/resources/{part}/{key}")).is_none() {
                    problems.push(format!("{who}: no resources.{part}.{key}"));
                }
            }
        }
        if !any {
            problems.push(format!("{who}: no containers"));
        }
    }
    problems
}

/// Images that move: no tag, `latest`, or a tag without a version digit (digests are fine).
pub fn image_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    for (who, spec) in pod_specs(objects) {
        for c in ["containers", "initContainers"]
            .iter()
            .filter_map(|k| spec.get(*k).and_then(Value::as_array))
            .flatten()
        {
            let image = c.get("image").and_then(Value::as_str).unwrap_or("");
            if let Err(why) = crate::dockerfile::pinned(image) {
                problems.push(format!("{who}: image {image:?}: {why}"));
            }
        }
    }
    problems
}

/// Secret values in the manifests: any Secret object with `data` or `stringData` (secrets are
/// created by the operator with `kubectl create secret`, never shipped).
pub fn secret_problems(objects: &[Value]) -> Vec<String> {
    of_kind(objects, "Secret")
        .into_iter()
        .filter(|s| {
            ["data", "stringData"].iter().any(|k| {
                s.get(*k)
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
            })
        })
        .map(|s| format!("{}: carries secret values", describe(s)))
        .collect()
}

/// The (name, key) of every `secretKeyRef` in the pod templates.
pub fn secret_refs(objects: &[Value]) -> Vec<(String, String, String)> {
    let mut refs = Vec::new();
    for (who, spec) in pod_specs(objects) {
        for c in spec
            .get("containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for env in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                if let Some(r) = env.pointer("/valueFrom/secretKeyRef") {
                    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                    refs.push((who.clone(), s("name"), s("key")));
                }
            }
        }
    }
    refs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn role(rules: Value) -> Vec<Value> {
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "r"}, "rules": rules}),
        ]
    }

    #[test]
    fn load_reads_documents_and_refuses_what_is_not_an_object() {
        let objs = load(
            "t",
            "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n---\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b}\n",
        )
        .unwrap();
        assert_eq!(objs.len(), 2);
        assert_eq!(describe(&objs[1]), "ServiceAccount b");
        for (text, expected) in [
            ("groups: []\n", "not a Kubernetes object"),
            ("- a\n- b\n", "not a Kubernetes object"),
            ("apiVersion: v1\nkind: X\n", "not a Kubernetes object"),
            ("apiVersion: v1\nkind: [\n", "invalid YAML"),
            ("a: &x [*x]\n", "invalid YAML"),
            ("\u{0}", "invalid YAML"),
        ] {
            let err = load("t", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let huge = "#".repeat(MAX_BYTES + 1);
        assert!(
            load("t", &huge)
                .unwrap_err()
                .to_string()
                .contains("more than")
        );
    }

    #[test]
    fn rbac_wildcards_and_dangerous_grants_are_named() {
        let good = role(json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]));
        assert_eq!(rbac_problems(&good), Vec::<String>::new());
        for (rule, expected) in [
            (
                json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}),
                "`*` in verbs",
            ),
            (
                json!({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}),
                "`*` in resources",
            ),
            (
                json!({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}),
                "`*` in apiGroups",
            ),
            (
                json!({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}),
                "`*` in resources",
            ),
            (
                json!({"apiGroups": [""], "resources": ["pods"], "resourceNames": ["*"], "verbs": ["get"]}),
                "resourceNames",
            ),
            (
                json!({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}),
                "nonResourceURLs",
            ),
            (
                json!({"apiGroups": [""], "resources": [], "verbs": ["get"]}),
                "no verbs or no resources",
            ),
            (
                json!({"resources": ["pods"], "verbs": ["get"]}),
                "no apiGroups",
            ),
            (
                json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]}),
                "escalate",
            ),
            (
                json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}),
                "Secrets",
            ),
        ] {
            let found = rbac_problems(&role(json!([rule])));
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{expected}: {found:?}"
            );
        }
        assert!(
            rbac_problems(&role(json!([])))
                .iter()
                .any(|p| p.contains("no rules"))
        );
    }

    fn deployment(container: Value, pod_sc: Value) -> Vec<Value> {
        vec![
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"securityContext": pod_sc, "containers": [container]}}}}),
        ]
    }

    fn hardened() -> Value {
        json!({"name": "c", "image": "x:1.0",
            "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}},
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}})
    }

    #[test]
    fn unhardened_pods_are_named() {
        assert_eq!(
            pod_security_problems(&deployment(hardened(), json!({}))),
            Vec::<String>::new()
        );
        for (pointer, value, expected) in [
            (
                "/securityContext/runAsNonRoot",
                json!(false),
                "runAsNonRoot",
            ),
            (
                "/securityContext/readOnlyRootFilesystem",
                json!(false),
                "readOnlyRootFilesystem",
            ),
            (
                "/securityContext/allowPrivilegeEscalation",
                json!(true),
                "allowPrivilegeEscalation",
            ),
            (
                "/securityContext/capabilities",
                json!({"drop": ["NET_RAW"]}),
                "drop ALL",
            ),
            (
                "/securityContext/capabilities",
                json!({"drop": ["ALL"], "add": ["NET_ADMIN"]}),
                "adds capabilities",
            ),
            (
                "/securityContext/seccompProfile",
                json!({"type": "Unconfined"}),
                "seccompProfile",
            ),
            ("/securityContext/privileged", json!(true), "privileged"),
            ("/securityContext/runAsUser", json!(0), "runAsUser 0"),
            ("/resources", json!({}), "no resources.requests.cpu"),
            ("/securityContext", json!(null), "runAsNonRoot"),
        ] {
            let mut c = hardened();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            c.pointer_mut(parent).unwrap()[key] = value;
            let found = pod_security_problems(&deployment(c, json!({})));
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{pointer}: {found:?}"
            );
        }
        // The pod-level context counts for runAsNonRoot and seccomp.
        let mut c = hardened();
        c["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("runAsNonRoot");
        c["securityContext"]
            .as_object_mut()
            .unwrap()
            .remove("seccompProfile");
        let pod = json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}});
        assert_eq!(
            pod_security_problems(&deployment(c.clone(), pod)),
            Vec::<String>::new()
        );
        assert_eq!(pod_security_problems(&deployment(c, json!({}))).len(), 2);
        let mut host = deployment(hardened(), json!({}));
        host[0]["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
        host[0]["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "h", "hostPath": {"path": "/"}}]);
        assert_eq!(pod_security_problems(&host).len(), 2);
    }

    #[test]
    fn moving_images_and_secret_values_are_named() {
        for (image, ok) in [
            ("x:1.0", true),
            ("registry.example:5000/x:0.1.0", true),
            (
                "x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                true,
            ),
            ("x", false),
            ("x:latest", false),
            ("registry.example:5000/x", false),
            ("", false),
        ] {
            let mut c = hardened();
            c["image"] = json!(image);
            assert_eq!(
                image_problems(&deployment(c, json!({}))).is_empty(),
                ok,
                "{image}"
            );
        }
        let secret = |body: Value| {
            let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
            s.as_object_mut()
                .unwrap()
                .extend(body.as_object().unwrap().clone());
            vec![s]
        };
        assert_eq!(
            secret_problems(&secret(json!({"data": {"k": "dg=="}}))).len(),
            1
        );
        assert_eq!(
            secret_problems(&secret(json!({"stringData": {"k": "v"}}))).len(),
            1
        );
        assert!(secret_problems(&secret(json!({}))).is_empty());
    }
}
