//! The real programs live tests run: `kube-sim` and `orchestrator run`, built by cargo for this
//! workspace. Each runs as a child process that is killed when dropped; its output goes to a
//! log file in the test's temporary directory, quoted when something fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Paths of the workspace's binaries.
pub struct Binaries {
    /// `orchestrator`.
    pub orchestrator: PathBuf,
    /// `kube-sim`.
    pub kube_sim: PathBuf,
}

/// Builds (or finds up to date) `orchestrator` and `kube-sim` with the cargo running the
/// tests, in the same target directory and profile.
pub fn build_binaries() -> Binaries {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "--manifest-path",
        ])
        .arg(&manifest)
        .args([
            "-p",
            "orchestrator",
            "--bin",
            "orchestrator",
            "-p",
            "kube-sim",
            "--bin",
            "kube-sim",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo");
    assert!(
        out.status.success(),
        "cargo build of orchestrator and kube-sim failed"
    );
    let mut orchestrator = None;
    let mut kube_sim = None;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        match msg["target"]["name"].as_str() {
            Some("orchestrator") => orchestrator = Some(PathBuf::from(exe)),
            Some("kube-sim") => kube_sim = Some(PathBuf::from(exe)),
            _ => {}
        }
    }
    Binaries {
        orchestrator: orchestrator.expect("cargo built no orchestrator binary"),
        kube_sim: kube_sim.expect("cargo built no kube-sim binary"),
    }
}

/// A child process and where its output goes.
pub struct Proc {
    /// The process (killed on drop).
    pub child: Child,
    /// Its combined output.
    pub log: PathBuf,
}

impl Proc {
    /// The last lines of its output, for failure messages.
    pub fn tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, then waits up to `grace` before killing.
    pub async fn terminate(&mut self, grace: Duration) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return;
            }
        }
        let _ = self.child.kill().await;
    }
}

/// Copies a stream into the log file, handing each line to `watch` until it returns `Some`,
/// which is sent once on `found`.
pub fn drain<R, F>(stream: R, log: PathBuf, mut watch: F, found: Option<oneshot::Sender<String>>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    F: FnMut(&str) -> Option<String> + Send + 'static,
{
    tokio::spawn(async move {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .await
            .unwrap();
        let mut lines = BufReader::new(stream).lines();
        let mut found = found;
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = file.write_all(format!("{line}\n").as_bytes()).await;
            if found.is_some()
                && let Some(v) = watch(&line)
                && let Some(tx) = found.take()
            {
                let _ = tx.send(v);
            }
        }
    });
}

/// Starts `kube-sim --config <config> --listen 127.0.0.1:0 --kubeconfig-out <dir>/kubeconfig`
/// and waits for its first line, `kube-sim listening on http://ADDR`.
pub async fn kube_sim(bin: &Path, config: &Path, dir: &Path) -> (Proc, PathBuf) {
    let kubeconfig = dir.join("kubeconfig");
    let log = dir.join("kube-sim.log");
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start kube-sim");
    let (tx, rx) = oneshot::channel();
    drain(
        child.stdout.take().unwrap(),
        log.clone(),
        |l| l.strip_prefix("kube-sim listening on ").map(str::to_owned),
        Some(tx),
    );
    drain(child.stderr.take().unwrap(), log.clone(), |_| None, None);
    let proc = Proc { child, log };
    match tokio::time::timeout(Duration::from_secs(60), rx).await {
        Ok(Ok(_addr)) => (proc, kubeconfig),
        _ => panic!("kube-sim did not say where it listens:\n{}", proc.tail(30)),
    }
}

/// Starts `orchestrator run --config <config>` (JSON logs) and waits for its
/// `orchestrator started` line, returning the address its HTTP listener bound.
pub async fn orchestrator(bin: &Path, config: &Path, dir: &Path) -> (Proc, String) {
    let log = dir.join("orchestrator.log");
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("run")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start orchestrator");
    let (tx, rx) = oneshot::channel();
    drain(
        child.stderr.take().unwrap(),
        log.clone(),
        |l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["fields"]["message"] == "orchestrator started")
                .then(|| v["fields"]["http"].as_str().map(str::to_owned))
                .flatten()
        },
        Some(tx),
    );
    drain(child.stdout.take().unwrap(), log.clone(), |_| None, None);
    let proc = Proc { child, log };
    match tokio::time::timeout(Duration::from_secs(120), rx).await {
        Ok(Ok(addr)) => (proc, addr),
        _ => panic!("orchestrator did not start:\n{}", proc.tail(40)),
    }
}
