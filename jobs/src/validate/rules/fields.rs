//! Field readers shared by the parts: required, defaulted and enumerated strings, amounts with
//! units, and bounds. Each reports its problem at the field's path and returns `None` for it.

use serde_json::Value;

use crate::quantity::{MemoryBytes, QuantityError, parse_memory};
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, JsonPath, Obj, kind};

/// A string that must be present.
pub(super) fn required_str<'v>(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'v>,
    key: &str,
    max: usize,
) -> Option<(&'v str, JsonPath)> {
    match obj.get(key) {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path(key),
                format!("{key} is required"),
            );
            None
        }
        Some((v, at)) => ctx.string(v, &at, max, false).map(|s| (s, at)),
    }
}

/// A string that falls back to a catalog default and is checked either way.
pub(super) fn defaulted_str(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    key: &str,
    default: Option<&str>,
    hint: &str,
    check: fn(&str) -> Result<(), String>,
    code: P,
) -> Option<String> {
    match obj.get(key) {
        None => match default {
            Some(d) => Some(d.to_owned()),
            None => {
                ctx.push(
                    P::MissingField,
                    &obj.path(key),
                    format!("{key} is required here: {hint}"),
                );
                None
            }
        },
        Some((v, at)) => {
            let s = ctx.string(v, &at, 1024, false)?;
            match check(s) {
                Ok(()) => Some(s.to_owned()),
                Err(why) => {
                    ctx.push(code, &at, why);
                    None
                }
            }
        }
    }
}

/// One of a fixed set of names: `None` when absent; `Some(None)` when present but invalid.
pub(super) fn optional_enum<T: Copy>(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    key: &str,
    choices: &[(&str, T)],
) -> Option<Option<T>> {
    let (v, at) = obj.get(key)?;
    let s = ctx.string(v, &at, 64, false);
    Some(
        s.and_then(|s| match choices.iter().find(|(name, _)| *name == s) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
                ctx.push(
                    P::InvalidValue,
                    &at,
                    format!("{s:?} is not one of: {}", names.join(", ")),
                );
                None
            }
        }),
    )
}

/// An amount given as a number or a string, parsed by `parse`.
pub(super) fn quantity(
    ctx: &mut Ctx<'_>,
    value: &Value,
    path: &JsonPath,
    what: &str,
    parse: impl Fn(&str) -> Result<u64, QuantityError>,
) -> Option<u64> {
    let text = match value {
        Value::String(s) => ctx.string(value, path, 64, false).map(|_| s.clone())?,
        Value::Number(n) => n.to_string(),
        other => {
            ctx.push(
                P::WrongType,
                path,
                format!("{what} must be a number or a string, found {}", kind(other)),
            );
            return None;
        }
    };
    match parse(&text) {
        Ok(v) => Some(v),
        Err(e) => {
            ctx.push(P::InvalidQuantity, path, e.to_string());
            None
        }
    }
}

/// A memory amount: always a string with a unit, because a bare number is ambiguous (Spark
/// reads it as MiB, Kubernetes as bytes).
pub(super) fn memory_amount(
    ctx: &mut Ctx<'_>,
    value: &Value,
    path: &JsonPath,
) -> Option<MemoryBytes> {
    if !value.is_string() {
        ctx.push(
            P::WrongType,
            path,
            format!(
                "memory must be a string with a unit like \"2g\", found {}",
                kind(value)
            ),
        );
        return None;
    }
    quantity(ctx, value, path, "memory", |s| parse_memory(s).map(|m| m.0)).map(MemoryBytes)
}

/// `v` when it lies in `[min, max]`.
pub(super) fn in_bounds<T: PartialOrd + std::fmt::Display + Copy>(
    ctx: &mut Ctx<'_>,
    path: &JsonPath,
    v: T,
    min: T,
    max: T,
) -> Option<T> {
    if v < min || v > max {
        ctx.push(
            P::OutOfRange,
            path,
            format!("{v} is out of range: it must be between {min} and {max}"),
        );
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{bare_catalog, problems_at, run, run_in, table};
    use super::*;
    use crate::quantity::parse_cpu;
    use crate::validate::MessageDefaults;

    #[test]
    fn required_str_reports_absence_type_and_length() {
        table(
            vec![
                (json!({"k": "abc"}), Some("abc".to_owned()), &[]),
                (json!({}), None, &[(P::MissingField, "$.k")]),
                (json!({"k": null}), None, &[(P::MissingField, "$.k")]),
                (json!({"k": 3}), None, &[(P::WrongType, "$.k")]),
                (json!({"k": "abcdef"}), None, &[(P::ValueTooLong, "$.k")]),
                (
                    json!({"k": "a\u{0}b"}),
                    None,
                    &[(P::InvalidCharacter, "$.k")],
                ),
            ],
            |ctx, obj| required_str(ctx, obj, "k", 5).map(|(s, _)| s.to_owned()),
        );
    }

    #[test]
    fn required_str_returns_the_field_path() {
        let ((_, at), problems) = run(&json!({"sparkConf": "x"}), |ctx, obj| {
            required_str(ctx, obj, "sparkConf", 10)
                .map(|(s, at)| (s.to_owned(), at))
                .unwrap()
        });
        assert!(problems.is_empty());
        assert_eq!(at.to_string(), "$.sparkConf");
    }

    #[test]
    fn defaulted_str_falls_back_and_checks_what_is_given() {
        let check = |s: &str| {
            if s.starts_with('v') {
                Ok(())
            } else {
                Err(format!("{s:?} does not start with v"))
            }
        };
        let read = |default: Option<&'static str>| {
            move |ctx: &mut Ctx<'_>, obj: &Obj<'_>| {
                defaulted_str(ctx, obj, "k", default, "set k", check, P::InvalidImage)
            }
        };
        table(
            vec![
                (json!({}), Some("vdef".to_owned()), &[]),
                (json!({"k": "v2"}), Some("v2".to_owned()), &[]),
                (json!({"k": "x"}), None, &[(P::InvalidImage, "$.k")]),
                (json!({"k": false}), None, &[(P::WrongType, "$.k")]),
            ],
            read(Some("vdef")),
        );
        // A default is not checked here: the catalog checked it when it was loaded.
        table(
            vec![
                (json!({}), None, &[(P::MissingField, "$.k")]),
                (json!({"k": "v1"}), Some("v1".to_owned()), &[]),
            ],
            read(None),
        );
        let (_, problems) = run_in(
            &bare_catalog(),
            MessageDefaults::default(),
            &json!({}),
            |ctx, obj| defaulted_str(ctx, obj, "image", None, "set image", check, P::InvalidImage),
        );
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn optional_enum_tells_absent_from_invalid() {
        let choices = [("a", 1), ("b", 2)];
        table(
            vec![
                (json!({}), None, &[]),
                (json!({"k": "b"}), Some(Some(2)), &[]),
                (json!({"k": "c"}), Some(None), &[(P::InvalidValue, "$.k")]),
                (json!({"k": "A"}), Some(None), &[(P::InvalidValue, "$.k")]),
                (json!({"k": ["a"]}), Some(None), &[(P::WrongType, "$.k")]),
            ],
            |ctx, obj| optional_enum(ctx, obj, "k", &choices),
        );
    }

    #[test]
    fn quantities_take_numbers_or_strings_and_memory_needs_a_unit() {
        table(
            vec![
                (json!({"k": 2}), Some(2000), &[]),
                (json!({"k": "500m"}), Some(500), &[]),
                (json!({"k": 0.5}), Some(500), &[]),
                (json!({"k": "lots"}), None, &[(P::InvalidQuantity, "$.k")]),
                (json!({"k": true}), None, &[(P::WrongType, "$.k")]),
                (
                    json!({"k": "x".repeat(65)}),
                    None,
                    &[(P::ValueTooLong, "$.k")],
                ),
            ],
            |ctx, obj| {
                let (v, at) = obj.get("k")?;
                quantity(ctx, v, &at, "cores", |s| parse_cpu(s).map(|c| c.0))
            },
        );
        table(
            vec![
                (json!({"k": "1g"}), Some(MemoryBytes::from_mib(1024)), &[]),
                (json!({"k": 1024}), None, &[(P::WrongType, "$.k")]),
                (
                    json!({"k": "1 potato"}),
                    None,
                    &[(P::InvalidQuantity, "$.k")],
                ),
            ],
            |ctx, obj| {
                let (v, at) = obj.get("k")?;
                memory_amount(ctx, v, &at)
            },
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        for (v, ok) in [(0, false), (1, true), (5, true), (10, true), (11, false)] {
            let (out, problems) = run(&json!({}), |ctx, _| {
                in_bounds(ctx, &JsonPath::root().key("n"), v, 1, 10)
            });
            assert_eq!(out, ok.then_some(v), "{v}");
            let want = if ok {
                vec![]
            } else {
                problems_at(&[(P::OutOfRange, "$.n")])
            };
            assert_eq!(problems, want, "{v}");
        }
    }
}
