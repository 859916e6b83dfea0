//! The README's first command, run non-interactively: `DEMO_EXIT=1 scripts/demo` builds,
//! starts kube-sim and the daemon, enqueues the samples and a schedule, and must end with
//! every sample where it belongs (the never-fitting one dead-lettered with its reason).

#![allow(clippy::unwrap_used, reason = "test code")]

use std::process::Command;

#[test]
fn the_demo_runs_to_the_expected_outcome() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(format!("{root}/scripts/demo"))
        .current_dir(root)
        .env("DEMO_EXIT", "1")
        .env("DEMO_TIMEOUT", "600")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
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
