//! What is written on the job's objects: `tags` (labels) and `annotations`, whose keys must be
//! Kubernetes label keys outside the prefixes Kubernetes, Spark and the orchestrator own.

use std::collections::BTreeMap;

use crate::names;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, MAX_STRING, Obj};

/// Label/annotation key prefixes that belong to Kubernetes, the Spark Operator or us.
const RESERVED_PREFIXES: &[&str] = &[
    "kubernetes.io",
    "k8s.io",
    "sparkoperator.k8s.io",
    crate::LABEL_DOMAIN,
];
/// Labels Spark itself puts on driver and executor pods.
const SPARK_LABELS: &[&str] = &[
    "spark-role",
    "spark-app-selector",
    "spark-app-name",
    "spark-version",
    "spark-exec-id",
    "spark-exec-resourceprofile-id",
];

/// The metadata part of a job.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Meta {
    pub(super) tags: BTreeMap<String, String>,
    pub(super) annotations: BTreeMap<String, String>,
}

/// Tags and annotations; what is wrong is reported (a tag with a bad value is reported but kept:
/// the job is refused anyway).
pub(super) fn meta(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Meta {
    let tags = obj
        .get("tags")
        .map(|(v, at)| {
            let tags = ctx.string_map(v, &at, 64, 63, |k| check_meta_key(k, true));
            for (k, v) in &tags {
                if let Err(why) = names::check_label_value(v) {
                    ctx.push(
                        P::InvalidLabelValue,
                        &at.key(k),
                        format!("{v:?} is not a label value: {why}"),
                    );
                }
            }
            tags
        })
        .unwrap_or_default();
    let annotations = obj
        .get("annotations")
        .map(|(v, at)| ctx.string_map(v, &at, 64, MAX_STRING, |k| check_meta_key(k, false)))
        .unwrap_or_default();
    Meta { tags, annotations }
}

/// A tag (`label`) or annotation key.
fn check_meta_key(k: &str, label: bool) -> Result<(), (P, String)> {
    names::check_label_key(k).map_err(|why| {
        (
            P::InvalidLabelKey,
            format!("{k:?} is not a valid key: {why}"),
        )
    })?;
    let prefix = k.split_once('/').map(|(p, _)| p);
    let reserved = prefix.is_some_and(|p| {
        RESERVED_PREFIXES
            .iter()
            .any(|r| p == *r || p.ends_with(&format!(".{r}")))
    });
    if reserved || (label && SPARK_LABELS.contains(&k)) {
        return Err((
            P::ReservedKey,
            format!(
                "{k:?} is reserved for Kubernetes, Spark, the Spark Operator or the orchestrator"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{map, table};
    use super::*;

    #[test]
    fn keys_are_label_keys_outside_reserved_prefixes() {
        for (k, label, want) in [
            ("team", true, None),
            ("example.com/owner", true, None),
            ("app.kubernetes.io/name", true, Some(P::ReservedKey)),
            ("kubernetes.io/arch", false, Some(P::ReservedKey)),
            ("node.k8s.io/x", false, Some(P::ReservedKey)),
            ("sparkoperator.k8s.io/app-name", false, Some(P::ReservedKey)),
            ("spark-orchestrator.dev/job-id", false, Some(P::ReservedKey)),
            ("notkubernetes.io/x", true, None),
            ("spark-role", true, Some(P::ReservedKey)),
            ("spark-role", false, None),
            ("", true, Some(P::InvalidLabelKey)),
            ("bad key", false, Some(P::InvalidLabelKey)),
            ("a/b/c", true, Some(P::InvalidLabelKey)),
        ] {
            assert_eq!(
                check_meta_key(k, label).err().map(|(c, _)| c),
                want,
                "{k:?} label={label}"
            );
        }
    }

    #[test]
    fn tag_values_are_label_values() {
        table(
            vec![
                (json!({}), map(&[]), &[]),
                (
                    json!({"tags": {"team": "data"}}),
                    map(&[("team", "data")]),
                    &[],
                ),
                (
                    json!({"tags": {"team": "data eng"}}),
                    map(&[("team", "data eng")]),
                    &[(P::InvalidLabelValue, "$.tags.team")],
                ),
                (
                    json!({"tags": {"team": "x".repeat(64)}}),
                    map(&[]),
                    &[(P::ValueTooLong, "$.tags.team")],
                ),
                (
                    json!({"tags": {"spark-role": "driver"}}),
                    map(&[]),
                    &[(P::ReservedKey, "$.tags[\"spark-role\"]")],
                ),
                (
                    json!({"tags": ["team"]}),
                    map(&[]),
                    &[(P::WrongType, "$.tags")],
                ),
            ],
            |ctx, obj| meta(ctx, obj).tags,
        );
    }

    #[test]
    fn annotations_allow_free_text_values() {
        let long = "free text, with spaces\nand lines ".repeat(100);
        table(
            vec![
                (
                    json!({"annotations": {"example.com/note": long}}),
                    map(&[("example.com/note", &long)]),
                    &[],
                ),
                (
                    json!({"annotations": {"spark-role": "x"}}),
                    map(&[("spark-role", "x")]),
                    &[],
                ),
                (
                    json!({"annotations": {"k8s.io/x": "y"}}),
                    map(&[]),
                    &[(P::ReservedKey, "$.annotations[\"k8s.io/x\"]")],
                ),
                (
                    json!({"annotations": (0..65).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
                    map(&[]),
                    &[(P::TooManyItems, "$.annotations")],
                ),
            ],
            |ctx, obj| meta(ctx, obj).annotations,
        );
    }
}
