//! The web console in a real browser: `orchestrator run` (the real binary) on kube-sim, a fresh
//! PostgreSQL database and a unique RabbitMQ prefix, seeded over the API and AMQP with jobs
//! that run, jobs that wait on a one-node cluster, dead letters (a job no node can hold, an
//! invalid message whose body is hostile HTML), a job whose arguments are hostile HTML, and a
//! schedule. Then `node --test tests/console/console.test.mjs` drives Debian's chromium
//! (playwright-core) through every view and checks what it shows against the API.
//!
//! Screenshots of each view at laptop and phone sizes go to the test's temporary directory, or
//! to `$CONSOLE_SCREENSHOTS` when set (the README's come from
//! `CONSOLE_SCREENSHOTS=docs/console cargo nextest run -p orchestrator --test console`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Timelike;
use jobs::{Catalog, CatalogConfig, Priority};
use kube_sim::Simulator;
use queues::{Outgoing, Publisher, Topology, TopologyConfig};
use serde_json::{Value, json};
use test_support::eventually;
use test_support::pg::TestDb;

const ADMIN: &str = "console-admin-token-0123456789";
const READER: &str = "console-reader-token-0123456789";
const TEAM_A: &str = "console-team-a-token-0123456789";

/// What the browser may execute if escaping failed; the script checks it never ran.
const HOSTILE: &str =
    "<img src=x onerror=\"window.__xss='img'\"><script>window.__xss='script'</script>";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(ADMIN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn job(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "name": name,
        "namespace": namespace,
        "type": "Scala",
        "mainClass": "org.apache.spark.examples.SparkPi",
        "mainApplicationFile": "local:///opt/spark/examples/jars/spark-examples_2.12-3.5.3.jar",
        "arguments": ["1000"],
        "driver": { "nodeType": "small" },
        "executor": { "nodeType": "small", "instances": 1 },
        "annotations": { "kube-sim.dev/runtime": "2h" },
        "tags": { "team": namespace }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_what_the_api_has_in_a_real_browser() {
    let root = repo();
    let script = root.join("tests/console/console.test.mjs");
    assert!(
        root.join("tests/console/node_modules/playwright-core")
            .is_dir(),
        "playwright-core is not installed in tests/console: run scripts/services.sh (npm ci)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is missing: run scripts/services.sh (apt-get install chromium)"
    );

    // One node of 4 cores: two jobs (driver + one executor of 1 core each) run, the rest wait.
    let sim = Simulator::start(
        e2e::world::default_cluster(1).with_quota(
            "team-a",
            "compute",
            &[("requests.cpu", "12"), ("requests.memory", "48Gi")],
        ),
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let db = TestDb::new(&queues::store::MIGRATOR).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubeconfig"), sim.kubeconfig_yaml()).unwrap();
    let prefix = test_support::unique("console");
    let config = format!(
        "{catalog}\n[amqp]\nprefix = \"{prefix}\"\n[database]\nurl = \"{url}\"\nmax_connections = 4\n\
         [http]\nlisten = \"127.0.0.1:0\"\n[leader]\nenabled = false\n\
         [submitter]\ninterval = \"200ms\"\n[cron]\ninterval = \"500ms\"\n[shutdown]\ntimeout = \"10s\"\n\
         [[auth.tokens]]\nname = \"ops\"\ntoken = \"{ADMIN}\"\nroles = [\"admin\"]\nnamespaces = [\"*\"]\n\
         [[auth.tokens]]\nname = \"dashboard-viewer\"\ntoken = \"{READER}\"\nroles = [\"read\"]\nnamespaces = [\"*\"]\n\
         [[auth.tokens]]\nname = \"team-a-ci\"\ntoken = \"{TEAM_A}\"\nroles = [\"submit\"]\nnamespaces = [\"team-a\"]\n",
        catalog = e2e::world::DEFAULT_CATALOG,
        url = test_support::pg::url(&db.name),
    );
    std::fs::write(dir.path().join("orchestrator.toml"), config).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .arg("--config")
        .arg(dir.path().join("orchestrator.toml"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(dir.path().join("kubeconfig"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("orchestrator listening on ")
        .unwrap_or_else(|| panic!("the daemon did not start: {line:?}"))
        .to_owned();
    let daemon = Daemon(child);
    let api = Api {
        base: base.clone(),
        http: reqwest::Client::new(),
    };

    // Seed: four team-a jobs and two team-b ones (one high), one with hostile arguments,
    // one that no node can hold, an invalid message, a schedule in another time zone.
    let mut ids = Vec::new();
    for (ns, name) in [
        ("team-a", "etl-orders"),
        ("team-a", "etl-customers"),
        ("team-a", "etl-payments"),
        ("team-a", "etl-refunds"),
        ("team-b", "report-daily"),
    ] {
        ids.push(api.post("/v1/jobs", job(ns, name)).await["id"].clone());
    }
    let mut urgent = job("team-b", "report-urgent");
    urgent["priority"] = json!("high");
    api.post("/v1/jobs", urgent).await;
    let mut hostile = job("team-b", "xss-probe");
    hostile["arguments"] = json!([HOSTILE, "</pre><b>bold?</b>"]);
    let xss_job = api.post("/v1/jobs", hostile).await["id"].clone();
    let mut huge = job("team-a", "too-big-for-any-node");
    huge["executor"] = json!({ "cores": 64, "memory": "8g", "instances": 1 });
    let never = api.post("/v1/jobs", huge).await["id"].clone();
    let catalog = Arc::new(
        Catalog::new(toml::from_str::<CatalogConfig>(e2e::world::DEFAULT_CATALOG).unwrap())
            .unwrap(),
    );
    let topology = Topology::new(TopologyConfig::new(prefix.clone()), &catalog).unwrap();
    let connection = queues::amqp::connect(test_support::AMQP_URL, "console-test")
        .await
        .unwrap();
    let publisher = Publisher::new(&connection, &topology).await.unwrap();
    let invalid_body = format!(
        "{{\"apiVersion\": \"v1\", \"name\": \"{}\"",
        HOSTILE.replace('"', "\\\"")
    );
    publisher
        .publish(&Outgoing::raw(
            "team-b",
            Priority::Normal,
            invalid_body.clone(),
        ))
        .await
        .unwrap();
    // Fires at least ten hours from now (Paris is UTC+1 or +2), so never during the test.
    let hour = (chrono::Utc::now().hour() + 12) % 24;
    let mut template = job("team-a", "nightly-etl");
    template.as_object_mut().unwrap().remove("id");
    api.post(
        "/v1/schedules",
        json!({
            "name": "nightly-etl",
            "cron": format!("30 {hour} * * *"),
            "timeZone": "Europe/Paris",
            "jobTemplate": template,
        }),
    )
    .await;

    // Settled: two applications running, jobs waiting for capacity, two dead letters.
    eventually("the seed settles", Duration::from_secs(90), || async {
        let jobs = api.get("/v1/jobs?limit=100").await;
        let items = jobs["items"].as_array().unwrap();
        let count = |s: &str| items.iter().filter(|j| j["state"] == s).count();
        let dead = api.get("/v1/dlq").await["items"].as_array().unwrap().len();
        let cluster = api.get("/v1/cluster").await;
        let pods = cluster["pools"][0]["requested"]["pods"]
            .as_u64()
            .unwrap_or(0);
        (count("running") == 2 && count("waiting") >= 4 && dead == 2 && pods == 4).then_some(())
    })
    .await;

    let shots = std::env::var_os("CONSOLE_SCREENSHOTS").map_or_else(
        || dir.path().join("screenshots"),
        |d| {
            let p = PathBuf::from(d);
            if p.is_absolute() { p } else { root.join(p) }
        },
    );
    std::fs::create_dir_all(&shots).unwrap();
    let seed = json!({
        "jobs": ids,
        "xssJob": xss_job,
        "neverFits": never,
        "invalidBody": invalid_body,
        "scheduleCron": format!("30 {hour} * * *"),
        "scheduleTime": format!("{hour:02}:30"),
    });
    let output = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "--test-concurrency=1"])
        .arg(&script)
        .current_dir(root.join("tests/console"))
        .env("CONSOLE_URL", &base)
        .env("CONSOLE_ADMIN_TOKEN", ADMIN)
        .env("CONSOLE_READ_TOKEN", READER)
        .env("CONSOLE_TEAM_A_TOKEN", TEAM_A)
        .env("CONSOLE_SEED", seed.to_string())
        .env("CONSOLE_SHOTS", &shots)
        .kill_on_drop(true)
        .output()
        .await
        .expect("cannot run node (scripts/services.sh installs nodejs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");

    drop(daemon);
    let channel = connection.create_channel().await.unwrap();
    let _ = topology.delete(&channel).await;
    let _ = connection.close(200, "done".into()).await;
    db.drop_database().await;
    drop(sim);

    assert!(
        output.status.success(),
        "the browser tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("fail 0"),
        "the browser tests did not report: {stdout}"
    );
    for view in ["queues", "jobs", "job", "dlq", "schedules", "cluster"] {
        for size in ["laptop", "phone"] {
            let png = shots.join(format!("{view}-{size}.png"));
            let bytes = std::fs::read(&png).unwrap_or_default();
            assert!(
                bytes.starts_with(b"\x89PNG"),
                "no screenshot {}",
                png.display()
            );
        }
    }
}
