//! The emulated kubelet (KWOK's role): a bound pod becomes Running after
//! `pod_start_delay` (simulated), with containerStatuses, IPs and conditions that look
//! real; pods with a `kube-sim.dev/runtime` annotation (or a Spark role) later
//! terminate; image-pull failures keep a pod Pending in `ErrImagePull` /
//! `ImagePullBackOff`; graceful deletions finish after `termination_delay`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{self, Sub, WriteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::resources::Res;
use crate::store::{Key, Obj};

use super::events;
use super::scheduler::upsert_condition;

/// What a timer does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Action {
    Start,
    PullBackOff,
    Complete,
    Remove,
}

/// A timer: (due at, sequence, pod key, pod uid, action), earliest first.
type Timer = Reverse<(Duration, u64, Key, String, Action)>;

/// How a pod's containers will end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// Runs until told otherwise.
    RunForever,
    /// Runs for a while, then exits with this code.
    RunFor(Duration, i32),
    /// Image cannot be pulled.
    ImagePullError,
}

/// Timers by simulated time.
#[derive(Debug, Default)]
pub struct KubeletState {
    timers: BinaryHeap<Timer>,
    seq: u64,
    ip_counter: u32,
    /// Hints for pods created by the emulated controllers (uid → hint).
    pub hints: HashMap<String, Hint>,
}

impl KubeletState {
    /// Whether a timer is due.
    pub fn due(&self, now: Duration) -> bool {
        self.timers.peek().is_some_and(|Reverse(t)| t.0 <= now)
    }

    fn push(&mut self, at: Duration, key: Key, uid: String, action: Action) {
        self.seq += 1;
        self.timers.push(Reverse((at, self.seq, key, uid, action)));
    }
}

fn hint_of(c: &Cluster, obj: &Obj) -> Hint {
    if let Some(h) = c.ctl.kubelet.hints.get(&obj.uid) {
        return h.clone();
    }
    let ann = object::meta_map(&obj.value, "annotations");
    match ann.get("kube-sim.dev/outcome").map(String::as_str) {
        Some("ImagePullBackOff") => return Hint::ImagePullError,
        Some("Failed") => {
            let d = ann
                .get("kube-sim.dev/runtime")
                .and_then(|r| humantime::parse_duration(r).ok())
                .unwrap_or_default();
            return Hint::RunFor(d, 1);
        }
        _ => {}
    }
    match ann
        .get("kube-sim.dev/runtime")
        .and_then(|r| humantime::parse_duration(r).ok())
    {
        Some(d) => Hint::RunFor(d, 0),
        None => Hint::RunForever,
    }
}

/// A pod was bound: start it after the configured delay.
pub fn on_bound(c: &mut Cluster, key: &Key) {
    let Some(obj) = c.store.get(Res::Pod, &key.0, &key.1) else {
        return;
    };
    let at = c.clock.now() + c.cfg.simulation.pod_start_delay;
    c.ctl
        .kubelet
        .push(at, key.clone(), obj.uid.clone(), Action::Start);
}

/// A graceful deletion started: remove the pod later.
pub fn schedule_termination(c: &mut Cluster, obj: &Obj) {
    let grace = obj
        .value
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_u64)
        .unwrap_or(30);
    let delay = c
        .cfg
        .simulation
        .termination_delay
        .min(Duration::from_secs(grace));
    let at = c.clock.now() + delay;
    c.ctl
        .kubelet
        .push(at, obj.key.clone(), obj.uid.clone(), Action::Remove);
}

/// A node was deleted: its pods are gone too (the pod GC's job).
pub fn node_gone(c: &mut Cluster, node: &str) {
    for p in c.store.pods_on_node(node) {
        c.store.remove(Res::Pod, &p.key.0, &p.key.1);
    }
}

/// Fire due timers.
pub fn step(c: &mut Cluster, limit: usize) {
    let now = c.clock.now();
    // The timers left over stay due for the next pass.
    for _ in 0..limit {
        if !c.ctl.kubelet.due(now) {
            break;
        }
        let Some(Reverse((_, _, key, uid, action))) = c.ctl.kubelet.timers.pop() else {
            break;
        };
        let Some(obj) = c.store.get(Res::Pod, &key.0, &key.1) else {
            continue;
        };
        if obj.uid != uid {
            continue;
        }
        match action {
            Action::Start => start(c, &obj),
            Action::PullBackOff => pull_back_off(c, &obj),
            Action::Complete => {
                let code = match hint_of(c, &obj) {
                    Hint::RunFor(_, code) => code,
                    _ => 0,
                };
                terminate(c, &obj, code, if code == 0 { "Completed" } else { "Error" });
            }
            Action::Remove => {
                let has_finalizers = obj
                    .value
                    .pointer("/metadata/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
                if has_finalizers {
                    // Containers stop; the object stays until its finalizers are removed.
                    terminate(c, &obj, 137, "Error");
                } else {
                    c.store.remove(Res::Pod, &key.0, &key.1);
                    c.ctl.kubelet.hints.remove(&uid);
                }
            }
        }
    }
}

fn container_names(v: &Value, field: &str) -> Vec<(String, String)> {
    v.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c.get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        c.get("image")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn image_ref(image: &str) -> (String, String) {
    let full = if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    let digest = format!("{full}@sha256:{:064x}", image.len() as u64 * 2_654_435_761);
    (full, digest)
}

fn write(c: &mut Cluster, obj: &Obj, v: Value) {
    if let Some(cur) = c.store.get(Res::Pod, &obj.key.0, &obj.key.1) {
        let _ = api::commit(
            c,
            Res::Pod,
            &cur,
            v,
            Sub::Status,
            &WriteOpts::internal("kubelet"),
        );
    }
}

fn host_ip(c: &Cluster, node: &str) -> String {
    c.store
        .get(Res::Node, "", node)
        .and_then(|n| {
            n.value
                .pointer("/status/addresses/0/address")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| "10.0.0.1".into())
}

fn start(c: &mut Cluster, obj: &Obj) {
    let Some(facts) = &obj.pod else { return };
    if facts.phase != "Pending" || facts.deleting {
        return;
    }
    let Some(node) = facts.node.clone() else {
        return;
    };
    let hint = hint_of(c, obj);
    let now = object::time(object::now());
    let hip = host_ip(c, &node);
    let mut v = obj.value.clone();
    let status = object::obj_field_mut(&mut v, "status");
    status.insert("hostIP".into(), json!(hip));
    status.insert("hostIPs".into(), json!([{"ip": hip}]));
    status.insert("startTime".into(), json!(now));
    if hint == Hint::ImagePullError {
        let statuses: Vec<Value> = container_names(&obj.value, "containers")
            .into_iter()
            .map(|(n, img)| {
                json!({"name": n, "image": img, "imageID": "", "ready": false, "started": false, "restartCount": 0,
                    "state": {"waiting": {"reason": "ErrImagePull", "message": format!("failed to pull and unpack image \"{}\": failed to resolve reference: not found", image_ref(&img).0)}}})
            })
            .collect();
        status.insert("containerStatuses".into(), json!(statuses));
        upsert_condition(
            &mut v,
            json!({"type": "Initialized", "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": now}),
        );
        upsert_condition(
            &mut v,
            json!({"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "containers with unready status: [spark-kubernetes-driver]", "lastProbeTime": Value::Null, "lastTransitionTime": now}),
        );
        write(c, obj, v);
        events::record(
            c,
            Res::Pod,
            &obj.value,
            "Warning",
            "Failed",
            "Error: ErrImagePull",
            "kubelet",
            "Pulling",
        );
        let at = c.clock.now() + Duration::from_secs(5);
        c.ctl
            .kubelet
            .push(at, obj.key.clone(), obj.uid.clone(), Action::PullBackOff);
        return;
    }
    c.ctl.kubelet.ip_counter += 1;
    let n = c.ctl.kubelet.ip_counter;
    let ip = format!(
        "10.{}.{}.{}",
        100 + (n >> 16) % 100,
        (n >> 8) % 256,
        n % 256
    );
    status.insert("phase".into(), json!("Running"));
    status.insert("podIP".into(), json!(ip));
    status.insert("podIPs".into(), json!([{"ip": ip}]));
    let running: Vec<Value> = container_names(&obj.value, "containers")
        .into_iter()
        .enumerate()
        .map(|(i, (n, img))| {
            let (full, digest) = image_ref(&img);
            json!({"name": n, "image": full, "imageID": digest, "containerID": format!("containerd://{:064x}", (obj.rv << 8) + i as u64),
                "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    status.insert("containerStatuses".into(), json!(running));
    let inits: Vec<Value> = container_names(&obj.value, "initContainers")
        .into_iter()
        .map(|(n, img)| {
            let (full, digest) = image_ref(&img);
            json!({"name": n, "image": full, "imageID": digest, "ready": true, "started": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}})
        })
        .collect();
    if !inits.is_empty() {
        status.insert("initContainerStatuses".into(), json!(inits));
    }
    for t in [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ] {
        upsert_condition(
            &mut v,
            json!({"type": t, "status": "True", "lastProbeTime": Value::Null, "lastTransitionTime": now}),
        );
    }
    write(c, obj, v);
    for (n, img) in container_names(&obj.value, "containers") {
        events::record(
            c,
            Res::Pod,
            &obj.value,
            "Normal",
            "Pulled",
            &format!("Container image \"{img}\" already present on machine"),
            "kubelet",
            "Pulling",
        );
        events::record(
            c,
            Res::Pod,
            &obj.value,
            "Normal",
            "Started",
            &format!("Started container {n}"),
            "kubelet",
            "Started",
        );
    }
    if let Hint::RunFor(d, _) = hint {
        let at = c.clock.now() + d;
        c.ctl
            .kubelet
            .push(at, obj.key.clone(), obj.uid.clone(), Action::Complete);
    }
}

fn pull_back_off(c: &mut Cluster, obj: &Obj) {
    let mut v = obj.value.clone();
    if let Some(Value::Array(cs)) = v.pointer_mut("/status/containerStatuses") {
        for cs in cs.iter_mut() {
            let img = cs
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            cs["state"] = json!({"waiting": {"reason": "ImagePullBackOff", "message": format!("Back-off pulling image \"{img}\"")}});
        }
    }
    write(c, obj, v);
    events::record(
        c,
        Res::Pod,
        &obj.value,
        "Normal",
        "BackOff",
        "Back-off pulling image",
        "kubelet",
        "Pulling",
    );
}

/// End a running pod: every container terminated with `code`; phase by restart policy.
pub fn terminate(c: &mut Cluster, obj: &Obj, code: i32, reason: &str) {
    terminate_with(c, obj, code, reason, None);
}

/// Like [`terminate`], but only container `only` gets `code`/`reason`.
pub fn terminate_with(c: &mut Cluster, obj: &Obj, code: i32, reason: &str, only: Option<&str>) {
    let Some(facts) = &obj.pod else { return };
    if facts.terminal() {
        return;
    }
    let now = object::time(object::now());
    let mut v = obj.value.clone();
    let mut failed = false;
    if let Some(Value::Array(cs)) = v.pointer_mut("/status/containerStatuses") {
        for cs in cs.iter_mut() {
            let name = cs
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let started = cs
                .pointer("/state/running/startedAt")
                .cloned()
                .unwrap_or(json!(now));
            let (cc, rr) = if only.is_none_or(|o| o == name) {
                (code, reason)
            } else {
                (0, "Completed")
            };
            failed |= cc != 0;
            cs["state"] = json!({"terminated": {"exitCode": cc, "reason": rr, "startedAt": started, "finishedAt": now,
                "containerID": cs.get("containerID").cloned().unwrap_or(Value::Null)}});
            cs["ready"] = json!(false);
            cs["started"] = json!(false);
            if let Some(m) = cs
                .pointer_mut("/state/terminated")
                .and_then(Value::as_object_mut)
                && m.get("containerID").is_some_and(Value::is_null)
            {
                m.remove("containerID");
            }
        }
    }
    let phase = if failed { "Failed" } else { "Succeeded" };
    object::obj_field_mut(&mut v, "status").insert("phase".into(), json!(phase));
    for t in ["Ready", "ContainersReady"] {
        upsert_condition(
            &mut v,
            json!({"type": t, "status": "False", "reason": "PodCompleted", "lastProbeTime": Value::Null, "lastTransitionTime": now}),
        );
    }
    upsert_condition(
        &mut v,
        json!({"type": "PodReadyToStartContainers", "status": "False", "lastProbeTime": Value::Null, "lastTransitionTime": now}),
    );
    write(c, obj, v);
}
