//! Pod resource arithmetic: the effective request of a pod per Kubernetes'
//! `PodRequests` rules (containers, sidecar and regular init containers, pod-level
//! resources, overhead), its limits, and the QoS class.

use serde_json::Value;

use crate::quantity;

/// CPU (millicores) and memory (bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Res2 {
    /// Millicores.
    pub cpu: i64,
    /// Bytes.
    pub mem: i64,
}

impl Res2 {
    fn add(self, o: Res2) -> Res2 {
        Res2 {
            cpu: self.cpu + o.cpu,
            mem: self.mem + o.mem,
        }
    }

    fn max(self, o: Res2) -> Res2 {
        Res2 {
            cpu: self.cpu.max(o.cpu),
            mem: self.mem.max(o.mem),
        }
    }
}

fn list_of(v: &Value, field: &str) -> Vec<Value> {
    v.get("resources")
        .and_then(|r| r.get(field))
        .map(|m| vec![m.clone()])
        .unwrap_or_default()
}

/// Requests (or limits) of one container, from `resources.<field>`.
fn container_res(c: &Value, field: &str) -> Res2 {
    let mut out = Res2::default();
    for m in list_of(c, field) {
        if let Some(s) = m.get("cpu").and_then(Value::as_str) {
            out.cpu = quantity::cpu_millis(s).unwrap_or(0);
        }
        if let Some(s) = m.get("memory").and_then(Value::as_str) {
            out.mem = quantity::units(s).unwrap_or(0);
        }
    }
    out
}

fn containers<'a>(spec: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    spec.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

fn pod_sum(spec: &Value, field: &str) -> Res2 {
    let mut sum = Res2::default();
    for c in containers(spec, "containers") {
        sum = sum.add(container_res(c, field));
    }
    // Init containers: sidecars run for the pod's life; each regular init container
    // runs alone with the sidecars started before it.
    let mut sidecars = Res2::default();
    let mut init_max = Res2::default();
    for c in containers(spec, "initContainers") {
        let r = container_res(c, field);
        if is_sidecar(c) {
            sidecars = sidecars.add(r);
            init_max = init_max.max(sidecars);
        } else {
            init_max = init_max.max(sidecars.add(r));
        }
    }
    sum = sum.add(sidecars).max(init_max);
    // Pod-level resources override the container sum.
    if let Some(pr) = spec.get("resources") {
        let p = container_res(&serde_json::json!({ "resources": pr }), field);
        if p.cpu > 0 {
            sum.cpu = p.cpu;
        }
        if p.mem > 0 {
            sum.mem = p.mem;
        }
    }
    if let Some(o) = spec.get("overhead") {
        let oh = container_res(&serde_json::json!({ "resources": { field: o } }), field);
        sum = sum.add(oh);
    }
    sum
}

/// The effective request of a pod (`spec` object).
pub fn pod_requests(spec: &Value) -> Res2 {
    pod_sum(spec, "requests")
}

/// The effective limits of a pod (`spec` object).
pub fn pod_limits(spec: &Value) -> Res2 {
    pod_sum(spec, "limits")
}

/// `Guaranteed`, `Burstable` or `BestEffort`, per `GetPodQOS`.
pub fn qos_class(spec: &Value) -> &'static str {
    let all: Vec<&Value> = containers(spec, "containers")
        .chain(containers(spec, "initContainers"))
        .collect();
    let mut any_set = false;
    let mut guaranteed = true;
    for c in &all {
        let req = c.get("resources").and_then(|r| r.get("requests"));
        let lim = c.get("resources").and_then(|r| r.get("limits"));
        for res in ["cpu", "memory"] {
            let rq = req.and_then(|m| m.get(res)).and_then(Value::as_str);
            let lm = lim.and_then(|m| m.get(res)).and_then(Value::as_str);
            if rq.is_some_and(|q| quantity::parse_milli(q).unwrap_or(0) != 0)
                || lm.is_some_and(|q| quantity::parse_milli(q).unwrap_or(0) != 0)
            {
                any_set = true;
            }
            match (rq, lm) {
                (Some(a), Some(b)) if quantity::parse_milli(a) == quantity::parse_milli(b) => {}
                (None, Some(_)) => {}
                _ => guaranteed = false,
            }
        }
    }
    if !any_set {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// Names of containers that lack a request for `resource` (quota's
/// `must specify requests.cpu for: c1` check).
pub fn containers_missing(spec: &Value, field: &str, resource: &str) -> Vec<String> {
    containers(spec, "initContainers")
        .chain(containers(spec, "containers"))
        .filter(|c| {
            c.get("resources")
                .and_then(|r| r.get(field))
                .and_then(|m| m.get(resource))
                .is_none()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn init_and_sidecar_rules() {
        let spec = json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
            ],
            "initContainers": [
                {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}},
                {"name": "big", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}
            ],
            "overhead": {"cpu": "10m"}
        });
        let r = pod_requests(&spec);
        // max(1.5 + 0.1, 0.1 + 3) + 0.01
        assert_eq!(r.cpu, 3110);
        assert_eq!(r.mem, (2 << 30) + (100 << 20));
    }

    #[test]
    fn qos() {
        let g = json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}]});
        let b = json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "1"}}}]});
        let e = json!({"containers": [{"name": "a"}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        assert_eq!(qos_class(&b), "Burstable");
        assert_eq!(qos_class(&e), "BestEffort");
    }
}
