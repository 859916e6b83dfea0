//! Reading a JSON value field by field while collecting problems instead of stopping at the
//! first: typed getters that report wrong types, over-long strings, NUL characters and
//! unknown keys, each at its JSON path.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{MessageDefaults, Problem, ProblemCode};
use crate::catalog::Catalog;

/// Longest string value accepted anywhere unless a field says otherwise.
pub(crate) const MAX_STRING: usize = 64 * 1024;

/// A JSON path like `$.sparkConf["spark.app.name"]` or `$.arguments[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonPath(String);

impl JsonPath {
    pub(crate) fn root() -> Self {
        Self("$".into())
    }

    /// A child field; names that are not identifiers are quoted.
    pub(crate) fn key(&self, key: &str) -> Self {
        let plain = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if plain {
            Self(format!("{}.{key}", self.0))
        } else {
            let quoted = serde_json::to_string(key).unwrap_or_else(|_| "\"?\"".into());
            Self(format!("{}[{quoted}]", self.0))
        }
    }

    /// A list element.
    pub(crate) fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Validation state: the catalog to check against and the problems found so far.
pub(crate) struct Ctx<'c> {
    pub(crate) catalog: &'c Catalog,
    pub(crate) defaults: MessageDefaults,
    problems: Vec<Problem>,
}

impl<'c> Ctx<'c> {
    pub(crate) fn new(catalog: &'c Catalog, defaults: MessageDefaults) -> Self {
        Self {
            catalog,
            defaults,
            problems: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, code: ProblemCode, path: &JsonPath, message: impl Into<String>) {
        self.problems.push(Problem {
            code,
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(crate) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    pub(crate) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// The value as an object whose keys are all in `allowed`; unknown keys are reported (or,
    /// when listed in `forbidden`, reported as forbidden with the given reason).
    pub(crate) fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &JsonPath,
        allowed: &[&str],
        forbidden: &[(&str, &str)],
    ) -> Option<Obj<'v>> {
        let Some(map) = value.as_object() else {
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected an object, found {}", kind(value)),
            );
            return None;
        };
        for key in map.keys() {
            if allowed.contains(&key.as_str()) {
                continue;
            }
            let at = path.key(key);
            match forbidden.iter().find(|(k, _)| k == key) {
                Some((_, why)) => self.push(ProblemCode::Forbidden, &at, *why),
                None => self.push(
                    ProblemCode::UnknownField,
                    &at,
                    format!(
                        "unknown field {key:?}; the fields here are: {}",
                        allowed.join(", ")
                    ),
                ),
            }
        }
        Some(Obj {
            map,
            path: path.clone(),
        })
    }

    /// A string of at most `max` bytes without control characters (tabs and newlines allowed
    /// only when `multiline`).
    pub(crate) fn string<'v>(
        &mut self,
        value: &'v Value,
        path: &JsonPath,
        max: usize,
        multiline: bool,
    ) -> Option<&'v str> {
        let Some(s) = value.as_str() else {
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected a string, found {}", kind(value)),
            );
            return None;
        };
        if s.len() > max {
            self.push(
                ProblemCode::ValueTooLong,
                path,
                format!("the value has {} bytes; at most {max} are allowed", s.len()),
            );
            return None;
        }
        if let Some(c) = s
            .chars()
            .find(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')))
        {
            self.push(
                ProblemCode::InvalidCharacter,
                path,
                format!("the value contains the control character {c:?}"),
            );
            return None;
        }
        Some(s)
    }

    pub(crate) fn boolean(&mut self, value: &Value, path: &JsonPath) -> Option<bool> {
        let b = value.as_bool();
        if b.is_none() {
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected true or false, found {}", kind(value)),
            );
        }
        b
    }

    /// A whole number in `[min, max]`.
    pub(crate) fn integer(
        &mut self,
        value: &Value,
        path: &JsonPath,
        min: u32,
        max: u32,
    ) -> Option<u32> {
        let n: Option<i128> = match value {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e30)
                        .map(|f| f as i128)
                }),
            _ => None,
        };
        let Some(n) = n else {
            let found = if value.is_number() {
                format!("{value}")
            } else {
                kind(value).to_string()
            };
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected a whole number, found {found}"),
            );
            return None;
        };
        if n < i128::from(min) || n > i128::from(max) {
            self.push(
                ProblemCode::OutOfRange,
                path,
                format!("{n} is out of range: it must be between {min} and {max}"),
            );
            return None;
        }
        Some(n as u32)
    }

    /// A list of at most `max_items` strings, each checked by `check`.
    pub(crate) fn string_list(
        &mut self,
        value: &Value,
        path: &JsonPath,
        max_items: usize,
        max_len: usize,
        mut check: impl FnMut(&str) -> Result<(), (ProblemCode, String)>,
    ) -> Vec<String> {
        let Some(items) = value.as_array() else {
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected a list of strings, found {}", kind(value)),
            );
            return Vec::new();
        };
        if items.len() > max_items {
            self.push(
                ProblemCode::TooManyItems,
                path,
                format!("{} items; at most {max_items} are allowed", items.len()),
            );
            return Vec::new();
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = path.index(i);
            if let Some(s) = self.string(item, &at, max_len, false) {
                match check(s) {
                    Ok(()) => out.push(s.to_owned()),
                    Err((code, why)) => self.push(code, &at, why),
                }
            }
        }
        out
    }

    /// A map of at most `max_entries` string values; keys are checked by `check_key`.
    pub(crate) fn string_map(
        &mut self,
        value: &Value,
        path: &JsonPath,
        max_entries: usize,
        max_value_len: usize,
        mut check_key: impl FnMut(&str) -> Result<(), (ProblemCode, String)>,
    ) -> BTreeMap<String, String> {
        let Some(map) = value.as_object() else {
            self.push(
                ProblemCode::WrongType,
                path,
                format!("expected an object of strings, found {}", kind(value)),
            );
            return BTreeMap::new();
        };
        if map.len() > max_entries {
            self.push(
                ProblemCode::TooManyItems,
                path,
                format!("{} entries; at most {max_entries} are allowed", map.len()),
            );
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (k, v) in map {
            let at = path.key(k);
            let key_ok = match check_key(k) {
                Ok(()) => true,
                Err((code, why)) => {
                    self.push(code, &at, why);
                    false
                }
            };
            if !v.is_string() {
                let hint = if v.is_number() || v.is_boolean() {
                    format!(" (quote it: \"{v}\")")
                } else {
                    String::new()
                };
                self.push(
                    ProblemCode::WrongType,
                    &at,
                    format!("expected a string value, found {}{hint}", kind(v)),
                );
                continue;
            }
            if let Some(s) = self.string(v, &at, max_value_len, true)
                && key_ok
            {
                out.insert(k.clone(), s.to_owned());
            }
        }
        out
    }
}

/// An object being read: fields by name, null treated as absent.
pub(crate) struct Obj<'v> {
    map: &'v Map<String, Value>,
    path: JsonPath,
}

impl<'v> Obj<'v> {
    /// The field and its path, if present and not null.
    pub(crate) fn get(&self, key: &str) -> Option<(&'v Value, JsonPath)> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (v, self.path.key(key)))
    }

    /// Whether the field is present and not null.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| !v.is_null())
    }

    /// The path of a field (present or not), for "missing" problems.
    pub(crate) fn path(&self, key: &str) -> JsonPath {
        self.path.key(key)
    }
}

/// The JSON type name, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Refuses JSON whose objects repeat a key: `serde_json` keeps the last one silently, other
/// parsers keep the first, and a publisher's intent is then ambiguous.
pub(crate) fn check_no_duplicate_keys(text: &str) -> Result<(), String> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(DuplicateKeyCheck)
        .map_err(|e| format!("the message repeats a key: {e}"))
}

struct DuplicateKeyCheck;

impl<'de> Visitor<'de> for DuplicateKeyCheck {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<Checked>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<Checked>()?;
        }
        Ok(())
    }
}

/// A value walked only to check it.
struct Checked;

impl<'de> serde::Deserialize<'de> for Checked {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DuplicateKeyCheck).map(|()| Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_quote_what_is_not_an_identifier() {
        let root = JsonPath::root();
        assert_eq!(
            root.key("executor").key("instances").to_string(),
            "$.executor.instances"
        );
        assert_eq!(
            root.key("sparkConf").key("spark.app.name").to_string(),
            "$.sparkConf[\"spark.app.name\"]"
        );
        assert_eq!(root.key("arguments").index(3).to_string(), "$.arguments[3]");
    }

    #[test]
    fn duplicate_keys_are_found_at_any_depth() {
        assert!(check_no_duplicate_keys(r#"{"a":1,"b":{"c":[{"d":1}]}}"#).is_ok());
        let err = check_no_duplicate_keys(r#"{"a":1,"a":2}"#).unwrap_err();
        assert!(err.contains("\"a\""), "{err}");
        let err = check_no_duplicate_keys(r#"{"x":[{"k":1,"k":1}]}"#).unwrap_err();
        assert!(err.contains("\"k\""), "{err}");
    }
}
