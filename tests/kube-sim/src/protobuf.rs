//! `application/vnd.kubernetes.protobuf`, as kubectl and client-go send it for built-in
//! kinds: the `k8s\0` magic, then a `runtime.Unknown` envelope (`typeMeta`, `raw`,
//! `contentEncoding`, `contentType`) whose `raw` is the object's message. Messages are
//! handled dynamically (prost-reflect) against the descriptors of the upstream
//! `generated.proto` files vendored in `proto/kubernetes.binpb` (see `proto/README.md`),
//! and mapped to and from the JSON form the simulator stores with the API machinery's
//! JSON conventions: `Quantity` ↔ string, `Time` ↔ RFC 3339 seconds, `MicroTime` ↔
//! RFC 3339 microseconds, `IntOrString` ↔ number or string, `FieldsV1` and
//! `RawExtension` ↔ embedded JSON, `bytes` ↔ base64, maps ↔ objects.
//!
//! Go writes every non-pointer field, so a decoded message carries `""` for each unset
//! string; those are dropped (they are `omitempty` in JSON). Zero numbers and `false`
//! are kept: for pointer fields (`terminationGracePeriodSeconds: 0`) they mean something.

use std::sync::OnceLock;

use base64::Engine;
use prost_reflect::ReflectMessage;
use prost_reflect::prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, Kind, MapKey, MessageDescriptor, Value as PValue,
};
use serde_json::{Map, Value, json};

/// The media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = [b'k', b'8', b's', 0];

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Fields Go embeds inline (`json:",inline"`): in protobuf a nested message, in JSON
/// its fields sit in the parent object.
const INLINE: &[&str] = &[
    "k8s.io.api.core.v1.Probe.handler",
    "k8s.io.api.core.v1.Volume.volumeSource",
    "k8s.io.api.core.v1.PersistentVolumeSpec.persistentVolumeSource",
    "k8s.io.api.core.v1.EphemeralContainer.ephemeralContainerCommon",
    "k8s.io.api.core.v1.VolumeMountStatus.volumeStatus",
    "k8s.io.api.core.v1.ConfigMapEnvSource.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapKeySelector.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapProjection.localObjectReference",
    "k8s.io.api.core.v1.ConfigMapVolumeSource.localObjectReference",
    "k8s.io.api.core.v1.SecretEnvSource.localObjectReference",
    "k8s.io.api.core.v1.SecretKeySelector.localObjectReference",
    "k8s.io.api.core.v1.SecretProjection.localObjectReference",
];

fn inline(f: &prost_reflect::FieldDescriptor) -> bool {
    INLINE.contains(&f.full_name())
}

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(&include_bytes!("../proto/kubernetes.binpb")[..]).ok()
    })
    .as_ref()
}

/// The message of `apiVersion`/`kind`, if it has a protobuf form here.
pub fn message_for(api_version: &str, kind: &str) -> Option<MessageDescriptor> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let package = match group {
        "" if kind == "Status" || kind == "DeleteOptions" => META.to_string(),
        "" => format!("k8s.io.api.core.{version}"),
        "meta.k8s.io" => META.to_string(),
        g => {
            let short = g.strip_suffix(".k8s.io")?;
            let short = short.strip_suffix(".authorization").unwrap_or(short);
            format!("k8s.io.api.{short}.{version}")
        }
    };
    pool()?.get_message_by_name(&format!("{package}.{kind}"))
}

fn bad(msg: impl Into<String>) -> String {
    msg.into()
}

/// Decode a protobuf body into `(apiVersion, kind, JSON object)`.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let rest = body.strip_prefix(&MAGIC[..]).ok_or_else(|| {
        bad("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    })?;
    let pool = pool().ok_or_else(|| bad("protobuf descriptors unavailable"))?;
    let unknown_desc = pool
        .get_message_by_name(UNKNOWN)
        .ok_or_else(|| bad("protobuf descriptors unavailable"))?;
    let env = DynamicMessage::decode(unknown_desc, rest).map_err(|e| e.to_string())?;
    let s = |m: &DynamicMessage, f: &str| {
        m.get_field_by_name(f)
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    };
    let tm = env
        .get_field_by_name("typeMeta")
        .and_then(|v| v.as_message().cloned());
    let (api_version, kind) = tm
        .map(|t| (s(&t, "apiVersion"), s(&t, "kind")))
        .unwrap_or_default();
    let encoding = s(&env, "contentEncoding");
    if !encoding.is_empty() {
        return Err(format!("unsupported content encoding {encoding:?}"));
    }
    if kind.is_empty() {
        return Err("Object 'Kind' is missing in protobuf envelope".into());
    }
    let desc = message_for(&api_version, &kind).ok_or_else(|| {
        format!("no kind {kind:?} is registered for version {api_version:?} in scheme")
    })?;
    let raw = env
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    let msg = DynamicMessage::decode(desc, raw).map_err(|e| e.to_string())?;
    let mut v = to_json(&msg);
    let m = crate::object::as_map(&mut v);
    m.insert("apiVersion".into(), json!(api_version));
    m.insert("kind".into(), json!(kind));
    Ok(v)
}

/// Encode a JSON object (with `apiVersion`/`kind`) as a protobuf body, or `None` when
/// its kind has no protobuf form (custom resources).
pub fn encode(v: &Value) -> Option<Vec<u8>> {
    let api_version = v.get("apiVersion")?.as_str()?;
    let kind = v.get("kind")?.as_str()?;
    let desc = message_for(api_version, kind)?;
    let msg = from_json(&desc, v);
    let pool = pool()?;
    let unknown = pool.get_message_by_name(UNKNOWN)?;
    let tm_field = unknown.get_field_by_name("typeMeta")?;
    let Kind::Message(tm_desc) = tm_field.kind() else {
        return None;
    };
    let mut tm = DynamicMessage::new(tm_desc);
    tm.set_field_by_name("apiVersion", PValue::String(api_version.into()));
    tm.set_field_by_name("kind", PValue::String(kind.into()));
    let mut env = DynamicMessage::new(unknown);
    env.set_field_by_name("typeMeta", PValue::Message(tm));
    env.set_field_by_name("raw", PValue::Bytes(msg.encode_to_vec().into()));
    env.set_field_by_name("contentEncoding", PValue::String(String::new()));
    env.set_field_by_name("contentType", PValue::String(String::new()));
    let mut out = MAGIC.to_vec();
    out.extend(env.encode_to_vec());
    Some(out)
}

fn time_string(m: &DynamicMessage, micro: bool) -> Value {
    let secs = m
        .get_field_by_name("seconds")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    let nanos = m
        .get_field_by_name("nanos")
        .and_then(|v| v.as_i32())
        .unwrap_or(0)
        .clamp(0, 999_999_999) as u32;
    if secs == 0 && nanos == 0 {
        // Go writes a zero Time as an empty message; JSON says null.
        return Value::Null;
    }
    match chrono::DateTime::from_timestamp(secs, nanos) {
        Some(t) if micro => json!(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        Some(t) => json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        None => Value::Null,
    }
}

fn raw_json(m: &DynamicMessage, field: &str) -> Value {
    m.get_field_by_name(field)
        .and_then(|v| v.as_bytes().cloned())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// A message as the JSON the API server would write for it.
pub fn to_json(m: &DynamicMessage) -> Value {
    let desc = m.descriptor();
    match desc.full_name() {
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            return json!(
                m.get_field_by_name("string")
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            );
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => return time_string(m, false),
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => return time_string(m, true),
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            let ty = m
                .get_field_by_name("type")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            return if ty == 1 {
                json!(
                    m.get_field_by_name("strVal")
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                )
            } else {
                json!(
                    m.get_field_by_name("intVal")
                        .and_then(|v| v.as_i32())
                        .unwrap_or(0)
                )
            };
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => return raw_json(m, "Raw"),
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => return raw_json(m, "raw"),
        "k8s.io.api.authorization.v1.ExtraValue" | "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => {
            return m
                .get_field_by_name("items")
                .map(|v| value_json(&v))
                .unwrap_or(json!([]));
        }
        _ => {}
    }
    let mut out = Map::new();
    for (f, v) in m.fields() {
        let j = value_json(v);
        if inline(&f) {
            if let Value::Object(inner) = j {
                out.extend(inner);
            }
            continue;
        }
        let empty = match &j {
            Value::String(s) => s.is_empty(),
            Value::Null => true,
            _ => false,
        };
        // `generation` is a system field Go writes as 0 when unset.
        let unset_generation = f.name() == "generation"
            && j == json!(0)
            && desc.full_name() == "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        if !empty && !unset_generation {
            out.insert(f.name().to_string(), j);
        }
    }
    Value::Object(out)
}

fn value_json(v: &PValue) -> Value {
    match v {
        PValue::Bool(b) => json!(b),
        PValue::I32(n) => json!(n),
        PValue::I64(n) => json!(n),
        PValue::U32(n) => json!(n),
        PValue::U64(n) => json!(n),
        PValue::F32(n) => json!(n),
        PValue::F64(n) => json!(n),
        PValue::String(s) => json!(s),
        PValue::Bytes(b) => json!(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::EnumNumber(n) => json!(n),
        PValue::Message(m) => to_json(m),
        PValue::List(items) => Value::Array(items.iter().map(value_json).collect()),
        PValue::Map(map) => {
            let mut keys: Vec<(&MapKey, &PValue)> = map.iter().collect();
            keys.sort_by_key(|(k, _)| map_key(k));
            Value::Object(
                keys.into_iter()
                    .map(|(k, v)| (map_key(k), value_json(v)))
                    .collect(),
            )
        }
    }
}

fn map_key(k: &MapKey) -> String {
    match k {
        MapKey::String(s) => s.clone(),
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
    }
}

fn parse_time(s: &str) -> Option<(i64, i32)> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some((t.timestamp(), t.timestamp_subsec_nanos() as i32))
}

/// A JSON object as a message of `desc` (fields the message lacks are left out).
pub fn from_json(desc: &MessageDescriptor, v: &Value) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    let set = |m: &mut DynamicMessage, f: &str, val: PValue| {
        m.set_field_by_name(f, val);
    };
    match desc.full_name() {
        "k8s.io.apimachinery.pkg.api.resource.Quantity" => {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            set(&mut m, "string", PValue::String(s));
            return m;
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => {
            if let Some((secs, nanos)) = v.as_str().and_then(parse_time) {
                set(&mut m, "seconds", PValue::I64(secs));
                set(&mut m, "nanos", PValue::I32(nanos));
            }
            return m;
        }
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => {
            match v {
                Value::String(s) => {
                    set(&mut m, "type", PValue::I64(1));
                    set(&mut m, "strVal", PValue::String(s.clone()));
                }
                other => {
                    set(&mut m, "type", PValue::I64(0));
                    set(
                        &mut m,
                        "intVal",
                        PValue::I32(other.as_i64().unwrap_or(0) as i32),
                    );
                }
            }
            return m;
        }
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
            set(
                &mut m,
                "Raw",
                PValue::Bytes(v.to_string().into_bytes().into()),
            );
            return m;
        }
        "k8s.io.apimachinery.pkg.runtime.RawExtension" => {
            set(
                &mut m,
                "raw",
                PValue::Bytes(v.to_string().into_bytes().into()),
            );
            return m;
        }
        "k8s.io.api.authorization.v1.ExtraValue" | "k8s.io.apimachinery.pkg.apis.meta.v1.Verbs" => {
            if let Some(items) = v.as_array() {
                let list = items
                    .iter()
                    .filter_map(|x| x.as_str().map(|s| PValue::String(s.into())))
                    .collect();
                set(&mut m, "items", PValue::List(list));
            }
            return m;
        }
        _ => {}
    }
    let Some(obj) = v.as_object() else {
        return m;
    };
    for f in desc.fields() {
        if inline(&f) {
            if let Kind::Message(d) = f.kind() {
                let sub = from_json(&d, v);
                if sub.fields().next().is_some() {
                    m.set_field(&f, PValue::Message(sub));
                }
            }
            continue;
        }
        let Some(jv) = obj.get(f.name()).filter(|x| !x.is_null()) else {
            continue;
        };
        let val = if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                continue;
            };
            let vf = entry.map_entry_value_field();
            let Some(o) = jv.as_object() else { continue };
            PValue::Map(
                o.iter()
                    .filter_map(|(k, x)| Some((MapKey::String(k.clone()), scalar(&vf.kind(), x)?)))
                    .collect(),
            )
        } else if f.is_list() {
            let Some(a) = jv.as_array() else { continue };
            PValue::List(a.iter().filter_map(|x| scalar(&f.kind(), x)).collect())
        } else {
            match scalar(&f.kind(), jv) {
                Some(x) => x,
                None => continue,
            }
        };
        m.set_field(&f, val);
    }
    m
}

fn scalar(kind: &Kind, v: &Value) -> Option<PValue> {
    Some(match kind {
        Kind::Message(d) => PValue::Message(from_json(d, v)),
        Kind::String => PValue::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Kind::Bool => PValue::Bool(v.as_bool()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => PValue::I32(v.as_i64()? as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => PValue::I64(v.as_i64()?),
        Kind::Uint32 | Kind::Fixed32 => PValue::U32(v.as_u64()? as u32),
        Kind::Uint64 | Kind::Fixed64 => PValue::U64(v.as_u64()?),
        Kind::Float => PValue::F32(v.as_f64()? as f32),
        Kind::Double => PValue::F64(v.as_f64()?),
        Kind::Bytes => PValue::Bytes(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?
                .into(),
        ),
        Kind::Enum(_) => PValue::EnumNumber(v.as_i64()? as i32),
    })
}

#[cfg(test)]
mod tests;
