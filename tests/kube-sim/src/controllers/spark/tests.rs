//! The operator emulation on a whole cluster with a frozen clock: time moves only when
//! a test advances it, and every round runs by hand, so each due time is exact.

use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{self, Sub, WriteOpts};
use crate::cluster::{self, Cluster, Shared};
use crate::config::{PoolConfig, SimConfig};
use crate::resources::Res;
use crate::store::Obj;

struct Sim {
    shared: Arc<Shared>,
    t0: Duration,
}

impl Sim {
    /// A cluster with 1 s delays whose clock stands still.
    fn new(cfg: SimConfig) -> Sim {
        let mut cfg = cfg;
        cfg.simulation.submit_delay = Duration::from_secs(1);
        cfg.simulation.pod_start_delay = Duration::from_secs(1);
        cfg.simulation.executor_request_delay = Duration::from_secs(1);
        let shared = cluster::build(cfg).unwrap();
        let t0 = {
            let mut c = shared.lock();
            c.clock.set_speed(0.0);
            c.clock.now()
        };
        Sim { shared, t0 }
    }

    fn c(&self) -> MutexGuard<'_, Cluster> {
        self.shared.lock()
    }

    /// Move the clock to `secs` after the start and let the controllers catch up.
    fn at(&self, secs: f64) {
        let mut c = self.c();
        let target = self.t0 + Duration::from_secs_f64(secs);
        let now = c.clock.now();
        assert!(target >= now, "time runs forward only");
        c.clock.advance(target - now);
        for _ in 0..8 {
            super::super::round(&mut c);
        }
    }

    fn create_app(&self, name: &str, annotations: Value, instances: u32) {
        let text = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/spark-operator/examples/spark-pi.yaml"
        ));
        let mut v: Value = serde_yaml_ng::from_str(text).unwrap();
        v["metadata"] = json!({"name": name, "namespace": "default", "annotations": annotations});
        v["spec"]["executor"]["instances"] = json!(instances);
        let mut c = self.c();
        api::create(
            &mut c,
            Res::SparkApplication,
            "default",
            v,
            &WriteOpts::internal("test"),
        )
        .unwrap();
        super::super::round(&mut c);
    }

    fn app(&self, name: &str) -> Value {
        let c = self.c();
        let app = c.store.get(Res::SparkApplication, "default", name);
        app.map(|a| a.value.clone()).unwrap_or(Value::Null)
    }

    fn state(&self, name: &str) -> String {
        let app = self.app(name);
        let state = app.pointer("/status/applicationState/state");
        state.and_then(Value::as_str).unwrap_or("").to_string()
    }

    fn states(&self, names: &[String]) -> Vec<String> {
        names.iter().map(|n| self.state(n)).collect()
    }

    fn reconciles(&self) -> u64 {
        self.c().ctl.spark.reconciles()
    }

    fn executors(&self, app: &str) -> Vec<Arc<Obj>> {
        let c = self.c();
        c.store
            .iter(Res::Pod, Some("default"), None)
            .filter(|p| {
                p.labels.get("spark-role").map(String::as_str) == Some("executor")
                    && p.labels
                        .get(crate::spark::APP_NAME_LABEL)
                        .map(String::as_str)
                        == Some(app)
            })
            .cloned()
            .collect()
    }

    /// Write `f`'s change to the current object (as a client's update would).
    fn update(&self, res: Res, name: &str, f: impl FnOnce(&mut Value)) {
        let mut c = self.c();
        let cur = c.store.get(res, "default", name).unwrap();
        let mut v = cur.value.clone();
        f(&mut v);
        api::commit(
            &mut c,
            res,
            &cur,
            v,
            Sub::Main,
            &WriteOpts::internal("test"),
        )
        .unwrap();
    }
}

fn runtime(r: &str) -> Value {
    json!({"kube-sim.dev/runtime": r})
}

fn roomy() -> SimConfig {
    SimConfig::default().with_pool(PoolConfig::new("general", 1, "64", "256Gi"))
}

#[test]
fn a_change_reconciles_only_the_app_it_concerns() {
    const N: usize = 20;
    let sim = Sim::new(roomy());
    let names: Vec<String> = (0..N).map(|i| format!("app-{i}")).collect();
    for n in &names {
        sim.create_app(n, runtime("1h"), 1);
    }
    // Submitted at 1 s, drivers run at 2 s, executors requested at 3 s and run at 4 s.
    for t in 1..=4 {
        sim.at(t as f64);
    }
    assert!(sim.states(&names).iter().all(|s| s == "RUNNING"));

    // Time passes, nothing is due and nothing changes: no app is looked at.
    let idle = sim.reconciles();
    sim.at(100.0);
    sim.at(1000.0);
    assert_eq!(sim.reconciles() - idle, 0);

    // A change to one SparkApplication reconciles that app alone.
    let before = sim.reconciles();
    sim.update(Res::SparkApplication, "app-7", |v| {
        v["metadata"]["labels"] = json!({"touched": "yes"});
    });
    sim.at(1001.0);
    assert_eq!(sim.reconciles() - before, 1);

    // So does a change to one executor pod.
    let before = sim.reconciles();
    let exec = sim.executors("app-3").remove(0);
    sim.update(Res::Pod, &exec.key.1, |v| {
        v["metadata"]["labels"]["touched"] = json!("yes");
    });
    sim.at(1002.0);
    assert_eq!(sim.reconciles() - before, 1);

    // Deleting an app reconciles none of the others.
    let before = sim.reconciles();
    {
        let mut c = sim.c();
        let opts = api::DeleteOpts::default();
        api::delete(&mut c, Res::SparkApplication, "default", "app-0", &opts).unwrap();
    }
    sim.at(1003.0);
    assert_eq!(sim.reconciles() - before, 0);
    assert_eq!(sim.state("app-0"), "");

    // Each app ends at its due time: one reconcile ends the driver, one more (on the
    // driver's change) writes the final state; the apps' own writes add none.
    let before = sim.reconciles();
    sim.at(3603.0);
    assert!(sim.states(&names[1..]).iter().all(|s| s == "RUNNING"));
    sim.at(3604.0);
    assert!(
        sim.states(&names[1..]).iter().all(|s| s == "COMPLETED"),
        "{:?}",
        sim.states(&names)
    );
    assert_eq!(sim.reconciles() - before, 2 * (N as u64 - 1));
}

#[test]
fn work_uses_the_rate_in_force_until_the_change() {
    // One 2-cpu node: the driver and one of the two executors fit.
    let sim = Sim::new(SimConfig::default().with_pool(PoolConfig::new("p", 1, "2", "32Gi")));
    sim.create_app("half", runtime("10s"), 2);
    for t in 1..=4 {
        sim.at(t as f64);
    }
    let phases = |sim: &Sim| {
        let mut p: Vec<String> = sim
            .executors("half")
            .iter()
            .map(|e| e.pod.as_ref().map(|f| f.phase.clone()).unwrap_or_default())
            .collect();
        p.sort();
        p
    };
    // From 4 s one executor of two runs: half rate.
    assert_eq!(phases(&sim), ["Pending", "Running"]);
    assert_eq!(sim.state("half"), "RUNNING");
    sim.at(10.0);
    {
        let mut c = sim.c();
        crate::admin::scale_pool(&mut c, "p", 2).unwrap();
    }
    sim.at(10.0);
    // The second executor is bound at 10 s and runs from 11 s: 7 s at half rate (3.5 s
    // of work), then 6.5 s at full rate: the app ends at 17.5 s. Charging the
    // interval at the rate found at its end would end it by 14 s.
    sim.at(11.0);
    assert_eq!(phases(&sim), ["Running", "Running"]);
    sim.at(14.0);
    sim.at(17.0);
    sim.at(17.499);
    assert_eq!(sim.state("half"), "RUNNING");
    sim.at(17.5);
    assert_eq!(sim.state("half"), "COMPLETED");
}

#[test]
fn outcomes_happen_at_their_due_time() {
    struct Case {
        outcome: &'static str,
        runtime: &'static str,
        /// When the final state appears (s after creation); `None`: never.
        ends_at: Option<u32>,
        state: &'static str,
        error: Option<&'static str>,
    }
    // Executors run from 4 s at full rate.
    let cases = [
        Case {
            outcome: "Succeeded",
            runtime: "10s",
            ends_at: Some(14),
            state: "COMPLETED",
            error: None,
        },
        Case {
            outcome: "Failed",
            runtime: "20s",
            ends_at: Some(24),
            state: "FAILED",
            error: Some("driver container failed with ExitCode: 1, Reason: Error"),
        },
        Case {
            outcome: "ExecutorOOMKilled",
            runtime: "30s",
            ends_at: Some(19),
            state: "FAILED",
            error: Some("driver container failed with ExitCode: 1, Reason: Error"),
        },
        Case {
            outcome: "ImagePullBackOff",
            runtime: "10s",
            ends_at: None,
            state: "SUBMITTED",
            error: None,
        },
    ];
    for case in cases {
        let sim = Sim::new(roomy());
        let ann =
            json!({"kube-sim.dev/outcome": case.outcome, "kube-sim.dev/runtime": case.runtime});
        sim.create_app("app", ann, 2);
        let last = case.ends_at.unwrap_or(100);
        for t in 1..last {
            sim.at(t as f64);
            let s = sim.state("app");
            assert!(
                !["COMPLETED", "FAILED"].contains(&s.as_str()),
                "{} at {t} s: {s}",
                case.outcome
            );
        }
        sim.at(last as f64);
        let app = sim.app("app");
        assert_eq!(sim.state("app"), case.state, "{}", case.outcome);
        let error = app.pointer("/status/applicationState/errorMessage");
        assert_eq!(
            error.and_then(Value::as_str),
            case.error,
            "{}",
            case.outcome
        );
        let execs = app
            .pointer("/status/executorState")
            .and_then(Value::as_object);
        match case.outcome {
            "ExecutorOOMKilled" => {
                // One is OOM-killed; the driver's exit 1 fails the other one too.
                let failed = execs.unwrap().values().filter(|v| *v == "FAILED").count();
                assert_eq!(failed, 2, "{execs:?}");
            }
            "ImagePullBackOff" => {
                assert!(execs.is_none());
                // Nothing waits for time: a day passes without a reconcile.
                let before = sim.reconciles();
                sim.at(86_400.0);
                assert_eq!(sim.reconciles(), before);
                assert_eq!(sim.state("app"), "SUBMITTED");
            }
            _ => {}
        }
    }
}

#[test]
fn executor_requests_are_retried_every_second_while_quota_refuses() {
    let sim = Sim::new(roomy().with_quota("default", "pods", &[("pods", "1")]));
    sim.create_app("q", runtime("10s"), 1);
    for t in 1..=5 {
        sim.at(t as f64);
    }
    // Refused at 3, 4 and 5 s: the driver is the only pod.
    assert_eq!(sim.state("q"), "RUNNING");
    assert!(sim.executors("q").is_empty());
    sim.update(Res::ResourceQuota, "pods", |v| {
        v["spec"]["hard"]["pods"] = json!("2");
    });
    sim.at(5.5);
    assert!(sim.executors("q").is_empty(), "no retry before 6 s");
    // Created at 6 s, running at 7 s, done 10 s later.
    sim.at(6.0);
    assert_eq!(sim.executors("q").len(), 1);
    sim.at(7.0);
    sim.at(16.0);
    assert_eq!(sim.state("q"), "RUNNING");
    sim.at(17.0);
    assert_eq!(sim.state("q"), "COMPLETED");
}
