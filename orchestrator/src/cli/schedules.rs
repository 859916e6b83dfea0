//! `orchestrator schedules create|list|show|pause|resume|delete`: cron schedules through the
//! API.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, Payload, encode, query};
use super::output::{Table, block, field};

/// Arguments of `schedules`.
#[derive(Debug, Args)]
pub struct SchedulesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SchedulesCommand,
    /// API, token, output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `schedules` subcommands.
#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Create a schedule from a file (JSON: name, cron, timeZone, jobTemplate, policies).
    Create {
        /// Schedule file, or `-` for standard input.
        file: String,
    },
    /// List schedules with their next fire.
    List {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// A schedule, its next fires and its recent fires.
    Show {
        /// Schedule name.
        name: String,
        /// How many next fire times (0–100).
        #[arg(long)]
        fires: Option<u32>,
    },
    /// Suspend a schedule.
    Pause {
        /// Schedule name.
        name: String,
    },
    /// Resume a suspended schedule (what fell due meanwhile is not caught up).
    Resume {
        /// Schedule name.
        name: String,
    },
    /// Delete a schedule (its jobs stay).
    Delete {
        /// Schedule name.
        name: String,
    },
}

/// Runs the command.
pub fn run(args: &SchedulesArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let (call, render): (Call, client::Render) = match &args.command {
        SchedulesCommand::Create { file } => {
            let body = match client::read_input(file) {
                Ok(b) => b,
                Err(message) => {
                    let _ = writeln!(err, "error: {message}");
                    return Exit::Usage;
                }
            };
            (
                Call::post("/v1/schedules".into(), Some(Payload::Raw(body))),
                render_show,
            )
        }
        SchedulesCommand::List { namespace } => (
            Call::get(format!(
                "/v1/schedules{}",
                query(&[
                    ("namespace", namespace.clone()),
                    ("fires", Some("1".into()))
                ])
            )),
            render_list,
        ),
        SchedulesCommand::Show { name, fires } => (
            Call::get(format!(
                "/v1/schedules/{}{}",
                encode(name),
                query(&[("fires", fires.map(|f| f.to_string()))])
            )),
            render_show,
        ),
        SchedulesCommand::Pause { name } => (
            Call::post(format!("/v1/schedules/{}/pause", encode(name)), None),
            render_show,
        ),
        SchedulesCommand::Resume { name } => (
            Call::post(format!("/v1/schedules/{}/resume", encode(name)), None),
            render_show,
        ),
        SchedulesCommand::Delete { name } => (
            Call {
                method: Method::DELETE,
                path: format!("/v1/schedules/{}", encode(name)),
                body: None,
            },
            |_, out| writeln!(out, "deleted"),
        ),
    };
    client::run(&args.client, call, render, out, err)
}

fn next_fire(s: &Value) -> String {
    s.get("nextFires")
        .and_then(Value::as_array)
        .and_then(|f| f.first())
        .map_or_else(|| "-".into(), |f| field(f, "at"))
}

fn render_list(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        "NAME",
        "NAMESPACE",
        "CRON",
        "ZONE",
        "SUSPENDED",
        "CONCURRENCY",
        "NEXT",
    ]);
    for s in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        t.row(vec![
            field(s, "name"),
            field(s, "namespace"),
            field(s, "cron"),
            field(s, "timeZone"),
            field(s, "suspended"),
            field(s, "concurrencyPolicy"),
            next_fire(s),
        ]);
    }
    t.write(out)
}

fn render_show(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    block(
        out,
        &[
            ("name:", field(v, "name")),
            ("id:", field(v, "id")),
            ("namespace:", field(v, "namespace")),
            ("cron:", field(v, "cron")),
            ("time zone:", field(v, "timeZone")),
            ("suspended:", field(v, "suspended")),
            ("missed-run policy:", field(v, "missedRunPolicy")),
            ("concurrency policy:", field(v, "concurrencyPolicy")),
            ("last scheduled:", field(v, "lastScheduledAt")),
            ("missed runs:", field(v, "missedTotal")),
        ],
    )?;
    writeln!(out, "next fires:")?;
    for f in v
        .get("nextFires")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        writeln!(out, "  {}  ({} local)", field(f, "at"), field(f, "nominal"))?;
    }
    if let Some(recent) = v.get("recentFires").and_then(Value::as_array) {
        writeln!(out, "recent fires:")?;
        for f in recent {
            writeln!(out, "  {}  job {}", field(f, "nominal"), field(f, "jobId"))?;
        }
    }
    Ok(())
}
