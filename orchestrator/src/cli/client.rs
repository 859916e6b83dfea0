//! What the API-client subcommands (`enqueue`, `jobs`, `dlq`, `schedules`) share: where the
//! API is and the token (`--api`/`ORCHESTRATOR_API_URL`, `--token`/`ORCHESTRATOR_TOKEN`), the
//! output format, one request, and how its answer becomes output and an exit code: 2xx → 0,
//! 4xx (refused: invalid job, unknown id, forbidden) → 1, anything else (bad usage, the API
//! unreachable, a 5xx) → 2.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};
use reqwest::Method;
use serde_json::Value;

use super::Exit;
use super::output::clean;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned plain-text columns for people.
    Table,
    /// The API's JSON, pretty-printed, for scripts.
    Json,
}

/// Connection and output flags of every API-client subcommand.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Base URL of the orchestrator's API.
    #[arg(
        long = "api",
        global = true,
        env = "ORCHESTRATOR_API_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub api: String,
    /// Bearer token.
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATOR_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Payload {
    /// JSON built here.
    Json(Value),
    /// Bytes from a file, sent as `application/json` unchanged (the API validates them).
    Raw(Vec<u8>),
}

/// One request to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Body.
    pub body: Option<Payload>,
}

impl Call {
    /// A GET.
    pub fn get(path: String) -> Self {
        Self {
            method: Method::GET,
            path,
            body: None,
        }
    }

    /// A POST with a body.
    pub fn post(path: String, body: Option<Payload>) -> Self {
        Self {
            method: Method::POST,
            path,
            body,
        }
    }
}

/// The API's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body as JSON (`Null` when empty or not JSON).
    pub body: Value,
}

/// Renders a successful answer as a table.
pub type Render = fn(&Value, &mut dyn Write) -> io::Result<()>;

/// Makes the call and prints the outcome; the exit code follows the status.
pub fn run(
    args: &ClientArgs,
    call: Call,
    render: Render,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    let outcome = send(args, call);
    let exit = match outcome {
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            Exit::Usage
        }
        Ok(reply) => report(&reply, args.output, render, out, err),
    };
    let _ = out.flush();
    exit
}

/// Makes one request; `Err` when the API cannot be reached (the message says why).
pub fn send(args: &ClientArgs, call: Call) -> Result<Reply, String> {
    let base = args.api.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(format!(
            "--api {:?} is not an http:// or https:// URL",
            clean(base)
        ));
    }
    let url = format!("{base}{}", call.path);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("orchestrator-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
        let mut request = http.request(call.method, &url);
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        request = match call.body {
            None => request,
            Some(Payload::Json(v)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&v).unwrap_or_default()),
            Some(Payload::Raw(bytes)) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes),
        };
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot reach the API at {base}: {}", chain(&e)))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("the API at {base} broke off its answer: {}", chain(&e)))?;
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            if bytes.is_empty() {
                Value::Null
            } else {
                Value::String(String::from_utf8_lossy(&bytes).into_owned())
            }
        });
        Ok(Reply { status, body })
    })
}

/// An error and its causes on one line (reqwest's own message omits the cause).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            let _ = write!(s, ": {text}");
        }
        source = cause.source();
    }
    s
}

/// Prints an answer: 2xx through `render` (or as JSON), anything else as an error line (and
/// the problems, one per line).
pub fn report(
    reply: &Reply,
    output: OutputFormat,
    render: Render,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Exit {
    if (200..300).contains(&reply.status) {
        let written = match output {
            OutputFormat::Json => print_json(&reply.body, out),
            OutputFormat::Table => render(&reply.body, out),
        };
        return match written {
            Ok(()) => Exit::Success,
            Err(e) => {
                let _ = writeln!(err, "error: cannot write the output: {e}");
                Exit::Usage
            }
        };
    }
    let message = reply
        .body
        .get("message")
        .and_then(Value::as_str)
        .map(clean)
        .unwrap_or_else(|| match &reply.body {
            Value::String(s) => clean(s),
            _ => "no details".into(),
        });
    let code = reply
        .body
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(String::new, |c| format!(" {}", clean(c)));
    let _ = writeln!(err, "error: {message} (HTTP {}{code})", reply.status);
    match output {
        OutputFormat::Json => {
            let _ = print_json(&reply.body, out);
        }
        OutputFormat::Table => {
            for p in reply
                .body
                .get("problems")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let _ = writeln!(
                    err,
                    "  {} [{}]: {}",
                    clean(p.get("path").and_then(Value::as_str).unwrap_or("$")),
                    clean(p.get("code").and_then(Value::as_str).unwrap_or("")),
                    clean(p.get("message").and_then(Value::as_str).unwrap_or("")),
                );
            }
        }
    }
    if (400..500).contains(&reply.status) {
        Exit::Refused
    } else {
        Exit::Usage
    }
}

fn print_json(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, v)?;
    writeln!(out)
}

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Builds `?a=1&b=2` from the parameters that are set.
pub fn query(params: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

/// Reads a file, or standard input for `-`, up to 64 MiB.
pub fn read_input(source: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    const LIMIT: u64 = 64 * 1024 * 1024;
    let mut bytes = Vec::new();
    let read = if source == "-" {
        io::stdin().lock().take(LIMIT).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(source).and_then(|f| f.take(LIMIT).read_to_end(&mut bytes))
    };
    read.map_err(|e| format!("cannot read {}: {e}", clean(source)))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("team-a_1.x~"), "team-a_1.x~");
        assert_eq!(encode("a/b c?&é"), "a%2Fb%20c%3F%26%C3%A9");
        assert_eq!(
            query(&[("namespace", Some("team a".into())), ("state", None)]),
            "?namespace=team%20a"
        );
        assert_eq!(query(&[("x", None)]), "");
    }

    #[test]
    fn statuses_map_to_exit_codes_and_messages() {
        let render: Render = |_, out| writeln!(out, "rendered");
        let mut out = Vec::new();
        let mut err = Vec::new();
        let ok = Reply {
            status: 202,
            body: serde_json::json!({"id": "x"}),
        };
        assert_eq!(
            report(&ok, OutputFormat::Table, render, &mut out, &mut err),
            Exit::Success
        );
        assert_eq!(String::from_utf8_lossy(&out), "rendered\n");

        let refused = Reply {
            status: 400,
            body: serde_json::json!({"error": "invalid-job", "message": "bad\u{1b}[31m",
                "problems": [{"code": "invalid-name", "path": "$.name", "message": "no"}]}),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            report(&refused, OutputFormat::Table, render, &mut out, &mut err),
            Exit::Refused
        );
        let err = String::from_utf8_lossy(&err);
        assert!(
            err.starts_with("error: bad?[31m (HTTP 400 invalid-job)\n"),
            "{err}"
        );
        assert!(err.contains("  $.name [invalid-name]: no"), "{err}");

        let down = Reply {
            status: 503,
            body: Value::Null,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(
            report(&down, OutputFormat::Json, render, &mut out, &mut err),
            Exit::Usage
        );
    }
}
