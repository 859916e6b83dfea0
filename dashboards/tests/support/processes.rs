//! Prometheus (the Debian package) for the live tests; `kube-sim` and the daemon come from
//! `test_support::procs`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use test_support::procs::{Proc, drain};
use tokio::process::Command;

use super::http::Http;

/// A port nobody listens on right now (Prometheus cannot bind port 0 and say which it got).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Prometheus on 127.0.0.1 with `config` and a data directory under `dir`, and waits
/// until `/-/ready` answers. Retries on another port if the chosen one was taken meanwhile.
pub async fn prometheus(config: &Path, dir: &Path) -> (Proc, String) {
    let http = Http::new();
    for attempt in 0..3 {
        let port = free_port();
        let log = dir.join(format!("prometheus-{attempt}.log"));
        let data = dir.join(format!("prometheus-data-{attempt}"));
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start prometheus ({e}); scripts/services.sh installs it (Debian package prometheus)")
            });
        drain(child.stdout.take().unwrap(), log.clone(), |_| None, None);
        drain(child.stderr.take().unwrap(), log.clone(), |_| None, None);
        let mut proc = Proc { child, log };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(_)) = proc.child.try_wait() {
                break;
            }
            if let Ok((200, _)) = http.get(&format!("{base}/-/ready")).await {
                return (proc, base);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!(
            "prometheus on port {port} did not become ready:\n{}",
            proc.tail(20)
        );
        let _ = proc.child.kill().await;
    }
    panic!("prometheus did not start in three attempts");
}
