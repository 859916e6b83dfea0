//! How Spark and the JVM are configured: `sparkConf`, `hadoopConf`, `env` and `javaOptions`.
//! Keys the orchestrator derives from structured fields are refused, and the values the
//! capacity check reads must parse.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::names;
use crate::quantity::parse_memory;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, JsonPath, MAX_STRING, Obj};

/// The configuration part of a job.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Conf {
    pub(super) spark_conf: BTreeMap<String, String>,
    pub(super) hadoop_conf: BTreeMap<String, String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) java_options: Option<String>,
}

/// Every configuration field; what is wrong is reported and left out.
pub(super) fn conf(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Conf {
    let spark_conf = obj
        .get("sparkConf")
        .map(|(v, at)| spark_conf(ctx, v, &at))
        .unwrap_or_default();
    let hadoop_conf = obj
        .get("hadoopConf")
        .map(|(v, at)| ctx.string_map(v, &at, 500, MAX_STRING, |k| check_conf_key(k, "")))
        .unwrap_or_default();
    let env = obj
        .get("env")
        .map(|(v, at)| {
            ctx.string_map(v, &at, 200, MAX_STRING, |k| {
                names::check_env_name(k).map_err(|w| {
                    (
                        P::InvalidEnvName,
                        format!("{k:?} is not an environment variable name: {w}"),
                    )
                })
            })
        })
        .unwrap_or_default();
    let java_options = java_options(ctx, obj);
    Conf {
        spark_conf,
        hadoop_conf,
        env,
        java_options,
    }
}

/// `sparkConf` keys that the orchestrator derives from structured fields (the hint names the
/// field to use), so the capacity check and what Spark creates can never disagree.
const RESERVED_CONF: &[(&str, &str)] = &[
    ("spark.driver.memory", "driver.memory or driver.nodeType"),
    (
        "spark.executor.memory",
        "executor.memory or executor.nodeType",
    ),
    ("spark.driver.cores", "driver.cores or driver.nodeType"),
    (
        "spark.executor.cores",
        "executor.cores or executor.nodeType",
    ),
    ("spark.executor.instances", "executor.instances"),
    ("spark.kubernetes.driver.request.cores", "driver.cores"),
    ("spark.kubernetes.executor.request.cores", "executor.cores"),
    ("spark.kubernetes.container.image", "image"),
    ("spark.kubernetes.driver.container.image", "image"),
    ("spark.kubernetes.executor.container.image", "image"),
    (
        "spark.kubernetes.container.image.pullPolicy",
        "imagePullPolicy",
    ),
    (
        "spark.kubernetes.container.image.pullSecrets",
        "imagePullSecrets",
    ),
    ("spark.kubernetes.namespace", "namespace"),
    (
        "spark.master",
        "nothing: the orchestrator submits to its cluster",
    ),
    (
        "spark.kubernetes.driver.master",
        "nothing: the orchestrator submits to its cluster",
    ),
    (
        "spark.submit.deployMode",
        "nothing: jobs run in cluster mode",
    ),
    (
        "spark.kubernetes.driver.pod.name",
        "nothing: pod names derive from the job",
    ),
    (
        "spark.kubernetes.executor.podNamePrefix",
        "nothing: pod names derive from the job",
    ),
    (
        "spark.kubernetes.driver.podTemplateFile",
        "driver/executor fields",
    ),
    (
        "spark.kubernetes.executor.podTemplateFile",
        "driver/executor fields",
    ),
    (
        "spark.kubernetes.scheduler.name",
        "nothing: the default scheduler places pods",
    ),
    ("spark.driver.extraJavaOptions", "javaOptions"),
    ("spark.executor.extraJavaOptions", "javaOptions"),
];
const RESERVED_CONF_PREFIXES: &[(&str, &str)] = &[
    ("spark.dynamicAllocation.", "executor.dynamicAllocation"),
    (
        "spark.kubernetes.authenticate.",
        "nothing: credentials come from the orchestrator's config",
    ),
    (
        "spark.kubernetes.node.selector.",
        "driver/executor nodeType",
    ),
    ("spark.kubernetes.driver.node.selector.", "driver.nodeType"),
    (
        "spark.kubernetes.executor.node.selector.",
        "executor.nodeType",
    ),
    ("spark.kubernetes.driver.label.", "tags"),
    ("spark.kubernetes.executor.label.", "tags"),
    ("spark.kubernetes.driver.volumes.", "volumes"),
    ("spark.kubernetes.executor.volumes.", "volumes"),
];
/// `sparkConf` keys that change the pod footprint: allowed, but their values must parse,
/// because the capacity check reads them.
const MEMORY_CONF: &[&str] = &[
    "spark.executor.pyspark.memory",
    "spark.memory.offHeap.size",
    "spark.driver.minMemoryOverhead",
    "spark.executor.minMemoryOverhead",
];
const FACTOR_CONF: &[&str] = &[
    "spark.kubernetes.memoryOverheadFactor",
    "spark.driver.memoryOverheadFactor",
    "spark.executor.memoryOverheadFactor",
];

fn check_conf_key(k: &str, required_prefix: &str) -> Result<(), (P, String)> {
    if k.is_empty()
        || k.len() > 256
        || k.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '=')
    {
        return Err((
            P::InvalidValue,
            format!(
                "{k:?} is not a configuration key (no spaces, '=' or control characters, at most 256)"
            ),
        ));
    }
    if !k.starts_with(required_prefix) {
        return Err((
            P::InvalidValue,
            format!("{k:?} is not a Spark setting: keys start with {required_prefix:?}"),
        ));
    }
    Ok(())
}

/// A `sparkConf` key a job may set: well formed, `spark.`, and not derived by the orchestrator.
fn check_spark_conf_key(k: &str) -> Result<(), (P, String)> {
    check_conf_key(k, "spark.")?;
    let exact = RESERVED_CONF.iter().find(|(key, _)| *key == k);
    let prefixed = RESERVED_CONF_PREFIXES
        .iter()
        .find(|(prefix, _)| k.starts_with(prefix));
    match exact.or(prefixed) {
        Some((_, instead)) => Err((
            P::ReservedKey,
            format!("{k:?} is set by the orchestrator; use {instead}"),
        )),
        None => Ok(()),
    }
}

fn spark_conf(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> BTreeMap<String, String> {
    let conf = ctx.string_map(value, path, 500, MAX_STRING, check_spark_conf_key);
    for (k, v) in &conf {
        let at = path.key(k);
        if MEMORY_CONF.contains(&k.as_str())
            && let Err(e) = parse_memory(v)
        {
            ctx.push(P::InvalidQuantity, &at, e.to_string());
        }
        if FACTOR_CONF.contains(&k.as_str())
            && !v.trim().parse::<f64>().is_ok_and(|f| f > 0.0 && f <= 10.0)
        {
            ctx.push(
                P::InvalidValue,
                &at,
                format!("{v:?} is not an overhead factor (a number above 0, e.g. 0.1)"),
            );
        }
        if k == "spark.memory.offHeap.enabled" && !matches!(v.as_str(), "true" | "false") {
            ctx.push(P::InvalidValue, &at, format!("{v:?} is not true or false"));
        }
    }
    conf
}

fn java_options(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<String> {
    let (v, at) = obj.get("javaOptions")?;
    let s = ctx.string(v, &at, 8 * 1024, false)?;
    if s.split_whitespace()
        .any(|o| o.starts_with("-Xmx") || o.starts_with("-Xms"))
    {
        ctx.push(
            P::Forbidden,
            &at,
            "heap size cannot be set through javaOptions (-Xmx/-Xms); Spark refuses it: set driver/executor memory or nodeType",
        );
        return None;
    }
    Some(s.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{map, problems_at, run, table};
    use super::*;

    #[test]
    fn conf_keys_are_well_formed() {
        for (k, prefix, ok) in [
            ("spark.sql.shuffle.partitions", "spark.", true),
            ("fs.s3a.endpoint", "", true),
            ("fs.s3a.endpoint", "spark.", false),
            ("", "", false),
            ("a b", "", false),
            ("a=b", "", false),
            ("a\u{7}", "", false),
            (&"k".repeat(257), "", false),
        ] {
            assert_eq!(check_conf_key(k, prefix).is_ok(), ok, "{k:?} {prefix:?}");
        }
    }

    #[test]
    fn every_reserved_key_and_prefix_is_refused_with_a_hint() {
        for (key, instead) in RESERVED_CONF {
            let (code, why) = check_spark_conf_key(key).unwrap_err();
            assert_eq!(code, P::ReservedKey, "{key}");
            assert!(why.contains(instead), "{key}: {why}");
        }
        for (prefix, _) in RESERVED_CONF_PREFIXES {
            let key = format!("{prefix}anything");
            assert_eq!(
                check_spark_conf_key(&key).unwrap_err().0,
                P::ReservedKey,
                "{key}"
            );
        }
        assert!(check_spark_conf_key("spark.sql.adaptive.enabled").is_ok());
        assert!(check_spark_conf_key("spark.executor.memoryOverheadFactor").is_ok());
        assert_eq!(
            check_spark_conf_key("sql.x").unwrap_err().0,
            P::InvalidValue
        );
    }

    #[test]
    fn footprint_settings_must_parse() {
        table(
            vec![
                (
                    json!({"sparkConf": {"spark.memory.offHeap.size": "1g", "spark.executor.memoryOverheadFactor": "0.2"}}),
                    map(&[
                        ("spark.executor.memoryOverheadFactor", "0.2"),
                        ("spark.memory.offHeap.size", "1g"),
                    ]),
                    &[],
                ),
                (
                    json!({"sparkConf": {"spark.memory.offHeap.size": "lots"}}),
                    map(&[("spark.memory.offHeap.size", "lots")]),
                    &[(
                        P::InvalidQuantity,
                        "$.sparkConf[\"spark.memory.offHeap.size\"]",
                    )],
                ),
                (
                    json!({"sparkConf": {"spark.kubernetes.memoryOverheadFactor": "0"}}),
                    map(&[("spark.kubernetes.memoryOverheadFactor", "0")]),
                    &[(
                        P::InvalidValue,
                        "$.sparkConf[\"spark.kubernetes.memoryOverheadFactor\"]",
                    )],
                ),
                (
                    json!({"sparkConf": {"spark.driver.memoryOverheadFactor": "11"}}),
                    map(&[("spark.driver.memoryOverheadFactor", "11")]),
                    &[(
                        P::InvalidValue,
                        "$.sparkConf[\"spark.driver.memoryOverheadFactor\"]",
                    )],
                ),
                (
                    json!({"sparkConf": {"spark.memory.offHeap.enabled": "yes"}}),
                    map(&[("spark.memory.offHeap.enabled", "yes")]),
                    &[(
                        P::InvalidValue,
                        "$.sparkConf[\"spark.memory.offHeap.enabled\"]",
                    )],
                ),
                (
                    json!({"sparkConf": {"spark.executor.memory": "4g"}}),
                    map(&[]),
                    &[(P::ReservedKey, "$.sparkConf[\"spark.executor.memory\"]")],
                ),
                (
                    json!({"sparkConf": {"spark.sql.shuffle.partitions": 200}}),
                    map(&[]),
                    &[(
                        P::WrongType,
                        "$.sparkConf[\"spark.sql.shuffle.partitions\"]",
                    )],
                ),
            ],
            |ctx, obj| conf(ctx, obj).spark_conf,
        );
    }

    #[test]
    fn hadoop_conf_and_env_check_their_keys() {
        table(
            vec![
                (
                    json!({"hadoopConf": {"fs.s3a.endpoint": "http://minio:9000"}}),
                    map(&[("fs.s3a.endpoint", "http://minio:9000")]),
                    &[],
                ),
                (
                    json!({"hadoopConf": {"bad key": "x"}}),
                    map(&[]),
                    &[(P::InvalidValue, "$.hadoopConf[\"bad key\"]")],
                ),
            ],
            |ctx, obj| conf(ctx, obj).hadoop_conf,
        );
        table(
            vec![
                (json!({"env": {"TZ": "UTC"}}), map(&[("TZ", "UTC")]), &[]),
                (
                    json!({"env": {"1TZ": "UTC", "OK": "1"}}),
                    map(&[("OK", "1")]),
                    &[(P::InvalidEnvName, "$.env[\"1TZ\"]")],
                ),
                (
                    json!({"env": ["TZ=UTC"]}),
                    map(&[]),
                    &[(P::WrongType, "$.env")],
                ),
            ],
            |ctx, obj| conf(ctx, obj).env,
        );
    }

    #[test]
    fn java_options_may_not_size_the_heap() {
        table(
            vec![
                (json!({}), None, &[]),
                (
                    json!({"javaOptions": "-XX:+UseG1GC -Dx=1"}),
                    Some("-XX:+UseG1GC -Dx=1".to_owned()),
                    &[],
                ),
                (
                    json!({"javaOptions": "-Xmx4g"}),
                    None,
                    &[(P::Forbidden, "$.javaOptions")],
                ),
                (
                    json!({"javaOptions": "-Da=1  -Xms1g"}),
                    None,
                    &[(P::Forbidden, "$.javaOptions")],
                ),
                (
                    json!({"javaOptions": "-Da\n"}),
                    None,
                    &[(P::InvalidCharacter, "$.javaOptions")],
                ),
            ],
            java_options,
        );
    }

    #[test]
    fn conf_reports_in_field_order() {
        let body = json!({
            "javaOptions": "-Xmx1g",
            "env": {"1": "x"},
            "hadoopConf": {"a b": "x"},
            "sparkConf": {"spark.master": "local"},
        });
        let (_, problems) = run(&body, conf);
        assert_eq!(
            problems,
            problems_at(&[
                (P::ReservedKey, "$.sparkConf[\"spark.master\"]"),
                (P::InvalidValue, "$.hadoopConf[\"a b\"]"),
                (P::InvalidEnvName, "$.env[\"1\"]"),
                (P::Forbidden, "$.javaOptions"),
            ])
        );
    }
}
