//! GitHub's heading anchors, so `runbook_url`s in the alert rules can be checked against the
//! headings of `docs/operations.md`.

use std::collections::{BTreeMap, BTreeSet};

/// The anchor GitHub gives a heading's text: lower-cased, spaces to `-`, everything but
/// letters, digits, `-` and `_` removed (as github-slugger does; repeated `-` stay).
pub fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Every anchor of a Markdown document's ATX headings (`#` … `######`), outside fenced code
/// blocks; a repeated heading gets `-1`, `-2`, … as on GitHub.
pub fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        for marker in ["```", "~~~"] {
            if trimmed.starts_with(marker) {
                fence = match fence {
                    Some(open) if open == marker => None,
                    None => Some(marker),
                    other => other,
                };
            }
        }
        if fence.is_some() || trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            continue;
        }
        let hashes = line.bytes().take_while(|b| *b == b'#').count();
        if !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = &line[hashes..];
        if !(rest.is_empty() || rest.starts_with(' ')) {
            continue;
        }
        let text = rest.trim().trim_end_matches('#').trim();
        let base = slug(text);
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_match_github() {
        for (heading, anchor) in [
            ("OrchestratorDown", "orchestratordown"),
            ("Upgrade: migrations first", "upgrade-migrations-first"),
            ("PostgreSQL backup / restore", "postgresql-backup--restore"),
            ("`kubectl apply -k`", "kubectl-apply--k"),
            ("Changing the AMQP prefix", "changing-the-amqp-prefix"),
            ("snake_case and Ünïcode", "snake_case-and-ünïcode"),
            ("  padded  ", "padded"),
            ("Q&A (v2.5+)!", "qa-v25"),
        ] {
            assert_eq!(slug(heading), anchor, "{heading}");
        }
    }

    #[test]
    fn anchors_skip_code_and_number_duplicates() {
        let doc = "# Title\n\n## Runbooks\n### A\ntext\n### A\n```sh\n# not a heading\n```\n####### seven\n#nospace\n## Closed ##\n";
        let got: Vec<_> = anchors(doc).into_iter().collect();
        assert_eq!(got, ["a", "a-1", "closed", "runbooks", "title"]);
        assert!(anchors("").is_empty());
        assert!(anchors("```\n# open fence never closed\n").is_empty());
    }
}
