//! `orchestrator jobs watch ID` and `enqueue --wait`: follow one job until it ends, printing
//! a line each time what a person would want to know changes — state, why it waits, its
//! queue position, the attempt, the driver and how many executors run of those it needs.
//!
//! It polls `GET /v1/jobs/{id}` (the API has no push channel, and a poll every few seconds is
//! nothing next to what the console does). The exit code says how the job ended, like
//! `kubectl wait`: 0 succeeded; 1 failed, dead or cancelled (or the API refused the request,
//! e.g. an unknown id); 2 the API stayed unreachable or kept answering 5xx
//! ([`MAX_FAILURES`] polls in a row, with growing pauses).

use std::io::Write;
use std::time::Duration;

use jobs::JobState;
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, OutputFormat, Reply, encode};
use super::output::{clean, field};

/// Transport errors or 5xx answers in a row before giving up.
pub const MAX_FAILURES: u32 = 10;

/// Follows job `id` until it ends; `every` is the pause between polls.
pub fn follow(
    args: &ClientArgs,
    id: &str,
    every: Duration,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let path = format!("/v1/jobs/{}", encode(id));
    let mut last = String::new();
    let mut failures = 0u32;
    loop {
        match client::send(args, Call::get(path.clone())) {
            Ok(reply) if (200..300).contains(&reply.status) => {
                failures = 0;
                let state = serde_json::from_value::<JobState>(reply.body["state"].clone()).ok();
                let line = summary(&reply.body);
                if line != last {
                    let shown = match args.output {
                        OutputFormat::Table => writeln!(out, "{}  {line}", clock()),
                        OutputFormat::Json => writeln!(out, "{}", compact(&reply.body)),
                    };
                    if shown.and_then(|()| out.flush()).is_err() {
                        return Exit::Usage;
                    }
                    last = line;
                }
                if let Some(state) = state.filter(|s| s.is_finished()) {
                    return if state == JobState::Succeeded {
                        Exit::Success
                    } else {
                        Exit::Refused
                    };
                }
            }
            Ok(reply) if reply.status < 500 => {
                return client::report(&reply, args.output, |_, _| Ok(()), out, err);
            }
            outcome => {
                failures += 1;
                let why = match &outcome {
                    Err(message) => message.clone(),
                    Ok(Reply { status, .. }) => format!("the API answered HTTP {status}"),
                };
                if failures >= MAX_FAILURES {
                    let _ = writeln!(
                        err,
                        "error: {why}; gave up after {failures} attempts in a row"
                    );
                    return Exit::Usage;
                }
                let _ = writeln!(err, "warning: {why}; retrying");
            }
        }
        std::thread::sleep(pause(every, failures));
    }
}

/// The poll interval, doubled per consecutive failure up to 8× (and at most a minute).
fn pause(every: Duration, failures: u32) -> Duration {
    (every * 2u32.pow(failures.min(3))).min(Duration::from_secs(60).max(every))
}

fn clock() -> String {
    chrono::Utc::now().format("%H:%M:%SZ").to_string()
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One line of what matters in a job view, without the time (so a change is a new line).
pub fn summary(v: &Value) -> String {
    let mut parts = vec![field(v, "state")];
    if let Some(reason) = v.get("reason").and_then(Value::as_str) {
        parts.push(format!("({})", clean(reason)));
    }
    parts.push(format!(
        "attempt {}/{}",
        field(v, "attempt"),
        field(v, "maxAttempts")
    ));
    if let Some(p) = v.get("queuePosition").and_then(Value::as_u64) {
        parts.push(format!("position {p}"));
    }
    if let Some(w) = v.get("waiting").filter(|w| w.is_object()) {
        parts.push(format!(
            "waiting: {}: {}",
            field(w, "code"),
            field(w, "message")
        ));
    }
    if let Some(app) = v.get("sparkApplication").and_then(Value::as_str) {
        parts.push(format!("app {}", clean(app)));
    }
    if let Some(p) = v.get("pods").filter(|p| p.is_object()) {
        let driver = p
            .get("driver")
            .and_then(Value::as_str)
            .unwrap_or("not created");
        parts.push(format!(
            "driver {}, executors {}/{} running",
            clean(driver),
            field(p, "executorsRunning"),
            field(p, "executorsRequired")
        ));
    }
    if v.get("state").and_then(Value::as_str).is_some_and(|s| {
        serde_json::from_value::<JobState>(Value::String(s.to_owned()))
            .is_ok_and(JobState::is_finished)
    }) && let Some(m) = v.get("message").and_then(Value::as_str)
    {
        parts.push(format!("— {}", clean(m)));
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_job_view_becomes_one_line_of_what_matters() {
        let cases = [
            (
                json!({"state": "queued", "attempt": 0, "maxAttempts": 3, "queuePosition": 4}),
                "queued  attempt 0/3  position 4",
            ),
            (
                json!({"state": "waiting", "attempt": 0, "maxAttempts": 3, "queuePosition": 1,
                    "waiting": {"code": "no-capacity", "message": "no node fits\u{1b}[2J the executor"}}),
                "waiting  attempt 0/3  position 1  waiting: no-capacity: no node fits?[2J the executor",
            ),
            (
                json!({"state": "running", "attempt": 1, "maxAttempts": 3, "sparkApplication": "etl-1",
                    "pods": {"driver": "running", "executorsRunning": 2, "executorsRequired": 3}}),
                "running  attempt 1/3  app etl-1  driver running, executors 2/3 running",
            ),
            (
                json!({"state": "submitted", "attempt": 1, "maxAttempts": 3, "sparkApplication": "etl-1",
                    "pods": {"driver": null, "executorsRunning": 0, "executorsRequired": 3}}),
                "submitted  attempt 1/3  app etl-1  driver not created, executors 0/3 running",
            ),
            (
                json!({"state": "failed", "reason": "app-failed", "attempt": 3, "maxAttempts": 3,
                    "message": "driver exited 1"}),
                "failed  (app-failed)  attempt 3/3  — driver exited 1",
            ),
            (
                json!({"state": "running", "attempt": 1, "maxAttempts": 1, "message": "not shown while running"}),
                "running  attempt 1/1",
            ),
        ];
        for (view, line) in cases {
            assert_eq!(summary(&view), line);
        }
    }

    #[test]
    fn failures_lengthen_the_pause_within_bounds() {
        let s = Duration::from_secs;
        for (every, failures, pause_for) in [
            (s(2), 0, s(2)),
            (s(2), 1, s(4)),
            (s(2), 3, s(16)),
            (s(2), 9, s(16)),
            (s(30), 3, s(60)),
            (s(90), 5, s(90)),
        ] {
            assert_eq!(
                pause(every, failures),
                pause_for,
                "{every:?} after {failures}"
            );
        }
    }
}
