//! Spark Operator + Spark driver emulation. For each SparkApplication: "spark-submit"
//! creates the driver pod (SUBMITTED), the driver Running makes the app RUNNING and
//! requests executors, simulated work progresses in proportion to running / requested
//! executors (none running → no progress: the deadlock is reproducible), and the
//! outcome annotation decides the end (COMPLETED, FAILED, executor OOMKilled, image
//! pull failure). Status fields follow what the real operator writes.
//!
//! Like the real operator, a run is reconciled only when its app or one of its pods
//! changed, or when a time it waits for has come ([`queue`]): the cost of a change
//! does not grow with the number of live apps.

mod queue;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{self, Sub, WriteOpts};
use crate::cluster::Cluster;
use crate::object;
use crate::resources::Res;
use crate::spark::{self, Submission};
use crate::store::Key;

use super::kubelet::{self, Hint};

pub use queue::SparkState;
use queue::{DRIVER_GONE_GRACE, WORK_EPS, target_work};

/// How the app ends (`kube-sim.dev/outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Driver exits 0.
    Succeeded,
    /// Driver exits 1.
    Failed,
    /// One executor is OOM-killed, then the driver exits 1.
    ExecutorOomKilled,
    /// The driver image cannot be pulled; the app stays SUBMITTED.
    ImagePullBackOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    New,
    Submitted,
    Running,
    Finished,
}

#[derive(Debug, Clone)]
struct Run {
    key: Key,
    phase: Phase,
    created: Duration,
    sub: Option<Submission>,
    runtime: f64,
    outcome: Outcome,
    /// Simulated seconds of work done at full rate, up to `last`.
    work: f64,
    /// Work per simulated second since `last` (running / requested executors).
    rate: f64,
    last: Duration,
    executors_at: Option<Duration>,
    wanted: u32,
    next_exec: u32,
    oom_done: bool,
    driver_gone_since: Option<Duration>,
    /// The pending timer (due at, sequence), see [`queue`].
    timer: Option<(Duration, u64)>,
}

fn parse_outcome(s: Option<&str>) -> Outcome {
    match s {
        Some("Failed") => Outcome::Failed,
        Some("ExecutorOOMKilled") => Outcome::ExecutorOomKilled,
        Some("ImagePullBackOff") => Outcome::ImagePullBackOff,
        _ => Outcome::Succeeded,
    }
}

/// A SparkApplication was created or changed.
pub fn observe_app(c: &mut Cluster, key: &Key, obj: &Value) {
    let uid = object::meta_str(obj, "uid").unwrap_or("").to_string();
    if c.ctl.spark.contains(&uid) {
        c.ctl.spark.mark(&uid);
        return;
    }
    let state = obj
        .pointer("/status/applicationState/state")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !state.is_empty() {
        return;
    }
    let ann = object::meta_map(obj, "annotations");
    let runtime = ann
        .get("kube-sim.dev/runtime")
        .and_then(|r| humantime::parse_duration(r).ok())
        .unwrap_or(c.cfg.simulation.default_runtime);
    let now = c.clock.now();
    c.ctl.spark.insert(
        uid,
        Run {
            key: key.clone(),
            phase: Phase::New,
            created: now,
            sub: None,
            runtime: runtime.as_secs_f64(),
            outcome: parse_outcome(ann.get("kube-sim.dev/outcome").map(String::as_str)),
            work: 0.0,
            rate: 0.0,
            last: now,
            executors_at: None,
            wanted: 0,
            next_exec: 1,
            oom_done: false,
            driver_gone_since: None,
            timer: None,
        },
    );
}

/// A pod changed (`key` is the pod's): queue the run of the app it belongs to (driver
/// and executors carry the app-name label).
pub fn observe_pod(c: &mut Cluster, key: &Key, pod: &Value) {
    let app = pod
        .pointer("/metadata/labels")
        .and_then(|l| l.get(spark::APP_NAME_LABEL))
        .and_then(Value::as_str);
    if let Some(app) = app {
        c.ctl.spark.mark_key(&(key.0.clone(), app.to_string()));
    }
}

fn set_status(c: &mut Cluster, key: &Key, f: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let Some(cur) = c.store.get(Res::SparkApplication, &key.0, &key.1) else {
        return;
    };
    let mut v = cur.value.clone();
    f(object::obj_field_mut(&mut v, "status"));
    let _ = api::commit(
        c,
        Res::SparkApplication,
        &cur,
        v,
        Sub::Status,
        &WriteOpts::internal("spark-operator"),
    );
}

fn set_state(status: &mut serde_json::Map<String, Value>, state: &str, error: Option<&str>) {
    let mut s = json!({"state": state});
    if let Some(e) = error {
        s["errorMessage"] = json!(e);
    }
    status.insert("applicationState".into(), s);
}

/// Reconcile the apps that changed or whose timer is due.
pub fn step(c: &mut Cluster, limit: usize) {
    let ready = c.ctl.spark.take_ready(c.clock.now(), limit);
    for uid in ready {
        let Some(mut run) = c.ctl.spark.take(&uid) else {
            continue;
        };
        reconcile(c, &mut run);
        let submit_delay = c.cfg.simulation.submit_delay;
        c.ctl.spark.reconciled(uid, run, submit_delay);
    }
}

fn reconcile(c: &mut Cluster, run: &mut Run) {
    let now = c.clock.now();
    let Some(app_obj) = c.store.get(Res::SparkApplication, &run.key.0, &run.key.1) else {
        run.phase = Phase::Finished;
        return;
    };
    let app = &app_obj.value;
    match run.phase {
        Phase::New => {
            if now < run.created + c.cfg.simulation.submit_delay {
                return;
            }
            submit(c, run, app);
        }
        Phase::Submitted | Phase::Running => {
            let Some(sub) = run.sub.clone() else { return };
            let driver_name = spark::driver_pod_name(app);
            let driver = c.store.get(Res::Pod, &run.key.0, &driver_name);
            let Some(driver) = driver.filter(|d| {
                d.labels.get("sparkoperator.k8s.io/submission-id") == Some(&sub.submission_id)
            }) else {
                let since = *run.driver_gone_since.get_or_insert(now);
                if run.phase == Phase::Running || now >= since + DRIVER_GONE_GRACE {
                    fail(c, run, "driver pod not found");
                }
                return;
            };
            let phase = driver
                .pod
                .as_ref()
                .map(|f| f.phase.clone())
                .unwrap_or_default();
            match phase.as_str() {
                "Running" => {
                    if run.phase == Phase::Submitted {
                        run.phase = Phase::Running;
                        run.last = now;
                        run.executors_at = Some(now + c.cfg.simulation.executor_request_delay);
                        run.wanted =
                            spark::initial_executors(app.get("spec").unwrap_or(&Value::Null));
                        let app_id = sub.app_id.clone();
                        set_status(c, &run.key, |s| {
                            set_state(s, "RUNNING", None);
                            s.insert("sparkApplicationId".into(), json!(app_id));
                        });
                    }
                    progress(c, run, app, &sub, &driver.value, now);
                }
                "Succeeded" | "Failed" => {
                    finish_from_driver(c, run, &driver.value);
                    return;
                }
                _ => {}
            }
            update_executor_state(c, run, &sub);
        }
        Phase::Finished => {}
    }
}

fn submit(c: &mut Cluster, run: &mut Run, app: &Value) {
    let name = run.key.1.clone();
    let sub = Submission {
        submission_id: object::random_uid(&mut c.rng),
        app_id: format!("spark-{}", object::random_hex(&mut c.rng, 32)),
        exec_prefix: format!("{name}-{}", object::random_hex(&mut c.rng, 16)),
    };
    let pod = spark::driver_pod(app, &sub);
    let now = object::time(object::now());
    let driver_name = spark::driver_pod_name(app);
    let attempts = app
        .pointer("/status/submissionAttempts")
        .and_then(Value::as_i64)
        .unwrap_or(0)
        + 1;
    match api::create(
        c,
        Res::Pod,
        &run.key.0,
        pod,
        &WriteOpts::internal("spark-operator"),
    ) {
        Ok(created) => {
            let uid = object::meta_str(&created, "uid").unwrap_or("").to_string();
            let hint = match run.outcome {
                Outcome::ImagePullBackOff => Hint::ImagePullError,
                _ => Hint::RunForever,
            };
            c.ctl.kubelet.hints.insert(uid, hint);
            let sid = sub.submission_id.clone();
            set_status(c, &run.key, |s| {
                set_state(s, "SUBMITTED", None);
                s.insert("submissionID".into(), json!(sid));
                s.insert("driverInfo".into(), json!({"podName": driver_name, "webUIServiceName": format!("{name}-ui-svc"), "webUIPort": 4040}));
                s.insert("lastSubmissionAttemptTime".into(), json!(now));
                s.insert("submissionAttempts".into(), json!(attempts));
                s.insert("executionAttempts".into(), json!(attempts));
            });
            run.sub = Some(sub);
            run.phase = Phase::Submitted;
        }
        Err(e) => {
            let msg = format!("failed to run spark-submit: {}", e.message);
            set_status(c, &run.key, |s| {
                set_state(s, "SUBMISSION_FAILED", Some(&msg));
                s.insert("lastSubmissionAttemptTime".into(), json!(now));
                s.insert("submissionAttempts".into(), json!(attempts));
                s.insert("driverInfo".into(), json!({}));
            });
            set_status(c, &run.key, |s| {
                set_state(s, "FAILED", Some(&msg));
                s.insert("terminationTime".into(), json!(now));
            });
            run.phase = Phase::Finished;
        }
    }
}

fn executors(c: &Cluster, run: &Run, sub: &Submission) -> Vec<std::sync::Arc<crate::store::Obj>> {
    // Executors are owned by the driver pod: use the owner index, not a namespace scan.
    let Some(app) = c.store.get(Res::SparkApplication, &run.key.0, &run.key.1) else {
        return Vec::new();
    };
    let Some(driver) = c
        .store
        .get(Res::Pod, &run.key.0, &spark::driver_pod_name(&app.value))
    else {
        return Vec::new();
    };
    let deps: Vec<_> = c
        .store
        .dependents
        .get(&driver.uid)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default();
    deps.into_iter()
        .filter_map(|(r, k)| {
            (r == Res::Pod)
                .then(|| c.store.get(Res::Pod, &k.0, &k.1))
                .flatten()
        })
        .filter(|p| {
            p.labels.get("spark-role").map(String::as_str) == Some("executor")
                && p.labels.get("sparkoperator.k8s.io/submission-id") == Some(&sub.submission_id)
        })
        .collect()
}

fn progress(
    c: &mut Cluster,
    run: &mut Run,
    app: &Value,
    sub: &Submission,
    driver: &Value,
    now: Duration,
) {
    // Work done since the last reconcile, at the rate in force since then: the rate
    // changes only with executor pods, and any such change reconciled the run.
    run.work += now.saturating_sub(run.last).as_secs_f64() * run.rate;
    run.last = now;
    // The driver asks for executors (and keeps asking while quota refuses them).
    if let Some(at) = run.executors_at
        && now >= at
    {
        while run.next_exec <= run.wanted {
            let pod = spark::executor_pod(app, sub, run.next_exec, driver);
            match api::create(
                c,
                Res::Pod,
                &run.key.0,
                pod,
                &WriteOpts::internal("spark-driver"),
            ) {
                Ok(created) => {
                    if let Some(uid) = object::meta_str(&created, "uid") {
                        c.ctl
                            .kubelet
                            .hints
                            .insert(uid.to_string(), Hint::RunForever);
                    }
                    run.next_exec += 1;
                }
                Err(_) => {
                    // Spark's allocator retries every spark.kubernetes.allocation.batch.delay (1s).
                    run.executors_at = Some(now + Duration::from_secs(1));
                    break;
                }
            }
        }
        if run.next_exec > run.wanted {
            run.executors_at = None;
        }
    }
    let execs = executors(c, run, sub);
    let running = execs
        .iter()
        .filter(|p| p.pod.as_ref().is_some_and(|f| f.phase == "Running"))
        .count() as f64;
    run.rate = if run.wanted == 0 {
        1.0
    } else {
        (running / run.wanted as f64).min(1.0)
    };
    // The due time was rounded to nanoseconds: within WORK_EPS counts as reached.
    let Some(target) = target_work(run) else {
        return;
    };
    if run.work + WORK_EPS < target {
        return;
    }
    if run.outcome == Outcome::ExecutorOomKilled && !run.oom_done {
        if let Some(victim) = execs
            .iter()
            .find(|p| p.pod.as_ref().is_some_and(|f| f.phase == "Running"))
        {
            kubelet::terminate_with(
                c,
                victim,
                137,
                "OOMKilled",
                Some("spark-kubernetes-executor"),
            );
            run.oom_done = true;
            end_driver(c, run, 1);
        }
        return;
    }
    let code = if run.outcome == Outcome::Succeeded {
        0
    } else {
        1
    };
    end_driver(c, run, code);
}

fn end_driver(c: &mut Cluster, run: &Run, code: i32) {
    let Some(app) = c.store.get(Res::SparkApplication, &run.key.0, &run.key.1) else {
        return;
    };
    let driver_name = spark::driver_pod_name(&app.value);
    if let Some(d) = c.store.get(Res::Pod, &run.key.0, &driver_name) {
        kubelet::terminate(c, &d, code, if code == 0 { "Completed" } else { "Error" });
    }
}

fn finish_from_driver(c: &mut Cluster, run: &mut Run, driver: &Value) {
    let code = driver
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|a| {
            a.iter().find(|cs| {
                cs.get("name").and_then(Value::as_str) == Some("spark-kubernetes-driver")
            })
        })
        .and_then(|cs| cs.pointer("/state/terminated/exitCode"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let reason = driver
        .pointer("/status/containerStatuses/0/state/terminated/reason")
        .and_then(Value::as_str)
        .unwrap_or("Error")
        .to_string();
    // The driver deletes its executors on exit (keeping the failed ones' state).
    if let Some(sub) = run.sub.clone() {
        update_executor_state(c, run, &sub);
        for e in executors(c, run, &sub) {
            let _ = api::delete(
                c,
                Res::Pod,
                &e.key.0,
                &e.key.1,
                &api::DeleteOpts {
                    grace: Some(0),
                    ..Default::default()
                },
            );
        }
    }
    let now = object::time(object::now());
    // Executors gone with the app: COMPLETED if it completed, else FAILED.
    let final_state = if code == 0 { "COMPLETED" } else { "FAILED" };
    set_status(c, &run.key, |s| {
        if let Some(Value::Object(m)) = s.get_mut("executorState") {
            for v in m.values_mut() {
                if v != "FAILED" {
                    *v = json!(final_state);
                }
            }
        }
    });
    if code == 0 {
        set_status(c, &run.key, |s| {
            set_state(s, "SUCCEEDING", None);
            s.insert("terminationTime".into(), json!(now));
        });
        set_status(c, &run.key, |s| set_state(s, "COMPLETED", None));
    } else {
        let msg = format!("driver container failed with ExitCode: {code}, Reason: {reason}");
        set_status(c, &run.key, |s| {
            set_state(s, "FAILING", Some(&msg));
            s.insert("terminationTime".into(), json!(now));
        });
        set_status(c, &run.key, |s| set_state(s, "FAILED", Some(&msg)));
    }
    run.phase = Phase::Finished;
}

fn fail(c: &mut Cluster, run: &mut Run, msg: &str) {
    let now = object::time(object::now());
    set_status(c, &run.key, |s| {
        set_state(s, "FAILING", Some(msg));
        s.insert("terminationTime".into(), json!(now));
    });
    set_status(c, &run.key, |s| set_state(s, "FAILED", Some(msg)));
    run.phase = Phase::Finished;
}

fn update_executor_state(c: &mut Cluster, run: &Run, sub: &Submission) {
    let mut states: BTreeMap<String, Value> = BTreeMap::new();
    let Some(app) = c.store.get(Res::SparkApplication, &run.key.0, &run.key.1) else {
        return;
    };
    let current = app
        .value
        .pointer("/status/executorState")
        .and_then(Value::as_object);
    if let Some(m) = current {
        for (k, v) in m {
            // An executor that disappeared while the driver runs is UNKNOWN.
            let st = v.as_str().unwrap_or("");
            let next = if st == "COMPLETED" || st == "FAILED" {
                st
            } else {
                "UNKNOWN"
            };
            states.insert(k.clone(), json!(next));
        }
    }
    for e in executors(c, run, sub) {
        let st = match e.pod.as_ref().map(|f| f.phase.as_str()) {
            Some("Pending") => "PENDING",
            Some("Running") => "RUNNING",
            Some("Succeeded") => "COMPLETED",
            Some("Failed") => "FAILED",
            _ => "UNKNOWN",
        };
        states.insert(e.key.1.clone(), json!(st));
    }
    let map: serde_json::Map<String, Value> = states.into_iter().collect();
    // Reconciled every round: write only what changed, as the operator does.
    if map.is_empty() || current == Some(&map) {
        return;
    }
    set_status(c, &run.key, |s| {
        s.insert("executorState".into(), Value::Object(map));
    });
}
