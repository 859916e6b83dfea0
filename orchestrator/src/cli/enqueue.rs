//! `orchestrator enqueue FILE|-`: submit a job file through the API (`POST /v1/jobs`), and
//! with `--wait` follow it to its end ([`super::watch`]).

use std::io::{self, Write};

use clap::Args;
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, OutputFormat, Payload};
use super::jobs::Every;
use super::output::field;
use super::watch;

/// Arguments of `enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Job file (JSON), or `-` for standard input.
    pub job: String,
    /// Then follow the job until it ends (as `jobs watch`); the exit code says how it ended:
    /// 0 succeeded, 1 failed, dead or cancelled.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub every: Every,
    /// API, token, output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs the command.
pub fn run(args: &EnqueueArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let body = match client::read_input(&args.job) {
        Ok(b) => b,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Exit::Usage;
        }
    };
    let call = Call::post("/v1/jobs".into(), Some(Payload::Raw(body)));
    if !args.wait {
        return client::run(&args.client, call, render, out, err);
    }
    let reply = match client::send(&args.client, call) {
        Ok(reply) => reply,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Exit::Usage;
        }
    };
    // The acceptance goes to stderr when following in JSON, so stdout stays one object per line.
    let accepted = match args.client.output {
        OutputFormat::Table => client::report(&reply, OutputFormat::Table, render, out, err),
        OutputFormat::Json => {
            let mut note = Vec::new();
            let exit = client::report(&reply, OutputFormat::Table, render, &mut note, err);
            let _ = err.write_all(&note);
            exit
        }
    };
    match reply.body.get("id").and_then(Value::as_str) {
        Some(id) if accepted == Exit::Success => {
            watch::follow(&args.client, id, args.every.every, out, err)
        }
        _ => accepted,
    }
}

fn render(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let what = if v.get("duplicate").and_then(Value::as_bool) == Some(true) {
        "already accepted"
    } else {
        "accepted"
    };
    writeln!(
        out,
        "{what}: job {} ({} in {}/{}), state {}",
        field(v, "id"),
        field(v, "name"),
        field(v, "namespace"),
        field(v, "priority"),
        field(v, "state"),
    )
}
