//! Custom resources checked against their CustomResourceDefinition's OpenAPI v3 schema.
//!
//! A CRD's `openAPIV3Schema` is (a subset of) JSON Schema, so the `jsonschema` crate
//! validates against it once two things are adjusted: objects that declare `properties` refuse
//! other fields (the API server would silently prune them; `kubectl apply --validate=strict`
//! refuses them, and so do we — a typo in a ServiceMonitor must not pass), unless the schema
//! says `x-kubernetes-preserve-unknown-fields`; and `metadata`, which CRDs leave open, gets
//! the fields an ObjectMeta in a manifest may have. CEL rules (`x-kubernetes-validations`) are
//! not evaluated.

use serde_json::{Map, Value, json};

use crate::{Error, Result};

/// A compiled schema for one kind and version of a CRD.
pub struct CrdSchema {
    /// `group/version`.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CrdSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrdSchema")
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl CrdSchema {
    /// Reads a CRD manifest (YAML) and compiles the schema of `version` (e.g. `v1`).
    pub fn from_crd(what: &str, crd_yaml: &str, version: &str) -> Result<Self> {
        let invalid = |message: String| Error::Invalid {
            what: what.into(),
            message,
        };
        let crd: Value = serde_yaml_ng::from_str(crd_yaml).map_err(|source| Error::Yaml {
            what: what.into(),
            source,
        })?;
        if crd.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            return Err(invalid("not a CustomResourceDefinition".into()));
        }
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no spec.group".into()))?;
        let kind = crd
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no spec.names.kind".into()))?;
        let mut schema = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some(version))
            })
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .cloned()
            .ok_or_else(|| invalid(format!("no openAPIV3Schema for version {version}")))?;
        strict(&mut schema);
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.insert("metadata".into(), object_meta());
        }
        let validator = jsonschema::validator_for(&schema)
            .map_err(|e| invalid(format!("the schema does not compile: {e}")))?;
        Ok(Self {
            api_version: format!("{group}/{version}"),
            kind: kind.to_owned(),
            validator,
        })
    }

    /// Every way the object breaks the schema, with its JSON path; also a wrong
    /// `apiVersion`/`kind`.
    pub fn validate(&self, obj: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        if obj.get("apiVersion").and_then(Value::as_str) != Some(self.api_version.as_str()) {
            problems.push(format!("apiVersion is not {}", self.api_version));
        }
        if obj.get("kind").and_then(Value::as_str) != Some(self.kind.as_str()) {
            problems.push(format!("kind is not {}", self.kind));
        }
        problems.extend(
            self.validator
                .iter_errors(obj)
                .map(|e| format!("{}: {e}", e.instance_path())),
        );
        problems
    }
}

/// Closes every object schema that lists its properties, unless it preserves unknown fields.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(m) => {
            let preserve = m
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                == Some(true);
            if m.contains_key("properties") && !m.contains_key("additionalProperties") && !preserve
            {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, child) in m.iter_mut() {
                // `properties` maps field names to schemas; a field may be named like a keyword.
                if key == "properties" {
                    if let Value::Object(props) = child {
                        props.values_mut().for_each(strict);
                    }
                } else {
                    strict(child);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The ObjectMeta fields a manifest may set.
fn object_meta() -> Value {
    let strings = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let mut props = Map::new();
    props.insert(
        "name".into(),
        json!({"type": "string", "minLength": 1, "maxLength": 253}),
    );
    props.insert(
        "namespace".into(),
        json!({"type": "string", "minLength": 1, "maxLength": 63}),
    );
    props.insert("labels".into(), strings.clone());
    props.insert("annotations".into(), strings);
    json!({"type": "object", "required": ["name"], "properties": props, "additionalProperties": false})
}

#[cfg(test)]
mod tests {
    use super::*;

    const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion: {type: string}
            kind: {type: string}
            metadata: {type: object}
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer, minimum: 1}
                port:
                  x-kubernetes-int-or-string: true
                  anyOf: [{type: integer}, {type: string}]
                properties: {type: string}
                free:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties: {known: {type: string}}
                labels:
                  type: object
                  additionalProperties: {type: string}
"#;

    fn widget(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "n", "labels": {"a": "b"}}, "spec": spec})
    }

    #[test]
    fn valid_objects_pass_and_every_mistake_is_named() {
        let s = CrdSchema::from_crd("t", CRD, "v1").unwrap();
        let ok = widget(json!({"size": 2, "port": "http", "properties": "x",
            "free": {"known": "a", "anything": [1]}, "labels": {"k": "v"}}));
        assert_eq!(s.validate(&ok), Vec::<String>::new());
        for (obj, expected) in [
            (widget(json!({"size": 2, "sise": 3})), "/spec"),
            (widget(json!({"size": 0})), "/spec/size"),
            (widget(json!({"size": "2"})), "/spec/size"),
            (widget(json!({})), "size"),
            (widget(json!({"size": 1, "port": 1.5})), "/spec/port"),
            (
                widget(json!({"size": 1, "labels": {"k": 1}})),
                "/spec/labels/k",
            ),
            (
                widget(json!({"size": 1, "free": {"known": 1}})),
                "/spec/free/known",
            ),
        ] {
            let found = s.validate(&obj);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "{expected}: {found:?}"
            );
        }
        let mut bad_meta = ok.clone();
        bad_meta["metadata"]["lables"] = json!({});
        assert!(!s.validate(&bad_meta).is_empty(), "a typo in metadata");
        let mut other = ok.clone();
        other["apiVersion"] = json!("example.com/v2");
        other["kind"] = json!("Gadget");
        assert_eq!(s.validate(&other).len(), 2);
    }

    #[test]
    fn a_broken_crd_is_refused() {
        for (text, expected) in [
            ("kind: ConfigMap\n", "not a CustomResourceDefinition"),
            ("kind: CustomResourceDefinition\nspec: {}\n", "spec.group"),
            ("[", "invalid YAML"),
        ] {
            let err = CrdSchema::from_crd("t", text, "v1")
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
        let err = CrdSchema::from_crd("t", CRD, "v2").unwrap_err().to_string();
        assert!(err.contains("no openAPIV3Schema for version v2"), "{err}");
    }
}
