//! `orchestrator enqueue FILE|-`: submit a job file through the API (`POST /v1/jobs`).

use std::io::{self, Write};

use clap::Args;
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs, Payload};
use super::output::field;

/// Arguments of `enqueue`.
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Job file (JSON), or `-` for standard input.
    pub job: String,
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
    client::run(
        &args.client,
        Call::post("/v1/jobs".into(), Some(Payload::Raw(body))),
        render,
        out,
        err,
    )
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
