//! Event recording as client-go's recorder does it: core/v1 Events named
//! `<object>.<hex>`, de-duplicated by (object, reason, message) with `count` and
//! `lastTimestamp` bumped on repeats.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::api::{self, WriteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::resources::Res;

/// Key → event name, for de-duplication.
#[derive(Debug, Default)]
pub struct EventState {
    seen: HashMap<(String, String, String), (String, String)>,
}

/// Record an event about `involved` (a stored object of `res`).
#[allow(clippy::too_many_arguments)]
pub fn record(
    c: &mut Cluster,
    res: Res,
    involved: &Value,
    etype: &str,
    reason: &str,
    message: &str,
    component: &str,
    action: &str,
) {
    let def = res.def();
    let uid = object::meta_str(involved, "uid").unwrap_or("").to_string();
    let name = object::name(involved).to_string();
    let ns = if def.namespaced {
        object::namespace(involved).to_string()
    } else {
        "default".to_string()
    };
    let now = object::time(object::now());
    let key = (uid.clone(), reason.to_string(), message.to_string());
    if let Some((ens, ename)) = c.ctl.events.seen.get(&key).cloned()
        && let Some(old) = c.store.get(Res::Event, &ens, &ename)
    {
        let mut v = old.value.clone();
        let count = v.get("count").and_then(Value::as_i64).unwrap_or(1) + 1;
        let m = object::as_map(&mut v);
        m.insert("count".into(), json!(count));
        m.insert("lastTimestamp".into(), json!(now));
        let _ = api::commit(
            c,
            Res::Event,
            &old,
            v,
            api::Sub::Main,
            &WriteOpts::internal(component),
        );
        return;
    }
    let ev_name = format!("{name}.{}", object::random_hex(&mut c.rng, 16));
    let mut involved_ref = json!({
        "kind": def.kind,
        "name": name,
        "uid": uid,
        "apiVersion": def.api_version(),
        "resourceVersion": object::meta_str(involved, "resourceVersion").unwrap_or(""),
    });
    if def.namespaced {
        involved_ref["namespace"] = json!(ns);
    }
    let v = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": ev_name, "namespace": ns},
        "involvedObject": involved_ref,
        "reason": reason,
        "message": message,
        "source": {"component": component},
        "eventTime": object::micro_time(object::now()),
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "type": etype,
        "reportingComponent": component,
        "reportingInstance": format!("{component}-kube-sim"),
        "action": action,
    });
    if c.ctl.events.seen.len() > 50_000 {
        c.ctl.events.seen.clear();
    }
    if api::create(c, Res::Event, &ns, v, &WriteOpts::internal(component)).is_ok() {
        c.ctl.events.seen.insert(key, (ns, ev_name));
    }
}
