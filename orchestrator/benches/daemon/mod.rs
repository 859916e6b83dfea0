//! The real `orchestrator run` binary for benchmarks: started against a kube-sim kubeconfig
//! with a generated config, read through its `/metrics`, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub addr: String,
}

impl Daemon {
    /// Writes `config` beside `kubeconfig` (in `dir`) and starts the daemon, returning once it
    /// printed its listening address.
    pub fn start(dir: &Path, config: &str, kubeconfig: &str) -> Self {
        let config_path = dir.join("orchestrator.toml");
        std::fs::write(&config_path, config).unwrap();
        let kubeconfig_path = dir.join("kubeconfig");
        std::fs::write(&kubeconfig_path, kubeconfig).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .arg("--config")
            .arg(&config_path)
            .arg("run")
            .arg("--kubeconfig")
            .arg(&kubeconfig_path)
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("orchestrator listening on ")
            .unwrap_or_else(|| panic!("daemon did not start: {line:?}"))
            .to_owned();
        Self { child, addr }
    }

    /// The `/metrics` page.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.addr);
        tokio::task::spawn_blocking(move || {
            let out = Command::new("curl").args(["-s", &url]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .await
        .unwrap()
    }

    /// The sum of every series whose line starts with `name`.
    pub async fn metric(&self, name: &str) -> f64 {
        sum(&self.metrics().await, name)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of every series in `page` whose line starts with `name`.
pub fn sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Deletes the queues and exchanges of `prefix` the daemon declared.
pub async fn delete_topology(prefix: &str, catalog: &jobs::Catalog) {
    let connection = queues::amqp::connect(test_support::AMQP_URL, "bench-cleanup")
        .await
        .unwrap();
    let topology =
        queues::Topology::new(queues::TopologyConfig::new(prefix.to_owned()), catalog).unwrap();
    let _ = topology
        .delete(&connection.create_channel().await.unwrap())
        .await;
    let _ = connection.close(200, "done".into()).await;
}
