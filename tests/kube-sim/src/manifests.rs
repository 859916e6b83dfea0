//! Objects created at start from YAML manifests (multi-document, `kind: List` too), as
//! `kubectl apply` of a rendered kustomization would create them: namespaces first, kinds
//! the simulator does not serve (Deployments, ConfigMaps, ...) skipped, and any object
//! the API would refuse is a start-up error naming it.

use serde::Deserialize;
use serde_json::Value;

use crate::api::{self, WriteOpts};
use crate::cluster::Cluster;
use crate::resources::{ALL, Res};

/// Parse a multi-document YAML text into objects (empty documents dropped, `List`s
/// flattened). Errors name the document.
pub fn parse(yaml: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let v = Value::deserialize(doc).map_err(|e| format!("manifest document {}: {e}", i + 1))?;
        match v {
            Value::Null => {}
            Value::Object(_) => {
                if v.get("kind").and_then(Value::as_str) == Some("List") {
                    if let Some(items) = v.get("items").and_then(Value::as_array) {
                        out.extend(items.iter().cloned());
                    }
                } else {
                    out.push(v);
                }
            }
            other => {
                return Err(format!(
                    "manifest document {}: expected an object, got {}",
                    i + 1,
                    match other {
                        Value::Array(_) => "a list",
                        Value::String(_) => "a string",
                        _ => "a scalar",
                    }
                ));
            }
        }
    }
    Ok(out)
}

/// Read and parse manifest files.
pub fn read(paths: &[std::path::PathBuf]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(p).map_err(|e| format!("manifests: {}: {e}", p.display()))?;
        out.extend(parse(&text).map_err(|e| format!("manifests: {}: {e}", p.display()))?);
    }
    Ok(out)
}

/// The served resource an object's `apiVersion`/`kind` names.
pub fn resource_of(v: &Value) -> Option<Res> {
    let av = v.get("apiVersion").and_then(Value::as_str)?;
    let kind = v.get("kind").and_then(Value::as_str)?;
    ALL.into_iter()
        .find(|r| r.def().api_version() == av && r.def().kind == kind)
}

/// Create the objects; returns how many were skipped as kinds not served.
pub fn create_all(c: &mut Cluster, objects: &[Value]) -> Result<usize, String> {
    let (mut namespaces, mut rest): (Vec<&Value>, Vec<&Value>) = (Vec::new(), Vec::new());
    let mut skipped = 0;
    for o in objects {
        match resource_of(o) {
            Some(Res::Namespace) => namespaces.push(o),
            Some(_) => rest.push(o),
            None => skipped += 1,
        }
    }
    let opts = WriteOpts::internal("kube-sim-manifests");
    for o in namespaces.into_iter().chain(rest) {
        let Some(res) = resource_of(o) else { continue };
        let ns = crate::object::namespace(o);
        let ns = if res.def().namespaced && ns.is_empty() {
            "default"
        } else {
            ns
        };
        let name = crate::object::name(o).to_string();
        let body = if res == Res::EventV1 {
            crate::eventconv::v1_to_core(o)
        } else {
            o.clone()
        };
        match api::create(c, res.storage(), ns, body, &opts) {
            Ok(_) => {}
            Err(e) if res == Res::Namespace && e.reason == "AlreadyExists" => {}
            Err(e) => {
                return Err(format!(
                    "manifests: {} {}{name}: {}",
                    res.def().kind,
                    if ns.is_empty() {
                        String::new()
                    } else {
                        format!("{ns}/")
                    },
                    e.message
                ));
            }
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_documents() {
        let yaml = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n- {apiVersion: apps/v1, kind: Deployment, metadata: {name: d}}\n";
        let objs = parse(yaml).unwrap();
        assert_eq!(objs.len(), 3);
        assert_eq!(resource_of(&objs[0]), Some(Res::Namespace));
        assert_eq!(resource_of(&objs[2]), None);
        let rb = serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding"});
        assert_eq!(resource_of(&rb), Some(Res::RoleBinding));
    }

    #[test]
    fn malformed_documents_name_the_document() {
        for (yaml, want) in [
            (
                "a: b\n---\n[1, 2]\n",
                "manifest document 2: expected an object, got a list",
            ),
            (
                "---\n- x\n",
                "manifest document 1: expected an object, got a list",
            ),
            (
                "just a string\n",
                "manifest document 1: expected an object, got a string",
            ),
            ("a: [unclosed\n", "manifest document 1: "),
            ("a: 1\n---\nkey: {x: 1\n", "manifest document 2: "),
        ] {
            let e = parse(yaml).unwrap_err();
            assert!(e.starts_with(want), "{yaml:?}: {e}");
        }
    }
}
