//! `orchestrator jobs list|show|cancel`: follow jobs through the API.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, encode, query};
use super::output::{Table, block, field, next_page, text};

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
}

/// Runs the command.
pub fn run(args: &JobsArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let (call, render): (Call, client::Render) = match &args.command {
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
