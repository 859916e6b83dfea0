//! The real kubectl against the simulator, with the generated kubeconfig. These tests
//! fail (never skip) when kubectl is not installed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use kube_sim::{PoolConfig, SimConfig, SimHandle};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::*;

/// The kubectl binary, or a clear failure.
pub fn kubectl_bin() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join("kubectl");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "kubectl is not installed (not found on PATH): these tests drive the real kubectl; install it (v1.32+), e.g. `apt-get install kubectl` or the upstream binary"
    )
}

pub struct Kubectl {
    pub sim: SimHandle,
    pub dir: tempfile::TempDir,
    bin: PathBuf,
}

impl Kubectl {
    pub fn new(cfg: SimConfig) -> Kubectl {
        let bin = kubectl_bin();
        let sim = start(cfg);
        let dir = tempfile::tempdir().unwrap();
        sim.write_kubeconfig(dir.path().join("kubeconfig")).unwrap();
        Kubectl { sim, dir, bin }
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .env("HOME", self.dir.path())
            .kill_on_drop(true);
        c
    }

    /// Run kubectl; panic with its stderr on failure.
    pub async fn run(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stderr}\n{stdout}"
        );
        stdout
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/spark-operator")
        .join(rel)
}

const POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hello\nspec:\n  containers:\n  - name: main\n    image: busybox:1.36\n    resources:\n      requests: {cpu: 500m, memory: 256Mi}\n";

#[tokio::test]
async fn kubectl_get_create_watch_delete() {
    let k = Kubectl::new(
        fast(SimConfig::default().with_pool(PoolConfig::new("general", 2, "4", "16Gi")))
            .with_speed(20.0),
    );
    let nodes = k.run(&["get", "nodes"]).await;
    assert!(
        nodes.contains("general-0000") && nodes.contains("Ready"),
        "{nodes}"
    );
    let nodes_json: serde_json::Value =
        serde_json::from_str(&k.run(&["get", "nodes", "-o", "json"]).await).unwrap();
    assert_eq!(nodes_json["items"].as_array().unwrap().len(), 2);

    // watch pods; the pod is created while every node is cordoned, so it is seen
    // Pending first, then scheduled and Running once the nodes are uncordoned
    for n in ["general-0000", "general-0001"] {
        k.sim.set_node_unschedulable(n, true).unwrap();
    }
    let mut watch = k
        .cmd(&["get", "pods", "-w", "-o", "wide"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let pod_file = k.write("pod.yaml", POD);
    let out = k.run(&["create", "-f", pod_file.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "pod/hello created");
    let mut seen = Vec::new();
    let mut next_matching = async |pred: &dyn Fn(&str) -> bool| {
        tokio::time::timeout(WAIT, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                seen.push(line.clone());
                if pred(&line) {
                    return;
                }
            }
            panic!("kubectl get -w ended early: {seen:?}")
        })
        .await
        .unwrap_or_else(|_| panic!("kubectl get pods -w did not show the expected line"));
    };
    next_matching(&|l: &str| {
        l.starts_with("hello") && l.contains("Pending") && l.contains("<none>")
    })
    .await;
    for n in ["general-0000", "general-0001"] {
        k.sim.set_node_unschedulable(n, false).unwrap();
    }
    next_matching(&|l: &str| {
        l.starts_with("hello") && l.contains("Running") && l.contains("general-")
    })
    .await;
    let _ = watch.kill().await;

    let spark = fixture("examples/spark-pi.yaml");
    let out = k.run(&["create", "-f", spark.to_str().unwrap()]).await;
    assert_eq!(
        out.trim(),
        "sparkapplication.sparkoperator.k8s.io/spark-pi created"
    );
    let apps = spark_api(&k.sim.client().unwrap(), "default");
    wait_app(&apps, "spark-pi", "COMPLETED").await;
    let table = k.run(&["get", "sparkapp"]).await;
    assert!(
        table.contains("spark-pi") && table.contains("COMPLETED"),
        "{table}"
    );
    let out = k.run(&["delete", "pod", "hello", "--wait=false"]).await;
    assert_eq!(out.trim(), "pod \"hello\" deleted");
    let out = k.run(&["delete", "-f", spark.to_str().unwrap()]).await;
    assert!(out.contains("deleted"), "{out}");
    // errors come back as the real messages
    let out = k.cmd(&["get", "pod", "nope"]).output().await.unwrap();
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): pods \"nope\" not found"
    );
    let _ = Duration::ZERO;
}
