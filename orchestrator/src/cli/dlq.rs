//! `orchestrator dlq list|show|requeue|purge`: manage dead letters through the API.

use std::io::{self, Write};

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::Exit;
use super::client::{self, Call, ClientArgs, Payload, query};
use super::output::{Table, block, clean_multiline, field, next_page};

/// Arguments of `dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: DlqCommand,
    /// API, token, output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Which dead letters a requeue or purge acts on: exactly one of `--id`, `--all`, or
/// `--namespace`/`--reason`.
#[derive(Debug, Args)]
pub struct Selector {
    /// One record.
    #[arg(long, conflicts_with_all = ["all", "namespace", "reason"])]
    pub id: Option<i64>,
    /// Every record.
    #[arg(long, conflicts_with_all = ["namespace", "reason"])]
    pub all: bool,
    /// Records of this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Records with this reason (invalid, unknown-namespace, never-fits, expired,
    /// retries-exhausted, cancelled, rejected, unrecoverable).
    #[arg(long)]
    pub reason: Option<String>,
}

impl Selector {
    fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(id) = self.id {
            m.insert("id".into(), id.into());
        }
        if self.all {
            m.insert("all".into(), true.into());
        }
        if let Some(ns) = &self.namespace {
            m.insert("namespace".into(), ns.clone().into());
        }
        if let Some(r) = &self.reason {
            m.insert("reason".into(), r.clone().into());
        }
        m
    }
}

/// `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead letters, oldest first.
    List {
        /// Only this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// Only this reason.
        #[arg(long)]
        reason: Option<String>,
        /// Include records already requeued.
        #[arg(long)]
        include_requeued: bool,
        /// Page size (1–1000).
        #[arg(long)]
        limit: Option<u32>,
        /// The cursor a previous page printed.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One record with its stored body.
    Show {
        /// Record id.
        id: i64,
    },
    /// Put dead jobs back in their queue (same id and history) and re-publish dead messages.
    Requeue {
        /// Which records.
        #[command(flatten)]
        selector: Selector,
        /// Give requeued jobs their full retry policy again.
        #[arg(long)]
        reset_attempts: bool,
    },
    /// Delete dead-letter records.
    Purge {
        /// Which records.
        #[command(flatten)]
        selector: Selector,
        /// Also delete records already requeued.
        #[arg(long)]
        include_requeued: bool,
    },
}

/// Runs the command.
pub fn run(args: &DlqArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let (call, render): (Call, client::Render) = match &args.command {
        DlqCommand::List {
            namespace,
            reason,
            include_requeued,
            limit,
            cursor,
        } => (
            Call::get(format!(
                "/v1/dlq{}",
                query(&[
                    ("namespace", namespace.clone()),
                    ("reason", reason.clone()),
                    ("includeRequeued", include_requeued.then(|| "true".into())),
                    ("limit", limit.map(|l| l.to_string())),
                    ("cursor", cursor.clone()),
                ])
            )),
            render_list,
        ),
        DlqCommand::Show { id } => (Call::get(format!("/v1/dlq/{id}")), render_show),
        DlqCommand::Requeue {
            selector,
            reset_attempts,
        } => {
            let mut body = selector.body();
            body.insert("resetAttempts".into(), (*reset_attempts).into());
            (
                Call::post(
                    "/v1/dlq/requeue".into(),
                    Some(Payload::Json(Value::Object(body))),
                ),
                render_requeue,
            )
        }
        DlqCommand::Purge {
            selector,
            include_requeued,
        } => {
            let mut body = selector.body();
            body.insert("includeRequeued".into(), (*include_requeued).into());
            (
                Call::post(
                    "/v1/dlq/purge".into(),
                    Some(Payload::Json(Value::Object(body))),
                ),
                |v, out| writeln!(out, "purged {} dead letters", field(v, "purged")),
            )
        }
    };
    client::run(&args.client, call, render, out, err)
}

fn render_list(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(&[
        "ID",
        "NAMESPACE",
        "REASON",
        "JOB",
        "CREATED",
        "REQUEUED",
        "MESSAGE",
    ]);
    for d in v
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let job = match d.get("jobId") {
            Some(Value::String(s)) => s.clone(),
            _ => field(d, "claimedId"),
        };
        t.row(vec![
            field(d, "id"),
            field(d, "namespace"),
            field(d, "reason"),
            job,
            field(d, "createdAt"),
            field(d, "requeuedAt"),
            field(d, "message"),
        ]);
    }
    t.write(out)?;
    next_page(out, v)
}

fn render_show(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    block(
        out,
        &[
            ("id:", field(v, "id")),
            ("job:", field(v, "jobId")),
            ("namespace:", field(v, "namespace")),
            ("priority:", field(v, "priority")),
            ("reason:", field(v, "reason")),
            ("message:", field(v, "message")),
            ("attempt:", field(v, "attempt")),
            ("created:", field(v, "createdAt")),
            ("requeued:", field(v, "requeuedAt")),
            ("body bytes:", field(v, "bodyBytes")),
        ],
    )?;
    for p in v
        .get("problems")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        writeln!(
            out,
            "  {} [{}]: {}",
            field(p, "path"),
            field(p, "code"),
            field(p, "message")
        )?;
    }
    writeln!(out, "body:")?;
    match v.get("body").and_then(Value::as_str) {
        Some(body) => writeln!(out, "{}", clean_multiline(body)),
        None => writeln!(out, "(not UTF-8 text; {} bytes)", field(v, "bodyBytes")),
    }
}

fn render_requeue(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "requeued {} jobs and {} messages ({} skipped)",
        field(v, "jobs"),
        field(v, "messages"),
        field(v, "skipped")
    )
}
