//! `orchestrator jobs list|show|cancel|watch`: follow jobs through the API.

use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, encode, query};
use super::output::{Table, block, field, next_page, text};
use super::watch;

/// Arguments of `jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JobsCommand,
    /// API, token, output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only this state (queued, waiting, submitted, running, succeeded, failed, retrying,
        /// dead, cancelled).
        #[arg(long)]
        state: Option<String>,
        /// Only this priority (high, normal).
        #[arg(long)]
        priority: Option<String>,
        /// Page size (1–1000).
        #[arg(long)]
        limit: Option<u32>,
        /// The cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// A job's state, reason, queue position and history.
    Show {
        /// Job id.
        id: String,
    },
    /// Cancel a job that has not finished.
    Cancel {
        /// Job id.
        id: String,
    },
    /// Follow a job until it ends: a line per change (state, why it waits, driver, executors
    /// running of required). Exit 0 when it succeeded, 1 when it failed, died or was cancelled.
    Watch {
        /// Job id.
        id: String,
        #[command(flatten)]
        every: Every,
    },
}

/// How often `watch` and `enqueue --wait` ask the API.
#[derive(Debug, Clone, Copy, Args)]
pub struct Every {
    /// Pause between polls (`2s`, `500ms`, `1m`).
    #[arg(long = "every", default_value = "2s", value_parser = poll_interval)]
    pub every: Duration,
}

/// A humantime duration from 100 ms to 10 min: faster only loads the API, slower is not
/// watching.
fn poll_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 2s, 500ms, 1m)"))?;
    if (Duration::from_millis(100)..=Duration::from_secs(600)).contains(&d) {
        Ok(d)
    } else {
        Err("must be between 100ms and 10m".into())
    }
}

/// Runs the command.
pub fn run(args: &JobsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let (call, render): (Call, client::Render) = match &args.command {
        JobsCommand::Watch { id, every } => {
            return watch::follow(&args.client, id, every.every, out, err);
        }
        JobsCommand::List {
            namespace,
            state,
            priority,
            limit,
            cursor,
        } => (
            Call::get(format!(
                "/v1/jobs{}",
                query(&[
                    ("namespace", namespace.clone()),
                    ("state", state.clone()),
                    ("priority", priority.clone()),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor.clone()),
                ])
            )),
            render_list,
        ),
        JobsCommand::Show { id } => (Call::get(format!("/v1/jobs/{}", encode(id))), render_show),
        JobsCommand::Cancel { id } => (
            Call::post(format!("/v1/jobs/{}/cancel", encode(id)), None),
            render_cancel,
        ),
    };
    client::run(&args.client, call, render, out, err)
}

fn render_list(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        "ID",
        "NAMESPACE",
        "PRIORITY",
        "STATE",
        "REASON",
        "ATTEMPT",
        "ENQUEUED",
        "NAME",
    ]);
    for j in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.row(vec![
            field(j, "id"),
            field(j, "namespace"),
            field(j, "priority"),
            field(j, "state"),
            field(j, "stateReason"),
            field(j, "attempt"),
            field(j, "enqueuedAt"),
            field(j, "name"),
        ]);
    }
    t.write(out)?;
    next_page(out, v)
}

fn render_show(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let waiting = v.get("waiting").filter(|w| !w.is_null()).map_or_else(
        || "-".to_owned(),
        |w| format!("{}: {}", field(w, "code"), field(w, "message")),
    );
    block(
        out,
        &[
            ("id:", field(v, "id")),
            ("name:", field(v, "name")),
            ("namespace:", field(v, "namespace")),
            ("priority:", field(v, "priority")),
            ("state:", field(v, "state")),
            ("reason:", field(v, "reason")),
            ("message:", field(v, "message")),
            (
                "attempt:",
                format!("{} of {}", field(v, "attempt"), field(v, "maxAttempts")),
            ),
            ("queue position:", field(v, "queuePosition")),
            ("waiting:", waiting),
            ("estimated start:", field(v, "estimatedStartAt")),
            ("spark application:", field(v, "sparkApplication")),
            ("source:", field(v, "source")),
            ("enqueued:", field(v, "enqueuedAt")),
            ("updated:", field(v, "updatedAt")),
            ("finished:", field(v, "finishedAt")),
        ],
    )?;
    writeln!(out, "history:")?;
    let mut t = Table::new(&["AT", "FROM", "TO", "ATTEMPT", "REASON", "MESSAGE"]);
    for h in v
        .get("history")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.row(vec![
            field(h, "at"),
            field(h, "from"),
            field(h, "to"),
            field(h, "attempt"),
            field(h, "reason"),
            field(h, "message"),
        ]);
    }
    t.write(out)
}

fn render_cancel(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "job {}: {} (was {})",
        field(v, "id"),
        text(v.get("message").unwrap_or(&Value::Null)),
        field(v, "previousState")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_intervals_are_durations_within_bounds() {
        for (text, ok) in [
            ("2s", Some(Duration::from_secs(2))),
            ("100ms", Some(Duration::from_millis(100))),
            ("10m", Some(Duration::from_secs(600))),
            ("99ms", None),
            ("11m", None),
            ("0s", None),
            ("2", None),
            ("-1s", None),
            ("", None),
            ("1e9999s", None),
        ] {
            assert_eq!(poll_interval(text).ok(), ok, "{text:?}");
        }
    }

    #[test]
    fn show_prints_the_estimated_start_of_a_waiting_job() {
        let mut out = Vec::new();
        let v = serde_json::json!({"state": "waiting", "estimatedStartAt": "2026-12-05T09:00:00Z"});
        render_show(&v, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.lines()
                .any(|l| l.starts_with("estimated start:") && l.ends_with("2026-12-05T09:00:00Z")),
            "{text}"
        );
    }
}
