//! `orchestrator validate` as users run it: the real binary, real files and stdin, exit codes
//! 0 (valid), 1 (refused, JSON errors on stdout), 2 (usage or config problems).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config() -> PathBuf {
    repo().join("examples/orchestrator.toml")
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(args)
        .env_remove("ORCHESTRATOR_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.unwrap_or_default().to_vec();
    // Write from a thread: the child may stop reading early (it reads at most limit + 1 bytes).
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn validate(job: &str, stdin: Option<&[u8]>) -> (i32, Value, String) {
    let config = config();
    let out = run(
        &["validate", "--config", config.to_str().unwrap(), job],
        stdin,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap(),
        json,
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no files in {dir}");
    v
}

#[test]
fn every_example_job_validates_and_is_normalised() {
    for path in files("examples/jobs") {
        let (code, job, stderr) = validate(path.to_str().unwrap(), None);
        assert_eq!(code, 0, "{}: {job} {stderr}", path.display());
        assert_eq!(job["apiVersion"], "v1");
        assert!(job["id"].as_str().is_some_and(|id| id.len() == 36), "{job}");
        assert!(
            job["image"].is_string() && job["sparkVersion"].is_string(),
            "defaults applied: {job}"
        );
        assert!(job["retry"]["maxAttempts"].is_u64(), "{job}");
    }
}

#[test]
fn a_given_id_is_kept() {
    let (code, job, _) = validate(
        repo()
            .join("examples/jobs/nightly-etl-high.json")
            .to_str()
            .unwrap(),
        None,
    );
    assert_eq!(code, 0);
    assert_eq!(job["id"], "0193f5a0-7c2e-7b7e-9a41-2f6d3c1e8b01");
    assert_eq!(job["priority"], "high");
}

#[test]
fn invalid_examples_are_refused_with_all_errors() {
    for path in files("examples/invalid") {
        let (code, out, _) = validate(path.to_str().unwrap(), None);
        assert_eq!(code, 1, "{}", path.display());
        assert_eq!(out["valid"], false);
        let errors = out["errors"].as_array().unwrap();
        assert!(!errors.is_empty());
        for e in errors {
            assert!(
                e["code"].is_string() && e["path"].is_string() && e["message"].is_string(),
                "{e}"
            );
        }
    }
    let (_, out, _) = validate(
        repo()
            .join("examples/invalid/many-mistakes.json")
            .to_str()
            .unwrap(),
        None,
    );
    assert!(
        out["errors"].as_array().unwrap().len() >= 10,
        "all problems at once: {out}"
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let body = std::fs::read(repo().join("examples/jobs/spark-pi.json")).unwrap();
    let (code, job, _) = validate("-", Some(&body));
    assert_eq!((code, job["name"].as_str()), (0, Some("spark-pi")));
}

#[test]
fn hostile_input_is_refused_never_crashes() {
    let huge = vec![b'{'; 10 * 1024 * 1024];
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "malformed-json"),
        (&[0xc3, 0x28, 0xff], "not-utf8"),
        (b"\x00\x00\x00", "malformed-json"),
        (huge.as_slice(), "too-large"),
        (nested.as_bytes(), "malformed-json"),
        (br#"{"apiVersion":"v1","apiVersion":"v2"}"#, "duplicate-key"),
        (b"\xef\xbb\xbf{}", "malformed-json"),
    ];
    for (bytes, code) in cases {
        let (exit, out, stderr) = validate("-", Some(bytes));
        assert_eq!(exit, 1, "{code}: {stderr}");
        assert_eq!(out["errors"][0]["code"], code, "{out}");
    }
}

#[test]
fn usage_and_config_errors_exit_2() {
    let cfg = config();
    let cfg = cfg.to_str().unwrap();
    for args in [
        vec!["validate"],
        vec!["validate", "--config", cfg],
        vec!["validate", "--config", cfg, "/no/such/job.json"],
        vec!["validate", "--config", "/no/such/config.toml", "-"],
        vec!["validate", "--bogus", "-"],
        vec!["frobnicate"],
        vec![],
    ] {
        let out = run(&args, None);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} explains itself on stderr");
    }
    assert_eq!(run(&["--help"], None).status.code(), Some(0));
}

#[test]
fn a_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[namespaces.team-a]\n[node_types.small]\ncpu = \"x\"\nmemory = \"4g\"\n",
    )
    .unwrap();
    let out = run(
        &["validate", "--config", path.to_str().unwrap(), "-"],
        Some(b"{}"),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("node_types.small.cpu"), "{stderr}");
}
