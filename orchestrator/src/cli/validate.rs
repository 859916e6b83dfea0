//! `orchestrator validate FILE|-`: the offline check publishers run before sending a job.

use std::io::{Read, Write};
use std::path::Path;

use clap::Args;
use serde_json::json;

use super::Exit;
use crate::config::Config;

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Job file (JSON), or `-` for standard input.
    pub job: String,
}

/// Runs the command; output and errors go to the given streams so tests can read them.
pub fn run(
    config_path: &Path,
    args: &ValidateArgs,
    stdin: impl Read,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> Exit {
    let config = match Config::from_file(config_path) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(stderr, "{e}");
            return Exit::Usage;
        }
    };
    // Read one byte past the limit: enough to say "too large" without holding an endless stream.
    let limit = config.catalog.limits().max_message_bytes as u64 + 1;
    let bytes = if args.job == "-" {
        read_limited(stdin, limit)
    } else {
        std::fs::File::open(&args.job).and_then(|f| read_limited(f, limit))
    };
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            let _ = writeln!(stderr, "cannot read {}: {e}", args.job);
            return Exit::Usage;
        }
    };
    let (body, exit) = match jobs::parse_job(&bytes, &config.catalog) {
        Ok(job) => (serde_json::to_value(&job), Exit::Success),
        Err(rejection) => (
            Ok(json!({ "valid": false, "errors": rejection.problems })),
            Exit::Refused,
        ),
    };
    let written = body
        .and_then(|v| serde_json::to_writer_pretty(&mut stdout, &v))
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout));
    match written {
        Ok(()) => exit,
        Err(e) => {
            let _ = writeln!(stderr, "cannot write the result: {e}");
            Exit::Usage
        }
    }
}

fn read_limited(source: impl Read, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    source.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}
