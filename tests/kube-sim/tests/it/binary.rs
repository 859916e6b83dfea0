//! The `kube-sim` binary: first stdout line, kubeconfig for kube and kubectl, exit codes.

use std::process::Stdio;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_kube-sim");

fn example() -> String {
    format!("{}/../../examples/cluster.toml", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn binary_prints_address_and_writes_a_kubeconfig_kube_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let kc = dir.path().join("kubeconfig");
    let mut child = Command::new(BIN)
        .args([
            "--config",
            &example(),
            "--listen",
            "127.0.0.1:0",
            "--kubeconfig-out",
        ])
        .arg(&kc)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(crate::support::WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let url = first
        .strip_prefix("kube-sim listening on ")
        .expect("first line names the address");
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(text.contains(url));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&text).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let nodes: Api<Node> = Api::all(client);
    let list = nodes
        .list(&ListParams::default().labels("pool=spot"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    let taint = &list.items[0]
        .spec
        .as_ref()
        .unwrap()
        .taints
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        (
            taint.key.as_str(),
            taint.value.as_deref(),
            taint.effect.as_str()
        ),
        ("spot", Some("true"), "NoSchedule")
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[[pools]]\nname = \"a\"\ncount = 1\ncpu = \"1\"\nmemory = \"1Gi\"\ntaints = [{ key = \"k\", effect = \"Sometimes\" }]\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pools[0].taints[0].effect"), "{err}");
    std::fs::write(&cfg, "[simulation]\nspeeed = 2.0\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("speeed"));
}
