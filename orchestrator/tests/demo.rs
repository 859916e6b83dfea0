//! The README's first command, run non-interactively: `DEMO_EXIT=1 scripts/demo`
//! starts kube-sim and the daemon, enqueues the samples and a schedule, and must end with
//! every sample where it belongs (the never-fitting one dead-lettered with its reason).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;
use std::process::{Command, Output};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Runs `scripts/demo` non-interactively (`DEMO_EXIT=1`) with `env`; its status, stdout and
/// stderr.
fn demo(env: &[(&str, &str)]) -> (Output, String, String) {
    let out = Command::new(format!("{ROOT}/scripts/demo"))
        .current_dir(ROOT)
        .env("DEMO_EXIT", "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn the_demo_runs_to_the_expected_outcome() {
    // The demo runs the binaries this test run built instead of building its own: its `cargo
    // build` (other features than the test build's) would replace `orchestrator` and `kube-sim`
    // in place while other tests spawn them, and a spawn in that window finds no file. kube-sim
    // is built beside it by its own binary tests (`--workspace`, as scripts/test runs).
    let bin = Path::new(env!("CARGO_BIN_EXE_orchestrator"))
        .parent()
        .unwrap();
    assert!(
        bin.join("kube-sim").exists(),
        "no kube-sim binary in {}: run the workspace's tests (scripts/test) or `cargo build -p kube-sim` first",
        bin.display()
    );
    let (out, stdout, stderr) =
        demo(&[("DEMO_BIN", bin.to_str().unwrap()), ("DEMO_TIMEOUT", "600")]);
    assert!(
        out.status.success(),
        "demo failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("demo outcome: ok"), "{stdout}");
    assert!(
        stdout.contains("the largest node in the cluster has"),
        "the never-fitting job is dead-lettered with its reason:\n{stdout}"
    );
    assert!(
        stdout.contains("scheduled-report"),
        "the schedule fired:\n{stdout}"
    );
    assert!(
        stdout.contains("invalid") || stderr.contains("invalid"),
        "the invalid job is refused with reasons:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_demo_bin_without_the_binaries_is_refused_before_anything_starts() {
    let (out, stdout, stderr) = demo(&[("DEMO_BIN", "/nonexistent/demo-bin")]);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("DEMO_BIN=/nonexistent/demo-bin has no orchestrator binary"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("building") && !stdout.contains("starting kube-sim"),
        "nothing is built or started:\n{stdout}"
    );
}
