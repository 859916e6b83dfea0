//! The API-client subcommands as users run them: the real binary against an in-process API
//! on a fresh database, in table and JSON output, with exit codes 0 (done), 1 (refused by the
//! API), 2 (usage or transport).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is how a test reports failure"
)]

#[path = "support/api.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jobs::{DeadReason, JobId, JobState};
use serde_json::{Value, json};
use support::{ADMIN, READ_A, SUBMIT_A, TestApi, job};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// Runs the binary with `args` (the API URL and token are given by the caller), off the
/// async runtime.
async fn cli(args: Vec<String>, stdin: Option<Vec<u8>>, env: Vec<(&'static str, String)>) -> Run {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        cmd.args(&args)
            .env_remove("ORCHESTRATOR_API_URL")
            .env_remove("ORCHESTRATOR_TOKEN")
            .env_remove("ORCHESTRATOR_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let input = stdin.unwrap_or_default();
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        Run {
            code: out.status.code().unwrap(),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

fn args(api: &TestApi, token: &str, rest: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rest.iter().map(|s| (*s).to_owned()).collect();
    v.extend([
        "--api".into(),
        api.url.clone(),
        "--token".into(),
        token.into(),
    ]);
    v
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_accepts_files_and_stdin_and_refuses_invalid_jobs_with_exit_1() {
    let api = TestApi::start().await;
    let spark_pi = example("jobs/spark-pi.json");
    let r = cli(
        args(&api, SUBMIT_A, &["enqueue", spark_pi.to_str().unwrap()]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("accepted: job "), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("(spark-pi in team-a/normal), state queued"),
        "{}",
        r.stdout
    );

    // From stdin, JSON output, token from the environment; the same id twice is a no-op.
    let mut j = job("team-a", "from-stdin");
    let id = JobId::generate().to_string();
    j["id"] = json!(id);
    let body = serde_json::to_vec(&j).unwrap();
    let env = vec![
        ("ORCHESTRATOR_API_URL", api.url.clone()),
        ("ORCHESTRATOR_TOKEN", SUBMIT_A.to_owned()),
    ];
    let r = cli(
        vec![
            "enqueue".into(),
            "-".into(),
            "--output".into(),
            "json".into(),
        ],
        Some(body.clone()),
        env.clone(),
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["id"], json!(id));
    assert_eq!(r.json()["duplicate"], false);
    let r = cli(vec!["enqueue".into(), "-".into()], Some(body), env).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("already accepted: job "),
        "{}",
        r.stdout
    );

    // Invalid: exit 1, one error line and the problems.
    let bad = example("invalid/many-mistakes.json");
    let r = cli(
        args(&api, SUBMIT_A, &["enqueue", bad.to_str().unwrap()]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let first = r.stderr.lines().next().unwrap();
    assert!(
        first.starts_with("error: the job is invalid (")
            && first.ends_with("(HTTP 400 invalid-job)"),
        "{first}"
    );
    assert!(
        r.stderr.contains("  $.name [invalid-name]: "),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().count() > 5, "every problem: {}", r.stderr);
    let r = cli(
        args(
            &api,
            SUBMIT_A,
            &["enqueue", bad.to_str().unwrap(), "--output", "json"],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert_eq!(r.json()["error"], "invalid-job");
    assert!(r.json()["problems"].as_array().unwrap().len() > 5);
    let not_json = example("invalid/not-json.txt");
    let r = cli(
        args(&api, SUBMIT_A, &["enqueue", not_json.to_str().unwrap()]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("[malformed-json]"), "{}", r.stderr);

    // Refused by auth: exit 1 with the API's sentence.
    let r = cli(
        args(&api, READ_A, &["enqueue", spark_pi.to_str().unwrap()]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(HTTP 403 forbidden)"), "{}", r.stderr);
    let r = cli(
        vec![
            "enqueue".into(),
            spark_pi.to_str().unwrap().into(),
            "--api".into(),
            api.url.clone(),
        ],
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(HTTP 401 unauthenticated)"),
        "{}",
        r.stderr
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_transport_errors_exit_2_with_one_line() {
    let api = TestApi::start().await;
    let spark_pi = example("jobs/spark-pi.json");
    let r = cli(
        args(&api, SUBMIT_A, &["enqueue", "/no/such/file.json"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with("error: cannot read /no/such/file.json"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    // Nothing listens on a port just released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let r = cli(
        vec!["jobs".into(), "list".into(), "--api".into(), dead.clone()],
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .starts_with(&format!("error: cannot reach the API at {dead}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
    let r = cli(
        vec![
            "jobs".into(),
            "list".into(),
            "--api".into(),
            "ftp://x".into(),
        ],
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    let r = cli(
        args(&api, ADMIN, &["jobs", "list", "--output", "yaml"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 2, "clap refuses the value");
    let r = cli(
        args(&api, ADMIN, &["dlq", "purge", "--id", "1", "--all"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 2);
    let r = cli(args(&api, ADMIN, &["jobs"]), None, vec![]).await;
    assert_eq!(r.code, 2);
    // The token never shows up in output.
    let r = cli(
        args(
            &api,
            "secret-token-that-is-wrong",
            &["enqueue", spark_pi.to_str().unwrap()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains("secret-token") && !r.stdout.contains("secret-token"));
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_show_and_cancel_in_table_and_json() {
    let api = TestApi::start().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let a = api
            .post("/v1/jobs", SUBMIT_A, &job("team-a", &format!("job-{i}")))
            .await;
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let r = cli(args(&api, READ_A, &["jobs", "list"]), None, vec![]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("NAMESPACE") && lines[0].contains("STATE"),
        "{}",
        r.stdout
    );
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert!(lines[1].starts_with(&ids[2]), "newest first: {}", r.stdout);
    // Columns are aligned: STATE starts at the same offset on every line.
    let col = lines[0].find("STATE").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[col..].starts_with("queued")),
        "{}",
        r.stdout
    );

    // Pagination through the CLI.
    let r = cli(
        args(
            &api,
            READ_A,
            &["jobs", "list", "--limit", "2", "--state", "queued"],
        ),
        None,
        vec![],
    )
    .await;
    let footer = r.stdout.lines().last().unwrap();
    let cursor = footer
        .strip_prefix("(more: --cursor ")
        .unwrap()
        .strip_suffix(')')
        .unwrap();
    let r = cli(
        args(
            &api,
            READ_A,
            &[
                "jobs", "list", "--limit", "2", "--cursor", cursor, "--output", "json",
            ],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0);
    assert_eq!(r.json()["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.json()["items"][0]["id"], json!(ids[0]));
    assert_eq!(r.json()["next"], Value::Null);
    let r = cli(
        args(&api, READ_A, &["jobs", "list", "--state", "finished"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);

    let r = cli(args(&api, READ_A, &["jobs", "show", &ids[1]]), None, vec![]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("state:") && r.stdout.contains("queued"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("queue position:") && l.ends_with(" 2")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("history:\nAT"), "{}", r.stdout);
    let r = cli(
        args(&api, READ_A, &["jobs", "show", &ids[1], "--output", "json"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.json()["queuePosition"], 2);

    let r = cli(
        args(&api, SUBMIT_A, &["jobs", "cancel", &ids[1]]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!("job {}: cancelled (was queued)\n", ids[1])
    );
    let r = cli(
        args(&api, SUBMIT_A, &["jobs", "cancel", &ids[1]]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(HTTP 409 conflict)"), "{}", r.stderr);
    let r = cli(
        args(
            &api,
            READ_A,
            &["jobs", "show", &JobId::generate().to_string()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("(HTTP 404 not-found)"));
    let r = cli(
        args(&api, READ_A, &["jobs", "show", "../../v1/dlq"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1, "the id is one path segment: {}", r.stderr);
    assert!(r.stderr.contains("invalid-path"), "{}", r.stderr);
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_show_requeue_and_purge() {
    let api = TestApi::start().await;
    let mut dead = Vec::new();
    for i in 0..2 {
        let a = api
            .post("/v1/jobs", SUBMIT_A, &job("team-a", &format!("doomed-{i}")))
            .await;
        let id: JobId = a.body["id"].as_str().unwrap().parse().unwrap();
        api.store
            .dead_letter(
                id,
                JobState::Queued,
                DeadReason::NeverFits,
                "no node\nfits\u{1b}[31m",
            )
            .await
            .unwrap();
        dead.push(id);
    }
    let r = cli(args(&api, READ_A, &["dlq", "list"]), None, vec![]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);
    assert!(r.stdout.contains("never-fits") && r.stdout.contains(&dead[0].to_string()));
    assert!(
        r.stdout.contains("no node?fits?[31m"),
        "control characters cleaned: {}",
        r.stdout
    );
    let r = cli(
        args(&api, READ_A, &["dlq", "list", "--output", "json"]),
        None,
        vec![],
    )
    .await;
    let record = r.json()["items"][0]["id"].as_i64().unwrap();
    let r = cli(
        args(&api, READ_A, &["dlq", "show", &record.to_string()]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("\"name\": \"doomed-0\""),
        "the body: {}",
        r.stdout
    );

    let r = cli(
        args(
            &api,
            READ_A,
            &["dlq", "requeue", "--id", &record.to_string()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1, "readers may not requeue");
    let r = cli(
        args(
            &api,
            ADMIN,
            &["dlq", "requeue", "--id", &record.to_string()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "requeued 1 jobs and 0 messages (0 skipped)\n");
    assert_eq!(
        api.store.job(dead[0]).await.unwrap().unwrap().state,
        JobState::Queued
    );
    let r = cli(args(&api, ADMIN, &["dlq", "requeue"]), None, vec![]).await;
    assert_eq!(r.code, 1, "no selector: {}", r.stderr);
    let r = cli(
        args(
            &api,
            ADMIN,
            &[
                "dlq",
                "purge",
                "--namespace",
                "team-a",
                "--reason",
                "never-fits",
                "--output",
                "json",
            ],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json(), json!({"purged": 1}));
    let r = cli(args(&api, ADMIN, &["dlq", "purge", "--all"]), None, vec![]).await;
    assert_eq!(
        r.stdout, "purged 1 dead letters\n",
        "the requeued record too"
    );
    api.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_create_list_show_pause_resume_delete() {
    let api = TestApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nightly.json");
    let mut template = job("team-a", "nightly-etl");
    template.as_object_mut().unwrap().remove("id");
    std::fs::write(&file, serde_json::to_vec(&json!({
        "name": "nightly", "cron": "0 3 * * *", "timeZone": "America/New_York", "jobTemplate": template
    })).unwrap()).unwrap();
    let r = cli(
        args(
            &api,
            ADMIN,
            &["schedules", "create", file.to_str().unwrap()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("America/New_York") && r.stdout.contains("next fires:"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.ends_with("T03:00:00 local)"))
            .count(),
        5,
        "{}",
        r.stdout
    );
    let r = cli(
        args(
            &api,
            ADMIN,
            &["schedules", "create", file.to_str().unwrap()],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1, "the name is taken");
    assert!(r.stderr.contains("(HTTP 409 conflict)"));
    let r = cli(
        args(&api, ADMIN, &["schedules", "create", "-"]),
        Some(br#"{"name": "x", "cron": "nope", "jobTemplate": {}}"#.to_vec()),
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("$.cron [invalid-value]"), "{}", r.stderr);

    let r = cli(args(&api, READ_A, &["schedules", "list"]), None, vec![]).await;
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("NEXT"),
        "{}",
        r.stdout
    );
    assert!(
        lines[1].starts_with("nightly")
            && lines[1].contains("0 3 * * *")
            && lines[1].contains("false"),
        "{}",
        r.stdout
    );

    let r = cli(
        args(&api, ADMIN, &["schedules", "pause", "nightly"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("suspended:") && l.ends_with("true")),
        "{}",
        r.stdout
    );
    let r = cli(
        args(
            &api,
            READ_A,
            &["schedules", "show", "nightly", "--output", "json"],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.json()["suspended"], true);
    assert_eq!(r.json()["nextFires"], json!([]));
    let r = cli(
        args(&api, ADMIN, &["schedules", "resume", "nightly"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 0);
    let r = cli(
        args(
            &api,
            READ_A,
            &[
                "schedules",
                "show",
                "nightly",
                "--fires",
                "2",
                "--output",
                "json",
            ],
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.json()["nextFires"].as_array().unwrap().len(), 2);
    let r = cli(
        args(&api, ADMIN, &["schedules", "delete", "nightly"]),
        None,
        vec![],
    )
    .await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "deleted\n"));
    let r = cli(
        args(&api, ADMIN, &["schedules", "delete", "nightly"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    let r = cli(
        args(&api, ADMIN, &["schedules", "show", "a name/with?odd&chars"]),
        None,
        vec![],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("(HTTP 404 not-found)"),
        "encoded as one segment: {}",
        r.stderr
    );
    api.finish().await;
}

/// Completion scripts come from the argument definitions: every subcommand and the new
/// flags are in them, bash's parses, and an unknown shell is a usage error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_scripts_cover_every_subcommand_and_bash_parses_its_own() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let r = cli(vec!["completions".into(), shell.into()], None, vec![]).await;
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        for word in [
            "validate",
            "run",
            "migrate",
            "enqueue",
            "jobs",
            "dlq",
            "schedules",
            "queues",
            "watch",
            "wait",
            "every",
        ] {
            assert!(r.stdout.contains(word), "{shell} script lacks {word}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("orchestrator.bash");
            std::fs::write(&script, &r.stdout).unwrap();
            let check = Command::new("bash")
                .arg("-n")
                .arg(&script)
                .output()
                .unwrap();
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            // Sourced, it registers the completion function for the command.
            let registered = Command::new("bash")
                .arg("-c")
                .arg(format!(
                    "source {} && complete -p orchestrator",
                    script.display()
                ))
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&registered.stdout).contains("orchestrator"),
                "{}",
                String::from_utf8_lossy(&registered.stderr)
            );
        }
    }
    for bad in [
        vec!["completions"],
        vec!["completions", "tcsh"],
        vec!["completions", "bash", "x"],
    ] {
        let r = cli(bad.iter().map(|s| (*s).to_owned()).collect(), None, vec![]).await;
        assert_eq!(r.code, 2, "{bad:?}");
        assert!(!r.stderr.is_empty(), "{bad:?}");
    }
}
