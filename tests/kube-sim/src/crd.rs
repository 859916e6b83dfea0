//! SparkApplication validation against the vendored Spark Operator CRD
//! (`tests/fixtures/spark-operator/crds/sparkoperator.k8s.io_sparkapplications.yaml`):
//! an OpenAPI v3 structural-schema walker that checks types, `required`, `enum`,
//! `minimum`/`maximum`, `pattern`, lengths and item counts, honours
//! `x-kubernetes-int-or-string` and `x-kubernetes-preserve-unknown-fields`, prunes
//! unknown fields and nulls (as the API server does) and reports what it pruned.
//! `x-kubernetes-validations` (CEL) rules are not evaluated.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

use crate::error::Cause;

/// The CRD manifest, vendored in the repository.
pub const CRD_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../fixtures/spark-operator/crds/sparkoperator.k8s.io_sparkapplications.yaml"
));

struct Schema {
    root: Value,
    patterns: HashMap<String, Regex>,
}

fn collect_patterns(v: &Value, out: &mut HashMap<String, Regex>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(p)) = m.get("pattern")
                && !out.contains_key(p)
                && let Ok(re) = Regex::new(p)
            {
                out.insert(p.clone(), re);
            }
            for (k, c) in m {
                // `properties` maps field names to schemas; a field may itself be named "pattern".
                if k != "pattern" || !c.is_string() {
                    collect_patterns(c, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_patterns(c, out)),
        _ => {}
    }
}

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let crd: Value = serde_yaml_ng::from_str(CRD_YAML).unwrap_or(Value::Null);
        let root = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| {
                vs.iter()
                    .find(|v| v.get("name").and_then(Value::as_str) == Some("v1beta2"))
            })
            .and_then(|v| v.pointer("/schema/openAPIV3Schema"))
            .cloned()
            .unwrap_or(Value::Null);
        let mut patterns = HashMap::new();
        collect_patterns(&root, &mut patterns);
        Schema { root, patterns }
    })
}

/// The CRD's `openAPIV3Schema` for v1beta2 (`Null` if the fixture could not be parsed).
pub fn openapi_schema() -> &'static Value {
    &schema().root
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn show(v: &Value) -> String {
    v.to_string()
}

struct Walk<'a> {
    causes: Vec<Cause>,
    unknown: Vec<String>,
    patterns: &'a HashMap<String, Regex>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Walk<'_> {
    fn invalid(&mut self, path: &str, v: &Value, what: String) {
        self.causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {}: {path} in body {what}", show(v)),
        ));
    }

    fn check(&mut self, s: &Value, v: &mut Value, path: &str) {
        let int_or_string =
            s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true);
        let preserve = s
            .get("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            == Some(true);
        if int_or_string {
            if !(v.is_string() || type_name(v) == "integer") {
                self.causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    path,
                    format!("Invalid value: \"{}\": {path} in body must be of type integer,string: \"{}\"", type_name(v), type_name(v)),
                ));
            }
            // A string still has to match the pattern (quantities).
            if let (Some(st), Some(p)) = (v.as_str(), s.get("pattern").and_then(Value::as_str))
                && let Some(re) = self.patterns.get(p)
                && !re.is_match(st)
            {
                let st = Value::String(st.to_string());
                self.invalid(path, &st, format!("should match '{p}'"));
            }
            return;
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            let actual = type_name(v);
            let ok = actual == t || (t == "number" && actual == "integer");
            if !ok {
                self.causes.push(Cause::new(
                    "FieldValueTypeInvalid",
                    path,
                    format!("Invalid value: \"{actual}\": {path} in body must be of type {t}: \"{actual}\""),
                ));
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(v)
        {
            let list: Vec<String> = e.iter().map(show).collect();
            self.causes.push(Cause::new(
                "FieldValueNotSupported",
                path,
                format!(
                    "Unsupported value: {}: supported values: {}",
                    show(v),
                    list.join(", ")
                ),
            ));
        }
        match v {
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(0.0);
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    let excl = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
                    if x < min || (excl && x == min) {
                        let op = if excl {
                            "greater than"
                        } else {
                            "greater than or equal to"
                        };
                        let v2 = v.clone();
                        self.invalid(path, &v2, format!("should be {op} {}", s["minimum"]));
                    }
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    let excl = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
                    if x > max || (excl && x == max) {
                        let op = if excl {
                            "less than"
                        } else {
                            "less than or equal to"
                        };
                        let v2 = v.clone();
                        self.invalid(path, &v2, format!("should be {op} {}", s["maximum"]));
                    }
                }
            }
            Value::String(st) => {
                let len = st.chars().count() as u64;
                let st = st.clone();
                if let Some(p) = s.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.patterns.get(p)
                    && !re.is_match(&st)
                {
                    self.invalid(
                        path,
                        &Value::String(st.clone()),
                        format!("should match '{p}'"),
                    );
                }
                if let Some(m) = s.get("minLength").and_then(Value::as_u64)
                    && len < m
                {
                    self.invalid(
                        path,
                        &Value::String(st.clone()),
                        format!("should be at least {m} chars long"),
                    );
                }
                if let Some(m) = s.get("maxLength").and_then(Value::as_u64)
                    && len > m
                {
                    self.causes.push(Cause::new(
                        "FieldValueTooLong",
                        path,
                        format!("Too long: may not be more than {m} bytes"),
                    ));
                }
            }
            Value::Array(items) => {
                let n = items.len() as u64;
                if let Some(m) = s.get("minItems").and_then(Value::as_u64)
                    && n < m
                {
                    self.invalid(
                        path,
                        &Value::Null,
                        format!("should have at least {m} items"),
                    );
                }
                if let Some(m) = s.get("maxItems").and_then(Value::as_u64)
                    && n > m
                {
                    self.causes.push(Cause::new(
                        "FieldValueTooMany",
                        path,
                        format!("Too many: {n}: must have at most {m} items"),
                    ));
                }
                if let Some(is) = s.get("items") {
                    for (i, item) in items.iter_mut().enumerate() {
                        if item.is_null()
                            && is.get("nullable").and_then(Value::as_bool) != Some(true)
                        {
                            continue;
                        }
                        self.check(is, item, &format!("{path}[{i}]"));
                    }
                }
            }
            Value::Object(map) => {
                let props = s.get("properties").and_then(Value::as_object);
                let addl = s.get("additionalProperties");
                let mut remove = Vec::new();
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let child_path = join(path, &k);
                    let child_schema = props.and_then(|p| p.get(&k)).or(match addl {
                        Some(a) if a.is_object() => Some(a),
                        _ => None,
                    });
                    let Some(child) = map.get_mut(&k) else {
                        continue;
                    };
                    match child_schema {
                        Some(cs) => {
                            if child.is_null()
                                && cs.get("nullable").and_then(Value::as_bool) != Some(true)
                            {
                                remove.push(k);
                                continue;
                            }
                            self.check(cs, child, &child_path);
                        }
                        None if preserve || addl.and_then(Value::as_bool) == Some(true) => {}
                        None => {
                            self.unknown.push(child_path);
                            remove.push(k);
                        }
                    }
                }
                for k in remove {
                    map.remove(&k);
                }
                if let Some(req) = s.get("required").and_then(Value::as_array) {
                    for r in req.iter().filter_map(Value::as_str) {
                        if !map.contains_key(r) {
                            self.causes.push(Cause::new(
                                "FieldValueRequired",
                                join(path, r),
                                "Required value",
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Validate and prune a SparkApplication in place (everything but `metadata`, which the
/// API server validates itself). Returns the schema violations and the pruned unknown fields.
pub fn prune_and_validate(obj: &mut Value) -> (Vec<Cause>, Vec<String>) {
    let sch = schema();
    let mut w = Walk {
        causes: Vec::new(),
        unknown: Vec::new(),
        patterns: &sch.patterns,
    };
    let Some(map) = obj.as_object_mut() else {
        w.causes
            .push(Cause::new("FieldValueTypeInvalid", "", "must be an object"));
        return (w.causes, w.unknown);
    };
    let props = sch.root.get("properties").and_then(Value::as_object);
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        if k == "metadata" || k == "apiVersion" || k == "kind" {
            continue;
        }
        let Some(child) = map.get_mut(&k) else {
            continue;
        };
        match props.and_then(|p| p.get(&k)) {
            Some(cs) => {
                if child.is_null() {
                    map.remove(&k);
                    continue;
                }
                w.check(cs, child, &k);
            }
            None => {
                w.unknown.push(k.clone());
                map.remove(&k);
            }
        }
    }
    if let Some(req) = sch.root.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if !map.contains_key(r) {
                w.causes
                    .push(Cause::new("FieldValueRequired", r, "Required value"));
            }
        }
    }
    (w.causes, w.unknown)
}

/// Offline check of a SparkApplication against the CRD schema, as the API server would
/// do it with `fieldValidation=Strict`: every violation and every unknown field becomes
/// a message like `spec.type: Unsupported value: "Go": supported values: ...`.
pub fn validate_spark_application(obj: &Value) -> Result<(), Vec<String>> {
    let mut copy = obj.clone();
    let mut errs: Vec<String> = Vec::new();
    if copy.get("apiVersion").and_then(Value::as_str) != Some("sparkoperator.k8s.io/v1beta2") {
        errs.push("apiVersion: must be \"sparkoperator.k8s.io/v1beta2\"".into());
    }
    if copy.get("kind").and_then(Value::as_str) != Some("SparkApplication") {
        errs.push("kind: must be \"SparkApplication\"".into());
    }
    let name = crate::object::name(obj).to_string();
    if let Some(c) =
        crate::validation::validate_name(crate::resources::Res::SparkApplication, &name)
    {
        errs.push(c.display());
    }
    let (causes, unknown) = prune_and_validate(&mut copy);
    errs.extend(causes.iter().map(Cause::display));
    errs.extend(
        unknown
            .iter()
            .map(|u| format!("{u}: unknown field \"{u}\"")),
    );
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spark_pi() -> Value {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/spark-operator/examples/spark-pi.yaml"
        ));
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn schema_loads() {
        assert!(
            openapi_schema()
                .pointer("/properties/spec/properties/driver")
                .is_some()
        );
    }

    #[test]
    fn every_vendored_example_is_valid() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/spark-operator/examples"
        );
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let Ok(v) = serde_yaml_ng::from_str::<Value>(&text) else {
                continue;
            };
            if v.get("kind").and_then(Value::as_str) != Some("SparkApplication") {
                continue;
            }
            assert_eq!(validate_spark_application(&v), Ok(()), "{}", path.display());
        }
    }

    #[test]
    fn reports_type_enum_minimum_required_and_unknown() {
        let mut v = spark_pi();
        v["spec"]["type"] = "Go".into();
        v["spec"]["driver"]["cores"] = 0.into();
        v["spec"]["executor"]["instances"] = "two".into();
        v["spec"]["bogus"] = true.into();
        v["spec"]
            .as_object_mut()
            .unwrap()
            .remove("mainApplicationFile");
        let errs = validate_spark_application(&v).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("spec.type: Unsupported value: \"Go\": supported values: \"Java\", \"Python\", \"Scala\", \"R\""), "{all}");
        assert!(all.contains("spec.driver.cores: Invalid value: 0: spec.driver.cores in body should be greater than or equal to 1"), "{all}");
        assert!(all.contains("spec.executor.instances: Invalid value: \"string\": spec.executor.instances in body must be of type integer: \"string\""), "{all}");
        assert!(
            all.contains("spec.mainApplicationFile: Required value"),
            "{all}"
        );
        assert!(
            all.contains("spec.bogus: unknown field \"spec.bogus\""),
            "{all}"
        );
    }

    #[test]
    fn pattern_is_checked() {
        let mut v = spark_pi();
        // The podName pattern is unanchored (as in the CRD): only a name without any
        // lowercase alphanumeric fails it.
        v["spec"]["driver"]["podName"] = "___".into();
        v["spec"]["batchSchedulerOptions"] =
            serde_json::json!({"resources": {"cpu": "12x", "memory": "1Gi"}});
        let errs = validate_spark_application(&v).unwrap_err().join("\n");
        assert!(errs.contains("spec.driver.podName: Invalid value: \"___\": spec.driver.podName in body should match '"), "{errs}");
        assert!(
            errs.contains("spec.batchSchedulerOptions.resources.cpu: Invalid value: \"12x\""),
            "{errs}"
        );
        assert!(!errs.contains("resources.memory"), "{errs}");
    }

    #[test]
    fn prunes_unknown_and_nulls() {
        let mut v = spark_pi();
        v["spec"]["bogus"] = true.into();
        v["spec"]["mainClass"] = Value::Null;
        let (causes, unknown) = prune_and_validate(&mut v);
        assert!(causes.is_empty(), "{causes:?}");
        assert_eq!(unknown, vec!["spec.bogus".to_string()]);
        assert!(v["spec"].get("bogus").is_none());
        assert!(v["spec"].get("mainClass").is_none());
    }
}
