//! What the parts' unit tests share: a catalog, a way to run one rule on a JSON object, and a
//! table runner that checks both the value a rule yields and the problems it reports.

use std::collections::BTreeMap;
use std::fmt::Debug;

use serde_json::Value;

use crate::catalog::{Catalog, CatalogConfig};
use crate::validate::reader::{Ctx, JsonPath, Obj};
use crate::validate::{MessageDefaults, ProblemCode as P};

/// Node types `small` (with a spot placement) and `large` (without), defaults for image,
/// Spark version, driver size and ttl; tight limits so bounds are easy to cross.
const CATALOG: &str = r#"
    [namespaces.team-a]
    [namespaces.team-b]
    [node_types.small]
    cpu = "1"
    memory = "4Gi"
    spot = { node_selector = { pool = "spot" } }
    [node_types.large]
    cpu = "4"
    memory = "28Gi"
    [defaults]
    image = "apache/spark:3.5.3"
    spark_version = "3.5.3"
    driver_node_type = "small"
    ttl = "1h"
    [limits]
    max_executors = 100
    max_attempts = 5
    max_ttl = "2d"
"#;

/// [`CATALOG`], checked.
pub(super) fn catalog() -> Catalog {
    from_toml(CATALOG)
}

/// One namespace, one node type, no defaults and no spot placement.
pub(super) fn bare_catalog() -> Catalog {
    from_toml("[namespaces.team-a]\n[node_types.small]\ncpu = \"1\"\nmemory = \"4Gi\"\n")
}

fn from_toml(text: &str) -> Catalog {
    let config: CatalogConfig = toml::from_str(text).unwrap();
    Catalog::new(config).unwrap()
}

/// Problems as (code, path), the way the tables write them.
pub(super) type Problems = Vec<(P, String)>;

/// Owned problems from a table's literal.
pub(super) fn problems_at(expected: &[(P, &str)]) -> Problems {
    expected
        .iter()
        .map(|(c, p)| (*c, (*p).to_owned()))
        .collect()
}

/// Runs `rule` on the object `value` (read at `$`) against [`catalog`].
pub(super) fn run<T>(
    value: &Value,
    rule: impl FnOnce(&mut Ctx<'_>, &Obj<'_>) -> T,
) -> (T, Problems) {
    run_in(&catalog(), MessageDefaults::default(), value, rule)
}

/// [`run`] against another catalog and transport defaults.
pub(super) fn run_in<T>(
    catalog: &Catalog,
    defaults: MessageDefaults,
    value: &Value,
    rule: impl FnOnce(&mut Ctx<'_>, &Obj<'_>) -> T,
) -> (T, Problems) {
    let mut ctx = Ctx::new(catalog, defaults);
    let keys: Vec<&str> = value
        .as_object()
        .expect("a test input is an object")
        .keys()
        .map(String::as_str)
        .collect();
    let obj = ctx
        .object(value, &JsonPath::root(), &keys, &[])
        .expect("an object reads as one");
    let out = rule(&mut ctx, &obj);
    let problems = ctx
        .into_problems()
        .into_iter()
        .map(|p| {
            assert!(!p.message.trim().is_empty(), "{} has no message", p.path);
            (p.code, p.path)
        })
        .collect();
    (out, problems)
}

/// A table row: the input object, what the rule must yield, the problems (code, path).
pub(super) type Case<'a, T> = (Value, T, &'a [(P, &'a str)]);

/// Each case: the input object, what the rule must yield, and exactly the problems (code, path)
/// it must report, in order.
pub(super) fn table<T: Debug + PartialEq>(
    cases: Vec<Case<'_, T>>,
    rule: impl Fn(&mut Ctx<'_>, &Obj<'_>) -> T,
) {
    let mut failures = Vec::new();
    for (input, want, want_problems) in cases {
        let (got, problems) = run(&input, &rule);
        let want_problems = problems_at(want_problems);
        if got != want || problems != want_problems {
            failures.push(format!(
                "{input}:\n  yielded  {got:?}\n  expected {want:?}\n  problems {problems:?}\n  expected {want_problems:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A string map from literal pairs.
pub(super) fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Owned strings from literals.
pub(super) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
