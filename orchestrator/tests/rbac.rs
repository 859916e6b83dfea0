//! Least privilege, both ways. The daemon runs as the ServiceAccount of `deploy/base`, with the
//! config `deploy/base` ships, on a kube-sim that enforces the RBAC rendered from `deploy/base`
//! (`kubectl kustomize`). A workload that takes every Kubernetes code path the daemon has —
//! leader election, the capacity watches, PriorityClasses, creating applications, adopting one
//! that already exists, preempting one for a high job (delete and a `Preempted` Event), deleting
//! a cancelled one — must succeed (a grant the manifests lack is a
//! 403 and the job never gets where it must), and every (verb, resource) the manifests grant
//! must have been used by it (a grant the code does not need fails the test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use jobs::{Catalog, JobId, JobState, parse_job};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube_sim::{AuthConfig, Simulator};
use orchestrator::config::Config;
use orchestrator::daemon::Daemon;
use serde_json::{Value, json};
use submitter::footprint::Footprint;
use submitter::kube_apps::SparkApplication;
use submitter::naming::{MANAGED_BY, MANAGED_BY_LABEL};
use submitter::spark_app::{EmitSettings, spark_application};
use test_support::{deploy, eventually};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// `deploy/base/orchestrator.toml` with this test's broker prefix, database and listener.
fn daemon_config(prefix: &str, db: &str) -> Config {
    let text = std::fs::read_to_string(root().join("deploy/base/orchestrator.toml")).unwrap();
    let mut doc: toml::Table = toml::from_str(&text).unwrap();
    let mut set = |section: &str, entries: Value| {
        let table: toml::Table = serde_json::from_value(entries).unwrap();
        doc.entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap()
            .extend(table);
    };
    set(
        "amqp",
        json!({"url": test_support::AMQP_URL, "prefix": prefix}),
    );
    set(
        "database",
        json!({"url": test_support::pg::url(db), "migrate_on_start": true}),
    );
    set("http", json!({"listen": "127.0.0.1:0"}));
    set("auth", json!({"disabled": true}));
    set(
        "submitter",
        json!({"interval": "200ms", "preemption": {"enabled": true, "min_runtime": "0s"}}),
    );
    Config::from_toml_str(
        &toml::to_string(&doc).unwrap(),
        "deploy/base/orchestrator.toml",
    )
    .unwrap()
}

fn job(name: &str, runtime: &str) -> Value {
    sized_job(name, "normal", 1, runtime)
}

fn sized_job(name: &str, priority: &str, executors: u32, runtime: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "id": JobId::generate().to_string(),
        "name": name,
        "namespace": "team-a",
        "priority": priority,
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples.jar",
        "executor": {"nodeType": "small", "instances": executors},
        "annotations": {"kube-sim.dev/runtime": runtime}
    })
}

/// The application the daemon would create for `job`'s first attempt, created beforehand (as
/// after a crash between create and record) and not yet in the daemon's watch (it lacks the
/// managed-by label the watch selects): the admission's create meets `AlreadyExists` and
/// adopts it, which takes a `get`. Returns its name.
async fn precreate(
    admin: &kube::Client,
    catalog: &Catalog,
    body: &Value,
    service_account: &str,
) -> String {
    let job = parse_job(&serde_json::to_vec(body).unwrap(), catalog).unwrap();
    let footprint = Footprint::of(&job, catalog).unwrap();
    let settings = EmitSettings {
        service_account: Some(service_account.to_owned()),
        time_to_live_seconds: None,
    };
    let mut app =
        SparkApplication::from_rendered(spark_application(&job, &footprint, 1, &settings)).unwrap();
    if let Some(labels) = app.metadata.labels.as_mut() {
        labels.remove(MANAGED_BY_LABEL);
    }
    Api::<SparkApplication>::namespaced(admin.clone(), &job.namespace)
        .create(&PostParams::default(), &app)
        .await
        .unwrap();
    app.metadata.name.unwrap()
}

async fn state(http: &reqwest::Client, base: &str, id: &str) -> Option<JobState> {
    let bytes = http
        .get(format!("{base}/v1/jobs/{id}"))
        .send()
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["state"].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_needs_every_grant_of_deploy_base_and_no_other() {
    let cluster = e2e::world::default_cluster(2)
        .with_auth(
            AuthConfig::new()
                .admin(deploy::ADMIN_TOKEN, "admin")
                .service_account(
                    deploy::DAEMON_TOKEN,
                    deploy::DAEMON_NAMESPACE,
                    deploy::DAEMON_NAME,
                ),
        )
        .with_manifest_yaml(deploy::rendered_base())
        .unwrap();
    let sim = Simulator::start(cluster, "127.0.0.1:0".parse().unwrap()).unwrap();
    let admin = sim.client().unwrap();
    let prefix = test_support::unique("rbac");
    let db = test_support::pg::create(test_support::pg::PORT).await;
    let config = daemon_config(&prefix, &db);
    let catalog = config.catalog.clone();
    let service_account = config.submitter.service_account.clone().unwrap();
    let daemon = Daemon::start(
        config,
        sim.client_as(deploy::DAEMON).unwrap(),
        format!("{prefix}-d"),
    )
    .await
    .unwrap();
    let base = format!("http://{}", daemon.http_addr());
    let http = reqwest::Client::new();

    let ok = job("rbac-runs", "2s");
    let adopted = job("rbac-adopted", "2s");
    let cancelled = job("rbac-cancelled", "1h");
    let adopted_app = precreate(&admin, &catalog, &adopted, &service_account).await;
    for body in [&ok, &adopted, &cancelled] {
        let status = http
            .post(format!("{base}/v1/jobs"))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 202, "{body}");
    }
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    eventually(
        "the existing application to be adopted",
        Duration::from_secs(60),
        || async {
            (state(&http, &base, &id(&adopted)).await == Some(JobState::Submitted)).then_some(())
        },
    )
    .await;
    // Now the watch may see it (as it would have, had it been created by the daemon).
    let apps = Api::<SparkApplication>::namespaced(admin.clone(), "team-a");
    apps.patch(
        &adopted_app,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {MANAGED_BY_LABEL: MANAGED_BY}}})),
    )
    .await
    .unwrap();
    eventually("the long job to run", Duration::from_secs(120), || async {
        (state(&http, &base, &id(&cancelled)).await == Some(JobState::Running)).then_some(())
    })
    .await;
    // Two nodes of four 1-cpu pods: the long job holds two, so a high job of seven pods must
    // preempt it (delete, Preempted event); it runs again afterwards.
    let urgent = sized_job("rbac-urgent", "high", 6, "2s");
    let status = http
        .post(format!("{base}/v1/jobs"))
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&urgent).unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 202);
    eventually(
        "the high job to preempt the long one and succeed",
        Duration::from_secs(120),
        || async {
            (state(&http, &base, &id(&urgent)).await == Some(JobState::Succeeded)).then_some(())
        },
    )
    .await;
    eventually(
        "the long job to run again",
        Duration::from_secs(120),
        || async {
            (state(&http, &base, &id(&cancelled)).await == Some(JobState::Running)).then_some(())
        },
    )
    .await;
    let cancel = http
        .post(format!("{base}/v1/jobs/{}/cancel", id(&cancelled)))
        .send()
        .await
        .unwrap();
    assert!(cancel.status().is_success(), "{}", cancel.status());
    let last_seen = std::sync::Mutex::new(String::new());
    let done = tokio::time::timeout(
        Duration::from_secs(110),
        eventually(
            "the cancelled job's application to be deleted and the others to succeed",
            Duration::from_secs(120),
            || async {
                let names: BTreeSet<String> = apps
                    .list(&Default::default())
                    .await
                    .ok()?
                    .items
                    .into_iter()
                    .filter_map(|a| a.metadata.name)
                    .collect();
                let gone = !names.iter().any(|n| n.starts_with("rbac-cancelled"));
                let ok_state = state(&http, &base, &id(&ok)).await;
                let adopted_state = state(&http, &base, &id(&adopted)).await;
                *last_seen.lock().unwrap() =
                    format!("applications {names:?}, ok {ok_state:?}, adopted {adopted_state:?}");
                (gone
                    && ok_state == Some(JobState::Succeeded)
                    && adopted_state == Some(JobState::Succeeded))
                .then_some(())
            },
        ),
    )
    .await;
    assert!(
        done.is_ok(),
        "the cancelled job's application was not deleted or the others did not succeed: {}",
        last_seen.lock().unwrap()
    );
    daemon.shutdown().await;

    let grants = sim.grants(deploy::DAEMON).unwrap();
    assert!(
        !grants.is_empty(),
        "deploy/base grants the daemon something"
    );
    let unused: Vec<String> = grants
        .iter()
        .filter(|(_, used)| !used)
        .map(|(g, _)| {
            format!(
                "{} {}/{} in {} ({})",
                g.verb,
                g.group,
                g.resource,
                g.namespace.as_deref().unwrap_or("the cluster"),
                g.via
            )
        })
        .collect();
    // team-b's RoleBinding is the same grant as team-a's in another namespace; the workload
    // ran in team-a, so only team-a's must have been used.
    let unused: Vec<&String> = unused
        .iter()
        .filter(|g| !g.contains(" in team-b "))
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/base grants what the daemon never used: {unused:#?}"
    );

    sim.shutdown();
    test_support::pg::drop_database(test_support::pg::PORT, &db).await;
    if let Ok(conn) = queues::amqp::connect(test_support::AMQP_URL, "rbac-cleanup").await
        && let Ok(ch) = conn.create_channel().await
    {
        let topology =
            queues::Topology::new(queues::TopologyConfig::new(prefix.clone()), &catalog).unwrap();
        let _ = topology.delete(&ch).await;
        let _ = conn.close(200, "cleanup".into()).await;
    }
}
