//! What the pods mount: `volumes` (emptyDir, PVC, ConfigMap or Secret; never hostPath), with
//! unique names and mount paths.

use std::collections::HashSet;

use serde_json::Value;

use super::fields::{memory_amount, required_str};
use crate::model::{Volume, VolumeSource};
use crate::names;
use crate::validate::ProblemCode as P;
use crate::validate::reader::{Ctx, JsonPath, Obj};

/// Most volumes a job may mount.
const MAX_VOLUMES: usize = 32;
/// The kinds of volume a job may ask for; exactly one per volume.
const SOURCES: [&str; 4] = ["emptyDir", "persistentVolumeClaim", "configMap", "secret"];

/// The `volumes` field; a volume with a problem is reported and left out.
pub(super) fn volumes(ctx: &mut Ctx<'_>, obj: &Obj<'_>) -> Vec<Volume> {
    obj.get("volumes")
        .map(|(v, at)| volume_list(ctx, v, &at))
        .unwrap_or_default()
}

fn volume_list(ctx: &mut Ctx<'_>, value: &Value, path: &JsonPath) -> Vec<Volume> {
    let Some(items) = ctx.list(value, path, MAX_VOLUMES, "volumes", "volumes") else {
        return Vec::new();
    };
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
            let problem = match check_mount_path(s) {
                Err(why) => Some((P::InvalidValue, why)),
                Ok(()) if !paths_seen.insert(s.trim_end_matches('/').to_owned()) => {
                    Some((P::Duplicate, "two volumes are mounted at this path"))
                }
                Ok(()) => None,
            };
            match problem {
                Some((code, why)) => {
                    ctx.push(code, &at, format!("{s:?}: {why}"));
                    None
                }
                None => Some(s.to_owned()),
            }
        });
        let read_only = obj
            .get("readOnly")
            .and_then(|(v, at)| ctx.boolean(v, &at))
            .unwrap_or(false);
        let given: Vec<&str> = SOURCES.iter().copied().filter(|s| obj.has(s)).collect();
        let source = match given.as_slice() {
            [one] => volume_source(ctx, &obj, one),
            _ => {
                ctx.push(
                    P::InvalidValue,
                    &at,
                    format!("a volume needs exactly one of {}", SOURCES.join(", ")),
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

/// An absolute path below `/` that does not climb out with `..`.
fn check_mount_path(s: &str) -> Result<(), &'static str> {
    if !s.starts_with('/') || s == "/" {
        Err("mountPath must be an absolute path below /")
    } else if s.split('/').any(|seg| seg == "..") {
        Err("mountPath must not contain '..'")
    } else {
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::testing::{problems_at, run, table};
    use super::*;
    use crate::quantity::MemoryBytes;

    fn volume(name: &str, mount_path: &str, source: VolumeSource) -> Volume {
        Volume {
            name: name.into(),
            mount_path: mount_path.into(),
            read_only: false,
            source,
        }
    }

    #[test]
    fn mount_paths_are_absolute_and_stay_below_root() {
        for (s, ok) in [
            ("/data", true),
            ("/data/", true),
            ("/a/b..c", true),
            ("/", false),
            ("data", false),
            ("", false),
            ("/data/../etc", false),
            ("/..", false),
        ] {
            assert_eq!(check_mount_path(s).is_ok(), ok, "{s:?}");
        }
    }

    #[test]
    fn each_source_kind_reads_its_own_fields() {
        table(
            vec![
                (
                    json!({"v": {"emptyDir": {}}}),
                    Some(VolumeSource::EmptyDir {
                        size_limit: None,
                        in_memory: false,
                    }),
                    &[],
                ),
                (
                    json!({"v": {"emptyDir": {"sizeLimit": "1g", "medium": "Memory"}}}),
                    Some(VolumeSource::EmptyDir {
                        size_limit: Some(MemoryBytes::from_mib(1024)),
                        in_memory: true,
                    }),
                    &[],
                ),
                (
                    json!({"v": {"persistentVolumeClaim": {"claimName": "scratch"}}}),
                    Some(VolumeSource::PersistentVolumeClaim {
                        claim_name: "scratch".into(),
                    }),
                    &[],
                ),
                (
                    json!({"v": {"configMap": {"name": "app-conf"}}}),
                    Some(VolumeSource::ConfigMap {
                        name: "app-conf".into(),
                    }),
                    &[],
                ),
                (
                    json!({"v": {"secret": {"secretName": "creds"}}}),
                    Some(VolumeSource::Secret {
                        secret_name: "creds".into(),
                    }),
                    &[],
                ),
                (
                    json!({"v": {"emptyDir": {"medium": "Disk"}}}),
                    None,
                    &[(P::InvalidValue, "$.v.emptyDir.medium")],
                ),
                (
                    json!({"v": {"emptyDir": {"sizeLimit": 5}}}),
                    None,
                    &[(P::WrongType, "$.v.emptyDir.sizeLimit")],
                ),
                (
                    json!({"v": {"secret": {"name": "creds"}}}),
                    None,
                    &[
                        (P::UnknownField, "$.v.secret.name"),
                        (P::MissingField, "$.v.secret.secretName"),
                    ],
                ),
                (
                    json!({"v": {"configMap": {"name": "Bad_Name"}}}),
                    None,
                    &[(P::InvalidValue, "$.v.configMap.name")],
                ),
            ],
            |ctx, obj| {
                let (v, at) = obj.get("v")?;
                let kind_key = v.as_object()?.keys().next()?.clone();
                let vol = ctx.object(v, &at, &SOURCES, &[])?;
                volume_source(ctx, &vol, &kind_key)
            },
        );
    }

    #[test]
    fn volumes_are_unique_and_well_formed() {
        let scratch = || json!({"emptyDir": {}});
        let with = |name: &str, path: &str| {
            let mut v = scratch();
            v["name"] = json!(name);
            v["mountPath"] = json!(path);
            v
        };
        let empty = || VolumeSource::EmptyDir {
            size_limit: None,
            in_memory: false,
        };
        table(
            vec![
                (json!({}), vec![], &[]),
                (
                    json!({"volumes": [with("a", "/a"), with("b", "/b")]}),
                    vec![volume("a", "/a", empty()), volume("b", "/b", empty())],
                    &[],
                ),
                (
                    json!({"volumes": [with("a", "/a"), with("a", "/b")]}),
                    vec![volume("a", "/a", empty())],
                    &[(P::Duplicate, "$.volumes[1].name")],
                ),
                (
                    json!({"volumes": [with("a", "/a"), with("b", "/a/")]}),
                    vec![volume("a", "/a", empty())],
                    &[(P::Duplicate, "$.volumes[1].mountPath")],
                ),
                (
                    json!({"volumes": [with("A", "/../a")]}),
                    vec![],
                    &[
                        (P::InvalidValue, "$.volumes[0].name"),
                        (P::InvalidValue, "$.volumes[0].mountPath"),
                    ],
                ),
                (
                    json!({"volumes": [{"name": "a", "mountPath": "/a", "hostPath": {"path": "/"}}]}),
                    vec![],
                    &[
                        (P::Forbidden, "$.volumes[0].hostPath"),
                        (P::InvalidValue, "$.volumes[0]"),
                    ],
                ),
                (
                    json!({"volumes": [{"name": "a", "mountPath": "/a", "emptyDir": {}, "secret": {"secretName": "s"}}]}),
                    vec![],
                    &[(P::InvalidValue, "$.volumes[0]")],
                ),
                (
                    json!({"volumes": {}}),
                    vec![],
                    &[(P::WrongType, "$.volumes")],
                ),
                (
                    json!({"volumes": vec![scratch(); 33]}),
                    vec![],
                    &[(P::TooManyItems, "$.volumes")],
                ),
            ],
            volumes,
        );
    }

    #[test]
    fn read_only_must_be_a_boolean() {
        let (got, problems) = run(
            &json!({"volumes": [{"name": "a", "mountPath": "/a", "readOnly": "yes", "emptyDir": {}}]}),
            volumes,
        );
        assert_eq!(
            got.len(),
            1,
            "a bad readOnly is reported, the volume kept read-write"
        );
        assert!(!got[0].read_only);
        assert_eq!(
            problems,
            problems_at(&[(P::WrongType, "$.volumes[0].readOnly")])
        );
    }
}
