//! Reads a Prometheus/OpenMetrics text exposition (`GET /metrics`) into the sample names a
//! query can use. Families are declared by `# TYPE` lines even before they have a series,
//! so a metric that has not happened yet still counts as exposed.

use std::collections::{BTreeMap, BTreeSet};

/// Family name → type (`counter`, `gauge`, `histogram`, …), from the `# TYPE` lines.
pub fn families(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// The sample names a family of `kind` produces: a counter `c` gives `c_total`, a histogram
/// `h` gives `h_bucket`, `h_sum` and `h_count`, and so on.
pub fn sample_names_of(family: &str, kind: &str) -> Vec<String> {
    let with = |suffixes: &[&str]| {
        suffixes
            .iter()
            .map(|s| format!("{family}{s}"))
            .collect::<Vec<_>>()
    };
    match kind {
        "counter" if family.ends_with("_total") => vec![family.to_owned()],
        "counter" => with(&["_total"]),
        "histogram" | "gaugehistogram" => with(&["_bucket", "_sum", "_count"]),
        "summary" => with(&["", "_sum", "_count"]),
        "info" => with(&["_info"]),
        _ => vec![family.to_owned()],
    }
}

/// Every sample name the exposition declares or carries.
pub fn sample_names(text: &str) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = families(text)
        .iter()
        .flat_map(|(f, k)| sample_names_of(f, k))
        .collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        if end > 0 {
            names.insert(line[..end].to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_families_give_their_sample_names() {
        let text = "# HELP a_total x\n# TYPE a counter\n# TYPE h histogram\n# TYPE g gauge\ng{x=\"1\"} 2\nother 1\n# EOF\n";
        let names: Vec<_> = sample_names(text).into_iter().collect();
        assert_eq!(
            names,
            ["a_total", "g", "h_bucket", "h_count", "h_sum", "other"]
        );
        assert_eq!(
            families(text).get("h").map(String::as_str),
            Some("histogram")
        );
    }
}
