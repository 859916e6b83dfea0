//! Spark Operator emulation: lifecycle, outcomes, pod shapes, the deadlock, validation.

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube_sim::{PoolConfig, SimConfig};
use serde_json::{Value, json};

use crate::support::*;

fn cfg() -> SimConfig {
    fast(SimConfig::uniform(3, "8", "32Gi"))
}

#[tokio::test]
async fn spark_pi_fixture_completes_with_real_status_and_pods() {
    let sim = start(cfg());
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Executors live only while the app runs: catch the first one on a watch.
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = kube::api::WatchParams::default()
        .labels("spark-role=executor,sparkoperator.k8s.io/app-name=spark-pi");
    let mut stream = pods.watch(&wp, &rv).await.unwrap().boxed();
    let first_executor = tokio::spawn(async move {
        while let Some(Ok(ev)) = stream.next().await {
            if let kube::api::WatchEvent::Added(p) = ev {
                return p;
            }
        }
        panic!("watch ended before an executor appeared")
    });
    let mut app: kube::api::DynamicObject = serde_json::from_value(spark_pi()).unwrap();
    // 30 simulated seconds (0.3 s here) keep RUNNING observable by polling.
    app.metadata.annotations =
        Some([("kube-sim.dev/runtime".to_string(), "30s".to_string())].into());
    apps.create(&PostParams::default(), &app).await.unwrap();
    let running = wait_app(&apps, "spark-pi", "RUNNING").await;
    let st = &running.data["status"];
    assert_eq!(st["driverInfo"]["podName"], "spark-pi-driver");
    assert_eq!(st["submissionAttempts"], 1);
    assert!(
        st["sparkApplicationId"]
            .as_str()
            .unwrap()
            .starts_with("spark-")
    );
    let sub_id = st["submissionID"].as_str().unwrap().to_string();
    let driver = pods.get("spark-pi-driver").await.unwrap();
    let labels = driver.metadata.labels.clone().unwrap();
    assert_eq!(labels["sparkoperator.k8s.io/app-name"], "spark-pi");
    assert_eq!(
        labels["sparkoperator.k8s.io/launched-by-spark-operator"],
        "true"
    );
    assert_eq!(labels["sparkoperator.k8s.io/submission-id"], sub_id);
    assert_eq!(labels["spark-role"], "driver");
    assert_eq!(
        labels["spark-app-selector"],
        st["sparkApplicationId"].as_str().unwrap()
    );
    assert_eq!(labels["spark-app-name"], "spark-pi");
    assert!(labels.contains_key("spark-version"));
    let owner = &driver.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SparkApplication", "spark-pi")
    );
    let res = driver.spec.as_ref().unwrap().containers[0]
        .resources
        .clone()
        .unwrap();
    assert_eq!(res.requests.as_ref().unwrap()["memory"].0, "896Mi");
    assert_eq!(res.limits.as_ref().unwrap()["memory"].0, "896Mi");
    assert_eq!(res.requests.as_ref().unwrap()["cpu"].0, "1");
    let execs = [first_executor.await.unwrap()];
    let e = &execs[0];
    let name = e.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("spark-pi-") && name.ends_with("-exec-1"),
        "{name}"
    );
    assert_eq!(name.len(), "spark-pi-".len() + 16 + "-exec-1".len());
    assert_eq!(e.metadata.labels.as_ref().unwrap()["spark-exec-id"], "1");
    assert_eq!(
        e.metadata.owner_references.as_ref().unwrap()[0].name,
        "spark-pi-driver"
    );
    let done = wait_app(&apps, "spark-pi", "COMPLETED").await;
    assert!(done.data["status"]["terminationTime"].is_string());
    let d = pods.get("spark-pi-driver").await.unwrap();
    assert_eq!(phase(&d), "Succeeded");
    let term = d.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(
        (term.exit_code, term.reason.as_deref()),
        (0, Some("Completed"))
    );
    eventually("executors deleted", async || {
        pods.list(&ListParams::default().labels("spark-role=executor"))
            .await
            .unwrap()
            .items
            .is_empty()
            .then_some(())
    })
    .await;
    // deleting the app cascades to the driver
    apps.delete("spark-pi", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&pods, "spark-pi-driver").await;
}

#[tokio::test]
async fn failed_and_oom_outcomes() {
    let sim = start(cfg());
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // Spark deletes failed executors; a watch sees the OOMKilled state on the way.
    let rv = pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = pods
        .watch(
            &kube::api::WatchParams::default().labels("spark-role=executor"),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let killed = tokio::spawn(async move {
        while let Some(Ok(ev)) = stream.next().await {
            if let kube::api::WatchEvent::Modified(p) = ev {
                let t = p
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|c| c[0].state.as_ref()?.terminated.clone());
                if let Some(t) = t
                    && t.reason.as_deref() == Some("OOMKilled")
                {
                    assert_eq!(t.exit_code, 137);
                    assert_eq!(phase(&p), "Failed");
                    return p.metadata.name.unwrap();
                }
            }
        }
        panic!("watch ended before an executor was OOMKilled")
    });
    apps.create(
        &PostParams::default(),
        &spark_app(
            "bad",
            json!({"kube-sim.dev/outcome": "Failed", "kube-sim.dev/runtime": "20s"}),
            1,
        ),
    )
    .await
    .unwrap();
    apps.create(
        &PostParams::default(),
        &spark_app(
            "oom",
            json!({"kube-sim.dev/outcome": "ExecutorOOMKilled", "kube-sim.dev/runtime": "30s"}),
            2,
        ),
    )
    .await
    .unwrap();
    let bad = wait_app(&apps, "bad", "FAILED").await;
    assert_eq!(
        bad.data["status"]["applicationState"]["errorMessage"],
        "driver container failed with ExitCode: 1, Reason: Error"
    );
    let oom = wait_app(&apps, "oom", "FAILED").await;
    let states = oom.data["status"]["executorState"].as_object().unwrap();
    assert!(states.values().any(|v| v == "FAILED"), "{states:?}");
    let killed = killed.await.unwrap();
    assert!(states.contains_key(&killed), "{killed} in {states:?}");
}

#[tokio::test]
async fn image_pull_backoff_keeps_the_app_submitted() {
    let sim = start(cfg());
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    apps.create(
        &PostParams::default(),
        &spark_app(
            "pull",
            json!({"kube-sim.dev/outcome": "ImagePullBackOff"}),
            1,
        ),
    )
    .await
    .unwrap();
    let waiting = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
    };
    let p = wait_for(
        &pods,
        "pull-driver",
        "ImagePullBackOff",
        pod_is(move |p| waiting(p).as_deref() == Some("ImagePullBackOff")),
    )
    .await;
    assert_eq!(phase(&p), "Pending");
    sim.advance(Duration::from_secs(3600));
    sim.settle();
    let app = apps.get("pull").await.unwrap();
    assert_eq!(app_state(&app), "SUBMITTED");
}

#[tokio::test]
async fn driver_up_executors_pending_deadlock_is_reproduced() {
    // Room for the drivers (1 core, 896Mi each) but not their 4-core executors.
    let sim = start(fast(
        SimConfig::default().with_pool(PoolConfig::new("small", 2, "1500m", "4Gi")),
    ));
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["job-a", "job-b", "job-c"] {
        let mut app = spark_app(name, json!({"kube-sim.dev/runtime": "30s"}), 2);
        app.data["spec"]["executor"]["cores"] = json!(4);
        apps.create(&PostParams::default(), &app).await.unwrap();
    }
    // Which two drivers win depends on scheduling order; exactly two do.
    let states = async || {
        let mut out = Vec::new();
        for name in ["job-a", "job-b", "job-c"] {
            out.push(app_state(&apps.get(name).await.unwrap()));
        }
        out.sort();
        out
    };
    eventually(
        "two apps RUNNING, one SUBMITTED, four executors Pending",
        async || {
            let l = pods
                .list(&ListParams::default().labels("spark-role=executor"))
                .await
                .unwrap();
            let pending = l.items.len() == 4 && l.items.iter().all(|p| phase(p) == "Pending");
            (pending && states().await == ["RUNNING", "RUNNING", "SUBMITTED"]).then_some(())
        },
    )
    .await;
    // A day of simulated time later: nothing finished, nothing moved.
    sim.advance(Duration::from_secs(86_400));
    sim.settle();
    assert_eq!(states().await, ["RUNNING", "RUNNING", "SUBMITTED"]);
    let drivers = pods
        .list(&ListParams::default().labels("spark-role=driver"))
        .await
        .unwrap();
    let running: Vec<_> = drivers
        .items
        .iter()
        .filter(|p| phase(p) == "Running")
        .collect();
    assert_eq!(running.len(), 2);
    let pending = drivers
        .items
        .iter()
        .find(|p| phase(p) == "Pending")
        .expect("one driver pending");
    let cond = pending
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap();
    assert!(
        cond.iter()
            .any(|c| c.reason.as_deref() == Some("Unschedulable"))
    );
    let execs = pods
        .list(&ListParams::default().labels("spark-role=executor"))
        .await
        .unwrap();
    assert!(
        execs
            .items
            .iter()
            .all(|p| phase(p) == "Pending" && node_of(p).is_none())
    );
}

#[tokio::test]
async fn webhook_fields_and_dynamic_allocation() {
    let cfg = fast(
        SimConfig::default()
            .with_pool(PoolConfig::new("general", 2, "8", "32Gi"))
            .with_pool(PoolConfig::new("spot", 2, "8", "32Gi").taint("spot", "true", "NoSchedule"))
            .with_priority_class("spark-high", 1000, false),
    );
    let sim = start(cfg);
    let client = client(&sim);
    let apps = spark_api(&client, "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut app = spark_app("da", json!({"kube-sim.dev/runtime": "1h"}), 1);
    app.metadata.labels = Some([("team".to_string(), "a".to_string())].into());
    app.data["spec"]["type"] = json!("Python");
    app.data["spec"]["mainApplicationFile"] =
        json!("local:///opt/spark/examples/src/main/python/pi.py");
    app.data["spec"]["driver"]["priorityClassName"] = json!("spark-high");
    app.data["spec"]["driver"]["annotations"] = json!({"note": "x"});
    app.data["spec"]["executor"]["nodeSelector"] = json!({"pool": "spot"});
    app.data["spec"]["executor"]["tolerations"] =
        json!([{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]);
    app.data["spec"]["executor"]["memory"] = json!("4g");
    app.data["spec"]["dynamicAllocation"] =
        json!({"enabled": true, "initialExecutors": 2, "minExecutors": 3, "maxExecutors": 10});
    apps.create(&PostParams::default(), &app).await.unwrap();
    let driver = wait_for(
        &pods,
        "da-driver",
        "Running",
        pod_is(|p| phase(p) == "Running"),
    )
    .await;
    let spec = driver.spec.unwrap();
    assert_eq!(spec.priority, Some(1000));
    assert_eq!(driver.metadata.annotations.unwrap()["note"], "x");
    assert_eq!(driver.metadata.labels.unwrap()["team"], "a");
    let execs = eventually("3 executors running on spot", async || {
        let l = pods
            .list(&ListParams::default().labels("spark-role=executor"))
            .await
            .unwrap();
        (l.items.len() == 3 && l.items.iter().all(|p| phase(p) == "Running")).then_some(l.items)
    })
    .await;
    for e in execs {
        assert!(node_of(&e).unwrap().starts_with("spot-"));
        let mem = &e.spec.unwrap().containers[0]
            .resources
            .clone()
            .unwrap()
            .requests
            .unwrap()["memory"]
            .0;
        assert_eq!(mem, "5734Mi", "4g + 0.4 overhead for Python");
    }
}

#[tokio::test]
async fn crd_schema_validation_and_pruning() {
    let sim = start(cfg());
    let apps = spark_api(&client(&sim), "default");
    let mut bad = spark_app("bad-app", json!({}), 1);
    bad.data["spec"]["type"] = json!("Go");
    bad.data["spec"]["driver"]["cores"] = json!(0);
    let e = api_error(apps.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message
            .starts_with("SparkApplication.sparkoperator.k8s.io \"bad-app\" is invalid: ["),
        "{}",
        e.message
    );
    let causes = e.details.unwrap().causes;
    assert!(causes.iter().any(|c| c.field == "spec.type" && c.reason == "FieldValueNotSupported"
        && c.message == "Unsupported value: \"Go\": supported values: \"Java\", \"Python\", \"Scala\", \"R\""));
    assert!(
        causes
            .iter()
            .any(|c| c.field == "spec.driver.cores" && c.reason == "FieldValueInvalid")
    );

    let mut extra = spark_app("extra", json!({}), 1);
    extra.data["spec"]["unknownField"] = json!(true);
    let strict = PostParams {
        field_manager: None,
        dry_run: false,
    };
    let out = apps.create(&strict, &extra).await.unwrap();
    assert!(out.data["spec"].get("unknownField").is_none(), "pruned");
    let e = apps
        .create(&PostParams::default(), &{
            let mut x = extra.clone();
            x.metadata.name = Some("extra2".into());
            x
        })
        .await;
    assert!(e.is_ok());
    // with fieldValidation=Strict the same object is a 400
    let req = http::Request::builder()
        .method("POST")
        .uri("/apis/sparkoperator.k8s.io/v1beta2/namespaces/default/sparkapplications?fieldValidation=Strict")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&{
            let mut x = extra.clone();
            x.metadata.name = Some("extra3".into());
            x
        }).unwrap())
        .unwrap();
    let client = client(&sim);
    let e = api_error(client.request::<Value>(req).await.unwrap_err());
    assert_eq!(e.code, 400);
    assert_eq!(
        e.message,
        "SparkApplication in version \"v1beta2\" cannot be handled as a SparkApplication: strict decoding error: unknown field \"spec.unknownField\""
    );
}
