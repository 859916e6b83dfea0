//! Work on query texts: replace Grafana's variables and macros with concrete values (what
//! Grafana does before sending a query), list the metric names a PromQL expression uses, and
//! split an alert expression into its signal and threshold.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Error, Result};

/// Values for Grafana variables and macros, by name without the `$`: template variables
/// (`namespace`), built-ins (`__rate_interval`, `__interval`, `__range`) and, for SQL,
/// `__timeFrom`/`__timeTo` (SQL expressions) which also drive `$__timeFilter(column)`.
#[derive(Debug, Clone, Default)]
pub struct Vars(BTreeMap<String, String>);

impl Vars {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces one value.
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.0.insert(name.to_owned(), value.into());
        self
    }

    fn get(&self, name: &str, query: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Error::UnknownVariable {
                name: name.to_owned(),
                query: query.to_owned(),
            })
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces `$name`, `${name}`, `${name:format}` and `$__timeFilter(column)` in `query`; a
/// `$` followed by neither a name nor `{` stays as it is.
/// The format of `${name:format}` is ignored: the value given is used as is (tests give
/// "All" as `.*`, which is what a regex format yields for it too).
pub fn substitute(query: &str, vars: &Vars) -> Result<String> {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(inner) = after.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| Error::Malformed(query.to_owned()))?;
            let name = inner[..end].split(':').next().unwrap_or_default();
            if name.is_empty() || !name.chars().all(is_ident) {
                return Err(Error::Malformed(query.to_owned()));
            }
            out.push_str(vars.get(name, query)?);
            rest = &inner[end + 1..];
            continue;
        }
        let len = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
        if len == 0 {
            // A lone `$` (a regex anchor in SQL) is literal, as in Grafana.
            out.push('$');
            rest = after;
            continue;
        }
        let name = &after[..len];
        rest = &after[len..];
        if name == "__timeFilter" {
            let args = rest
                .strip_prefix('(')
                .ok_or_else(|| Error::Malformed(query.to_owned()))?;
            let end = args
                .find(')')
                .ok_or_else(|| Error::Malformed(query.to_owned()))?;
            let column = args[..end].trim();
            out.push_str(&format!(
                "{column} BETWEEN {} AND {}",
                vars.get("__timeFrom", query)?,
                vars.get("__timeTo", query)?
            ));
            rest = &args[end + 1..];
        } else {
            out.push_str(vars.get(name, query)?);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variable names a query refers to (`$name`, `${name…}`, `$__macro(…)`), without `$`.
pub fn variables(query: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = query;
    while let Some(pos) = rest.find('$') {
        let after = &rest[pos + 1..];
        let (name, next) = match after.strip_prefix('{') {
            Some(inner) => {
                let end = inner.find('}').unwrap_or(inner.len());
                let name = inner[..end].split(':').next().unwrap_or_default();
                (name, &inner[end.min(inner.len())..])
            }
            None => {
                let len = after.find(|c: char| !is_ident(c)).unwrap_or(after.len());
                (&after[..len], &after[len..])
            }
        };
        if !name.is_empty() {
            names.insert(name.to_owned());
        }
        rest = next;
    }
    names
}

/// Metric names a PromQL expression uses: identifiers starting with `orchestrator_`, plus
/// `up`, outside label matchers, strings and range brackets. (Every metric the orchestrator
/// exposes starts with `orchestrator_`; label names never do.)
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut depth_braces = 0u32;
    let mut quote: Option<char> = None;
    let mut ident = String::new();
    let flush = |ident: &mut String, names: &mut BTreeSet<String>| {
        if ident.starts_with("orchestrator_") || ident == "up" {
            names.insert(std::mem::take(ident));
        }
        ident.clear();
    };
    let mut prev = ' ';
    for c in expr.chars() {
        if let Some(q) = quote {
            if c == q && prev != '\\' {
                quote = None;
            }
            prev = c;
            continue;
        }
        let in_word = c.is_ascii_alphanumeric() || c == '_' || c == ':';
        if in_word && depth_braces == 0 && (!ident.is_empty() || !c.is_ascii_digit()) {
            ident.push(c);
        } else {
            flush(&mut ident, &mut names);
            match c {
                '"' | '\'' | '`' => quote = Some(c),
                '{' => depth_braces += 1,
                '}' => depth_braces = depth_braces.saturating_sub(1),
                _ => {}
            }
        }
        prev = c;
    }
    flush(&mut ident, &mut names);
    names
}

/// An alert expression split at its one top-level comparison: `signal op threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The expression compared (what a graph of the alert shows).
    pub signal: String,
    /// `>`, `<`, `>=`, `<=`, `==` or `!=`.
    pub op: String,
    /// The number it is compared with.
    pub threshold: f64,
}

/// Splits `expr` at its top-level comparison operators (outside parentheses, braces,
/// brackets and strings). `None` unless there is exactly one and its right side is a number.
pub fn split_comparison(expr: &str) -> Option<Comparison> {
    let bytes: Vec<char> = expr.chars().collect();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut found: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == q && (i == 0 || bytes[i - 1] != '\\') {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '{' | '[' => depth += 1,
            ')' | '}' | ']' => depth -= 1,
            '>' | '<' | '=' | '!' if depth == 0 => {
                let next = bytes.get(i + 1).copied();
                let len = match (c, next) {
                    ('>' | '<' | '=' | '!', Some('=')) => 2,
                    ('>' | '<', _) => 1,
                    _ => 0,
                };
                if len > 0 {
                    found.push((i, len));
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    let [(at, len)] = found.as_slice() else {
        return None;
    };
    let signal: String = bytes[..*at].iter().collect();
    let op: String = bytes[*at..at + len].iter().collect();
    let rest: String = bytes[at + len..].iter().collect();
    let threshold = rest.trim().parse().ok()?;
    Some(Comparison {
        signal: signal.trim().to_owned(),
        op,
        threshold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        Vars::new()
            .set("namespace", ".*")
            .set("__rate_interval", "1m")
            .set("__timeFrom", "'2026-01-01'")
            .set("__timeTo", "now()")
    }

    #[test]
    fn substitutes_every_variable_form() {
        let q = r#"rate(m{namespace=~"$namespace"}[$__rate_interval])"#;
        assert_eq!(
            substitute(q, &vars()).unwrap(),
            r#"rate(m{namespace=~".*"}[1m])"#
        );
        let sql = "SELECT 1 WHERE $__timeFilter(day) AND ns ~ '^(${namespace:regex})$'";
        assert_eq!(
            substitute(sql, &vars()).unwrap(),
            "SELECT 1 WHERE day BETWEEN '2026-01-01' AND now() AND ns ~ '^(.*)$'"
        );
    }

    #[test]
    fn unknown_and_broken_references_are_errors() {
        assert!(matches!(
            substitute("m{pool=~\"$pool\"}", &vars()),
            Err(Error::UnknownVariable { name, .. }) if name == "pool"
        ));
        assert!(matches!(
            substitute("m{a=\"${namespace\"}", &vars()),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            substitute("$__timeFilter(day", &vars()),
            Err(Error::Malformed(_))
        ));
        assert_eq!(substitute("a $ b$", &vars()).unwrap(), "a $ b$");
    }

    #[test]
    fn lists_variables() {
        let q = "x{a=~\"$namespace\", b=\"${pool:regex}\"}[$__rate_interval] $__timeFilter(d)";
        let got: Vec<_> = variables(q).into_iter().collect();
        assert_eq!(
            got,
            ["__rate_interval", "__timeFilter", "namespace", "pool"]
        );
    }

    #[test]
    fn finds_metric_names_outside_matchers_and_strings() {
        let e = r#"histogram_quantile(0.95, sum by (le) (rate(orchestrator_queue_wait_seconds_bucket{stage="orchestrator_fake"}[5m]))) / on(instance) orchestrator_leader > 0 or up{job="x"}"#;
        let got: Vec<_> = metric_names(e).into_iter().collect();
        assert_eq!(
            got,
            [
                "orchestrator_leader",
                "orchestrator_queue_wait_seconds_bucket",
                "up"
            ]
        );
    }

    #[test]
    fn splits_one_top_level_comparison() {
        let c = split_comparison(
            r#"histogram_quantile(0.95, sum by (le) (rate(x_bucket{a!="b", c=~"d>e"}[5m]))) > 600"#,
        )
        .unwrap();
        assert_eq!(
            c.signal,
            r#"histogram_quantile(0.95, sum by (le) (rate(x_bucket{a!="b", c=~"d>e"}[5m])))"#
        );
        assert_eq!((c.op.as_str(), c.threshold), (">", 600.0));
        let c = split_comparison("(sum(x) or vector(0)) < 1").unwrap();
        assert_eq!(
            (c.signal.as_str(), c.op.as_str()),
            ("(sum(x) or vector(0))", "<")
        );
        let c = split_comparison(r#"up{job="j"} == 0"#).unwrap();
        assert_eq!(c.op, "==");
        assert_eq!(split_comparison("a > 1 and b < 2"), None);
        assert_eq!(split_comparison("a > b"), None);
        assert_eq!(split_comparison("rate(a[5m])"), None);
    }
}
