//! The job message rules, field by field, with catalog defaults applied.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::ProblemCode as P;
use super::reader::{Ctx, JsonPath, MAX_STRING, Obj, kind};
use crate::duration::JobDuration;
use crate::model::{
    API_VERSION, AppType, Deps, DriverSpec, DynamicAllocation, ExecutorScaling, ExecutorSpec, Job,
    JobId, Priority, PullPolicy, Resources, Volume, VolumeSource,
};
use crate::names;
use crate::quantity::{CpuMillis, MemoryBytes, parse_cpu, parse_memory};
use crate::retry::{Backoff, RetryPolicy};

const TOP_FIELDS: &[&str] = &[
    "apiVersion",
    "id",
    "name",
    "namespace",
    "priority",
    "type",
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "mainApplicationFile",
    "mainClass",
    "arguments",
    "sparkVersion",
    "sparkConf",
    "hadoopConf",
    "env",
    "javaOptions",
    "deps",
    "driver",
    "executor",
    "spot",
    "tags",
    "annotations",
    "volumes",
    "retry",
    "ttl",
    "deadline",
    "timeout",
];

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
    ("spark.driver.memoryOverhead", "driver.memoryOverhead"),
    ("spark.executor.memoryOverhead", "executor.memoryOverhead"),
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

const URI_SCHEMES: &[&str] = &[
    "local", "file", "s3", "s3a", "s3n", "gs", "hdfs", "viewfs", "abfs", "abfss", "wasb", "wasbs",
    "oss", "cos", "http", "https",
];

/// Smallest and largest amounts a single pod may ask for.
const MIN_CPU: CpuMillis = CpuMillis(100);
const MAX_CPU: CpuMillis = CpuMillis(256_000);
const MIN_MEMORY: MemoryBytes = MemoryBytes::from_mib(32);
const MAX_MEMORY: MemoryBytes = MemoryBytes::from_mib(4 * 1024 * 1024);

/// The whole message. Returns `None` when a required part is missing (problems say why).
pub(super) fn job(ctx: &mut Ctx<'_>, value: &Value) -> Option<Job> {
    let root = JsonPath::root();
    let obj = ctx.object(value, &root, TOP_FIELDS, &[])?;
    let defaults = ctx.catalog.defaults().clone();
    let limits = *ctx.catalog.limits();

    let api_version = match obj.get("apiVersion") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("apiVersion"),
                format!("apiVersion is required; this version understands \"{API_VERSION}\""),
            );
            None
        }
        Some((v, at)) => ctx.string(v, &at, 32, false).and_then(|s| {
            if s == API_VERSION {
                Some(s.to_owned())
            } else {
                ctx.push(
                    P::UnsupportedApiVersion,
                    &at,
                    format!("apiVersion {s:?} is not supported; use \"{API_VERSION}\""),
                );
                None
            }
        }),
    };

    let id = match obj.get("id") {
        None => Some(ctx.defaults.id.unwrap_or_else(JobId::generate)),
        Some((v, at)) => ctx
            .string(v, &at, 64, false)
            .and_then(|s| match s.parse::<JobId>() {
                Ok(id) if !id.0.is_nil() => Some(id),
                Ok(_) => {
                    ctx.push(P::InvalidId, &at, "the nil UUID is not a job id");
                    None
                }
                Err(e) => {
                    ctx.push(P::InvalidId, &at, format!("{s:?} is not a UUID: {e}"));
                    None
                }
            }),
    };

    let name = required_str(ctx, &obj, "name", names::MAX_JOB_NAME * 4).and_then(|(s, at)| match names::check_job_name(s) {
        Ok(()) => Some(s.to_owned()),
        Err(why) => {
            ctx.push(P::InvalidName, &at, format!("name {s:?} is invalid: {why} (rule: ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$, at most {} characters)", names::MAX_JOB_NAME));
            None
        }
    });

    let namespace = required_str(ctx, &obj, "namespace", 253).and_then(|(s, at)| {
        if ctx.catalog.namespace(s).is_some() {
            Some(s.to_owned())
        } else {
            let served: Vec<&str> = ctx.catalog.namespace_names().collect();
            ctx.push(
                P::UnknownNamespace,
                &at,
                format!(
                    "namespace {s:?} is not served here; served namespaces: {}",
                    served.join(", ")
                ),
            );
            None
        }
    });

    let priority = optional_enum(
        ctx,
        &obj,
        "priority",
        &[("high", Priority::High), ("normal", Priority::Normal)],
    )
    .unwrap_or(Some(ctx.defaults.priority.unwrap_or(Priority::Normal)));
    let app_type = optional_enum(
        ctx,
        &obj,
        "type",
        &[
            ("Scala", AppType::Scala),
            ("Java", AppType::Java),
            ("Python", AppType::Python),
            ("R", AppType::R),
        ],
    )
    .unwrap_or(Some(defaults.app_type));
    let image_pull_policy = optional_enum(
        ctx,
        &obj,
        "imagePullPolicy",
        &[
            ("Always", PullPolicy::Always),
            ("IfNotPresent", PullPolicy::IfNotPresent),
            ("Never", PullPolicy::Never),
        ],
    )
    .unwrap_or(defaults.image_pull_policy);
    let image = defaulted_str(
        ctx,
        &obj,
        "image",
        defaults.image.as_deref(),
        "set image, or defaults.image in the config",
        names::check_image,
        P::InvalidImage,
    );
    let spark_version = defaulted_str(
        ctx,
        &obj,
        "sparkVersion",
        defaults.spark_version.as_deref(),
        "set sparkVersion, or defaults.spark_version in the config",
        names::check_spark_version,
        P::InvalidValue,
    );

    let image_pull_secrets = obj
        .get("imagePullSecrets")
        .map(|(v, at)| {
            ctx.string_list(v, &at, 16, 253, |s| {
                names::check_dns_subdomain(s)
                    .map_err(|w| (P::InvalidValue, format!("{s:?} is not a Secret name: {w}")))
            })
        })
        .unwrap_or_default();

    let main_application_file =
        required_str(ctx, &obj, "mainApplicationFile", 4096).and_then(|(s, at)| {
            match check_uri(s) {
                Ok(()) => Some(s.to_owned()),
                Err(why) => {
                    ctx.push(P::InvalidUri, &at, why);
                    None
                }
            }
        });

    let main_class = obj.get("mainClass").and_then(|(v, at)| {
        let s = ctx.string(v, &at, 1024, false)?;
        if let Err(why) = check_class_name(s) {
            ctx.push(P::InvalidValue, &at, why);
            return None;
        }
        if matches!(app_type, Some(t) if !t.is_jvm()) {
            ctx.push(
                P::ConflictingFields,
                &at,
                "mainClass applies to Java and Scala applications only",
            );
            return None;
        }
        Some(s.to_owned())
    });

    let arguments = obj
        .get("arguments")
        .map(|(v, at)| ctx.string_list(v, &at, 1000, MAX_STRING, |_| Ok(())))
        .unwrap_or_default();
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

    let java_options = obj.get("javaOptions").and_then(|(v, at)| {
        let s = ctx.string(v, &at, 8 * 1024, false)?;
        if s.split_whitespace().any(|o| o.starts_with("-Xmx") || o.starts_with("-Xms")) {
            ctx.push(P::Forbidden, &at, "heap size cannot be set through javaOptions (-Xmx/-Xms); Spark refuses it: set driver/executor memory or nodeType");
            return None;
        }
        Some(s.to_owned())
    });

    let deps = obj
        .get("deps")
        .map(|(v, at)| deps(ctx, v, &at))
        .unwrap_or_default();
    let driver = role(ctx, &obj, "driver", defaults.driver_node_type.as_deref())
        .map(|(resources, _)| DriverSpec { resources });
    let executor = role(
        ctx,
        &obj,
        "executor",
        defaults.executor_node_type.as_deref(),
    )
    .map(|(resources, scaling)| ExecutorSpec {
        resources,
        scaling: scaling.unwrap_or(ExecutorScaling::Instances(defaults.executor_instances)),
    });

    let spot = obj
        .get("spot")
        .and_then(|(v, at)| ctx.boolean(v, &at))
        .unwrap_or(false);
    if spot && let Some(exec) = &executor {
        let node_type = match &exec.resources {
            Resources::NodeType(n) => Some(n.as_str()),
            Resources::Explicit { .. } => None,
        };
        if ctx.catalog.spot_placement(node_type).is_none() {
            let what = node_type.map_or("explicit executor resources".to_owned(), |n| {
                format!("node type {n:?}")
            });
            ctx.push(
                P::SpotUnavailable,
                &obj.path("spot"),
                format!("no spot placement is configured for {what}; ask an admin or drop spot"),
            );
        }
    }

    let tags = obj
        .get("tags")
        .map(|(v, at)| ctx.string_map(v, &at, 64, 63, |k| check_meta_key(k, true)))
        .unwrap_or_default();
    for (k, v) in &tags {
        if let Err(why) = names::check_label_value(v) {
            ctx.push(
                P::InvalidLabelValue,
                &JsonPath::root().key("tags").key(k),
                format!("{v:?} is not a label value: {why}"),
            );
        }
    }
    let annotations = obj
        .get("annotations")
        .map(|(v, at)| ctx.string_map(v, &at, 64, MAX_STRING, |k| check_meta_key(k, false)))
        .unwrap_or_default();
    let volumes = obj
        .get("volumes")
        .map(|(v, at)| volumes(ctx, v, &at))
        .unwrap_or_default();
    let retry = retry(ctx, &obj, &defaults.retry.policy(), limits.max_attempts);

    let ttl = duration(ctx, &obj, "ttl", limits.max_ttl).unwrap_or(defaults.ttl);
    let timeout = duration(ctx, &obj, "timeout", limits.max_timeout).unwrap_or(None);
    let deadline = obj.get("deadline").and_then(|(v, at)| {
        let s = ctx.string(v, &at, 64, false)?;
        match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(e) => {
                ctx.push(
                    P::InvalidTimestamp,
                    &at,
                    format!("{s:?} is not an RFC 3339 timestamp like 2026-01-31T23:00:00Z: {e}"),
                );
                None
            }
        }
    });

    Some(Job {
        api_version: api_version?,
        id: id?,
        name: name?,
        namespace: namespace?,
        priority: priority?,
        app_type: app_type?,
        image: image?,
        image_pull_policy,
        image_pull_secrets,
        main_application_file: main_application_file?,
        main_class,
        arguments,
        spark_version: spark_version?,
        spark_conf,
        hadoop_conf,
        env,
        java_options,
        deps,
        driver: driver?,
        executor: executor?,
        spot,
        tags,
        annotations,
        volumes,
        retry: retry?,
        ttl,
        deadline,
        timeout,
    })
}

fn required_str<'v>(
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
fn defaulted_str(
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

/// `None` when absent; `Some(None)` when present but invalid.
fn optional_enum<T: Copy>(
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

fn check_uri(s: &str) -> Result<(), String> {
    let accepted = || URI_SCHEMES.join(", ");
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!(
            "{s:?} is not a URI like local:///opt/app.jar or s3a://bucket/app.py (schemes: {})",
            accepted()
        ));
    };
    if !URI_SCHEMES.contains(&scheme) {
        return Err(format!(
            "scheme {scheme:?} is not supported (schemes: {})",
            accepted()
        ));
    }
    if rest.is_empty()
        || rest
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',')
    {
        return Err(format!(
            "{s:?} has an empty path, or whitespace or commas in it"
        ));
    }
    Ok(())
}

fn check_class_name(s: &str) -> Result<(), String> {
    let ident = |p: &str| {
        p.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
    };
    if s.split('.').all(ident) {
        Ok(())
    } else {
        Err(format!("{s:?} is not a class name like org.example.Main"))
    }
}

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

fn spark_conf(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> BTreeMap<String, String> {
    let conf = ctx.string_map(value, path, 500, MAX_STRING, |k| {
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
    });
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

fn deps(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> Deps {
    let fields = [
        "jars",
        "files",
        "pyFiles",
        "archives",
        "packages",
        "excludePackages",
        "repositories",
    ];
    let Some(obj) = ctx.object(value, path, &fields, &[]) else {
        return Deps::default();
    };
    let mut list = |key: &str, check: fn(&str) -> Result<(), String>, code: P| {
        obj.get(key)
            .map(|(v, at)| ctx.string_list(v, &at, 1000, 4096, |s| check(s).map_err(|w| (code, w))))
            .unwrap_or_default()
    };
    let coordinates = |parts: usize| {
        move |s: &str| {
            let ok = s.split(':').count() == parts
                && s.split(':').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                });
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{s:?} is not a Maven coordinate ({})",
                    if parts == 3 {
                        "group:artifact:version"
                    } else {
                        "group:artifact"
                    }
                ))
            }
        }
    };
    Deps {
        jars: list("jars", check_uri, P::InvalidUri),
        files: list("files", check_uri, P::InvalidUri),
        py_files: list("pyFiles", check_uri, P::InvalidUri),
        archives: list("archives", check_uri, P::InvalidUri),
        packages: obj
            .get("packages")
            .map(|(v, at)| {
                ctx.string_list(v, &at, 1000, 512, |s| {
                    coordinates(3)(s).map_err(|w| (P::InvalidValue, w))
                })
            })
            .unwrap_or_default(),
        exclude_packages: obj
            .get("excludePackages")
            .map(|(v, at)| {
                ctx.string_list(v, &at, 1000, 512, |s| {
                    coordinates(2)(s).map_err(|w| (P::InvalidValue, w))
                })
            })
            .unwrap_or_default(),
        repositories: obj
            .get("repositories")
            .map(|(v, at)| {
                ctx.string_list(v, &at, 100, 2048, |s| match check_uri(s) {
                    Ok(()) if s.starts_with("http://") || s.starts_with("https://") => Ok(()),
                    Ok(()) => Err((
                        P::InvalidUri,
                        format!("{s:?}: repositories are http(s) URLs"),
                    )),
                    Err(w) => Err((P::InvalidUri, w)),
                })
            })
            .unwrap_or_default(),
    }
}

/// `driver` or `executor`: a node type or explicit amounts, and for executors their count.
fn role(
    ctx: &mut Ctx<'_>,
    parent: &Obj<'_>,
    key: &str,
    default_type: Option<&str>,
) -> Option<(Resources, Option<ExecutorScaling>)> {
    let is_executor = key == "executor";
    let Some((value, path)) = parent.get(key) else {
        return match default_type {
            Some(t) => Some((Resources::NodeType(t.to_owned()), None)),
            None => {
                ctx.push(
                    P::MissingField,
                    &parent.path(key),
                    format!("{key} is required: give nodeType, or cores and memory"),
                );
                None
            }
        };
    };
    let fields: &[&str] = if is_executor {
        &[
            "nodeType",
            "cores",
            "memory",
            "memoryOverhead",
            "instances",
            "dynamicAllocation",
        ]
    } else {
        &["nodeType", "cores", "memory", "memoryOverhead"]
    };
    let obj = ctx.object(value, &path, fields, &[])?;
    let resources = resources(ctx, &obj, key, default_type);
    let scaling = if is_executor {
        scaling(ctx, &obj)?
    } else {
        None
    };
    Some((resources?, scaling))
}

fn resources(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    role: &str,
    default_type: Option<&str>,
) -> Option<Resources> {
    let node_type = obj.get("nodeType").and_then(|(v, at)| {
        let n = ctx.string(v, &at, 63, false)?;
        if ctx.catalog.node_type(n).is_some() {
            return Some(n.to_owned());
        }
        let known: Vec<&str> = ctx.catalog.node_type_names().collect();
        ctx.push(
            P::UnknownNodeType,
            &at,
            format!(
                "node type {n:?} is not defined; defined node types: {}",
                known.join(", ")
            ),
        );
        None
    });
    let explicit_keys = ["cores", "memory", "memoryOverhead"];
    if obj.has("nodeType") {
        for k in explicit_keys.iter().filter(|k| obj.has(k)) {
            ctx.push(
                P::ConflictingFields,
                &obj.path(k),
                format!(
                    "{k} cannot be combined with nodeType: the node type fixes the {role}'s size"
                ),
            );
        }
        return node_type.map(Resources::NodeType);
    }
    if !explicit_keys.iter().any(|k| obj.has(k)) {
        return match default_type {
            Some(t) => Some(Resources::NodeType(t.to_owned())),
            None => {
                ctx.push(
                    P::MissingField,
                    &obj.path("nodeType"),
                    format!("the {role} needs a size: give nodeType, or cores and memory"),
                );
                None
            }
        };
    }
    let cores = match obj.get("cores") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("cores"),
                "cores is required with memory (or use nodeType)",
            );
            None
        }
        Some((v, at)) => quantity(ctx, v, &at, "cores", |s| parse_cpu(s).map(|c| c.0))
            .and_then(|m| in_bounds(ctx, &at, CpuMillis(m), MIN_CPU, MAX_CPU)),
    };
    let memory = match obj.get("memory") {
        None => {
            ctx.push(
                P::MissingField,
                &obj.path("memory"),
                "memory is required with cores (or use nodeType)",
            );
            None
        }
        Some((v, at)) => {
            memory_amount(ctx, v, &at).and_then(|m| in_bounds(ctx, &at, m, MIN_MEMORY, MAX_MEMORY))
        }
    };
    let overhead = match obj.get("memoryOverhead") {
        None => Some(None),
        Some((v, at)) => memory_amount(ctx, v, &at)
            .and_then(|m| in_bounds(ctx, &at, m, MemoryBytes(0), MAX_MEMORY))
            .map(Some),
    };
    Some(Resources::Explicit {
        cores: cores?,
        memory: memory?,
        memory_overhead: overhead?,
    })
}

fn quantity(
    ctx: &mut Ctx<'_>,
    value: &Value,
    path: &JsonPath,
    what: &str,
    parse: impl Fn(&str) -> Result<u64, crate::quantity::QuantityError>,
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

fn memory_amount(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> Option<MemoryBytes> {
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

fn in_bounds<T: PartialOrd + std::fmt::Display + Copy>(
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

/// `Some(None)`: neither given (the default count applies).
fn scaling(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Option<Option<ExecutorScaling>> {
    let max = ctx.catalog.limits().max_executors;
    if obj.has("instances") && obj.has("dynamicAllocation") {
        ctx.push(
            P::ConflictingFields,
            &obj.path("dynamicAllocation"),
            "give either instances or dynamicAllocation, not both",
        );
        return None;
    }
    if let Some((v, at)) = obj.get("instances") {
        return ctx
            .integer(v, &at, 1, max)
            .map(|n| Some(ExecutorScaling::Instances(n)));
    }
    let Some((v, at)) = obj.get("dynamicAllocation") else {
        return Some(None);
    };
    let da = ctx.object(
        v,
        &at,
        &["minExecutors", "maxExecutors", "initialExecutors"],
        &[],
    )?;
    let min = da
        .get("minExecutors")
        .map_or(Some(0), |(v, at)| ctx.integer(v, &at, 0, max));
    let max_e = match da.get("maxExecutors") {
        None => {
            ctx.push(
                P::MissingField,
                &da.path("maxExecutors"),
                "maxExecutors is required for dynamic allocation",
            );
            None
        }
        Some((v, at)) => ctx.integer(v, &at, 1, max),
    };
    let initial = da
        .get("initialExecutors")
        .map(|(v, at)| ctx.integer(v, &at, 0, max));
    let (min, max_e) = (min?, max_e?);
    let initial = match initial {
        None => None,
        Some(i) => Some(i?),
    };
    if min > max_e {
        ctx.push(
            P::OutOfRange,
            &da.path("minExecutors"),
            format!("minExecutors ({min}) must not exceed maxExecutors ({max_e})"),
        );
        return None;
    }
    if let Some(i) = initial
        && !(min..=max_e).contains(&i)
    {
        ctx.push(P::OutOfRange, &da.path("initialExecutors"), format!("initialExecutors ({i}) must be between minExecutors ({min}) and maxExecutors ({max_e})"));
        return None;
    }
    Some(Some(ExecutorScaling::DynamicAllocation(
        DynamicAllocation {
            min_executors: min,
            max_executors: max_e,
            initial_executors: initial,
        },
    )))
}

fn volumes(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> Vec<Volume> {
    let Some(items) = value.as_array() else {
        ctx.push(
            P::WrongType,
            path,
            format!("expected a list of volumes, found {}", kind(value)),
        );
        return Vec::new();
    };
    if items.len() > 32 {
        ctx.push(
            P::TooManyItems,
            path,
            format!("{} volumes; at most 32 are allowed", items.len()),
        );
        return Vec::new();
    }
    let sources = ["emptyDir", "persistentVolumeClaim", "configMap", "secret"];
    let fields = [
        "name",
        "mountPath",
        "readOnly",
        "emptyDir",
        "persistentVolumeClaim",
        "configMap",
        "secret",
    ];
    let forbidden = [(
        "hostPath",
        "hostPath volumes are not allowed: a job must not reach into the node's filesystem",
    )];
    let (mut names_seen, mut paths_seen) = (HashSet::new(), HashSet::new());
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = path.index(i);
        let Some(obj) = ctx.object(item, &at, &fields, &forbidden) else {
            continue;
        };
        let name = required_str(ctx, &obj, "name", 63).and_then(|(s, at)| {
            match names::check_dns_label(s) {
                Err(why) => {
                    ctx.push(P::InvalidValue, &at, format!("volume name {s:?}: {why}"));
                    None
                }
                Ok(()) if !names_seen.insert(s.to_owned()) => {
                    ctx.push(
                        P::Duplicate,
                        &at,
                        format!("volume name {s:?} is used twice"),
                    );
                    None
                }
                Ok(()) => Some(s.to_owned()),
            }
        });
        let mount_path = required_str(ctx, &obj, "mountPath", 1024).and_then(|(s, at)| {
            let why = if !s.starts_with('/') || s == "/" {
                Some("mountPath must be an absolute path below /")
            } else if s.split('/').any(|seg| seg == "..") {
                Some("mountPath must not contain '..'")
            } else if !paths_seen.insert(s.trim_end_matches('/').to_owned()) {
                Some("two volumes are mounted at this path")
            } else {
                None
            };
            match why {
                Some(w) => {
                    ctx.push(
                        if w.contains("two volumes") {
                            P::Duplicate
                        } else {
                            P::InvalidValue
                        },
                        &at,
                        format!("{s:?}: {w}"),
                    );
                    None
                }
                None => Some(s.to_owned()),
            }
        });
        let read_only = obj
            .get("readOnly")
            .and_then(|(v, at)| ctx.boolean(v, &at))
            .unwrap_or(false);
        let given: Vec<&str> = sources.iter().copied().filter(|s| obj.has(s)).collect();
        let source = match given.as_slice() {
            [one] => volume_source(ctx, &obj, one),
            _ => {
                ctx.push(
                    P::InvalidValue,
                    &at,
                    format!("a volume needs exactly one of {}", sources.join(", ")),
                );
                None
            }
        };
        if let (Some(name), Some(mount_path), Some(source)) = (name, mount_path, source) {
            out.push(Volume {
                name,
                mount_path,
                read_only,
                source,
            });
        }
    }
    out
}

fn volume_source(ctx: &mut Ctx<'_>, obj: &Obj<'_>, kind_key: &str) -> Option<VolumeSource> {
    let (v, at) = obj.get(kind_key)?;
    let fields: &[&str] = match kind_key {
        "emptyDir" => &["sizeLimit", "medium"],
        "persistentVolumeClaim" => &["claimName"],
        "configMap" => &["name"],
        _ => &["secretName"],
    };
    let src = ctx.object(v, &at, fields, &[])?;
    if kind_key == "emptyDir" {
        let size_limit = match src.get("sizeLimit") {
            None => None,
            Some((v, at)) => Some(memory_amount(ctx, v, &at)?),
        };
        let in_memory = match src.get("medium") {
            None => false,
            Some((v, at)) => match ctx.string(v, &at, 16, false)? {
                "" => false,
                "Memory" => true,
                other => {
                    ctx.push(
                        P::InvalidValue,
                        &at,
                        format!("emptyDir medium {other:?} is not \"\" or \"Memory\""),
                    );
                    return None;
                }
            },
        };
        return Some(VolumeSource::EmptyDir {
            size_limit,
            in_memory,
        });
    }
    let name_field = fields[0];
    let (s, name_at) = required_str(ctx, &src, name_field, 253)?;
    if let Err(why) = names::check_dns_subdomain(s) {
        ctx.push(
            P::InvalidValue,
            &name_at,
            format!("{s:?} is not a Kubernetes object name: {why}"),
        );
        return None;
    }
    let s = s.to_owned();
    Some(match kind_key {
        "persistentVolumeClaim" => VolumeSource::PersistentVolumeClaim { claim_name: s },
        "configMap" => VolumeSource::ConfigMap { name: s },
        _ => VolumeSource::Secret { secret_name: s },
    })
}

fn retry(
    ctx: &mut Ctx<'_>,
    parent: &Obj<'_>,
    default: &RetryPolicy,
    max_attempts: u32,
) -> Option<RetryPolicy> {
    let Some((v, at)) = parent.get("retry") else {
        return Some(*default);
    };
    let obj = ctx.object(v, &at, &["maxAttempts", "backoff"], &[])?;
    let attempts = obj
        .get("maxAttempts")
        .map_or(Some(default.max_attempts), |(v, at)| {
            ctx.integer(v, &at, 1, max_attempts)
        });
    let backoff = match obj.get("backoff") {
        None => Some(default.backoff),
        Some((v, at)) => {
            let b = ctx.object(v, &at, &["initial", "max", "multiplier"], &[])?;
            let initial =
                duration_field(ctx, &b, "initial").unwrap_or(Some(default.backoff.initial));
            let max = duration_field(ctx, &b, "max").unwrap_or(Some(default.backoff.max));
            let multiplier = match b.get("multiplier") {
                None => Some(default.backoff.multiplier),
                Some((v, at)) => {
                    let m = v.as_f64();
                    if m.is_none() {
                        ctx.push(
                            P::WrongType,
                            &at,
                            format!("multiplier must be a number, found {}", kind(v)),
                        );
                    }
                    m
                }
            };
            match (initial, max, multiplier) {
                (Some(initial), Some(max), Some(multiplier)) => {
                    let backoff = Backoff {
                        initial,
                        max,
                        multiplier,
                    };
                    match backoff.check() {
                        Ok(()) => Some(backoff),
                        Err((field, why)) => {
                            ctx.push(P::OutOfRange, &b.path(field), why);
                            None
                        }
                    }
                }
                _ => None,
            }
        }
    };
    Some(RetryPolicy {
        max_attempts: attempts?,
        backoff: backoff?,
    })
}

/// `None` when absent; `Some(None)` when present but invalid.
fn duration_field(ctx: &mut Ctx<'_>, obj: &Obj<'_>, key: &str) -> Option<Option<JobDuration>> {
    let (v, at) = obj.get(key)?;
    let Some(s) = ctx.string(v, &at, 64, false) else {
        return Some(None);
    };
    Some(match s.parse::<JobDuration>() {
        Ok(d) => Some(d),
        Err(why) => {
            ctx.push(P::InvalidDuration, &at, why);
            None
        }
    })
}

/// A positive duration up to `max`: `None` when absent, `Some(None)` when invalid.
fn duration(
    ctx: &mut Ctx<'_>,
    obj: &Obj<'_>,
    key: &str,
    max: JobDuration,
) -> Option<Option<JobDuration>> {
    let parsed = duration_field(ctx, obj, key)?;
    Some(parsed.and_then(|d| {
        if d.0 < Duration::from_secs(1) || d > max {
            ctx.push(
                P::OutOfRange,
                &obj.path(key),
                format!("{key} {d} must be between 1s and {max}"),
            );
            None
        } else {
            Some(d)
        }
    }))
}
