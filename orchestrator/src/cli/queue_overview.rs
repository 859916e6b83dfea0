//! `orchestrator queues`: depth, oldest wait and the jobs at the front of every queue, with
//! why each waits — the view the demo refreshes.

use std::io::{self, Write};

use clap::Args;
use serde_json::Value;

use super::Exit;
use super::client::{self, Call, ClientArgs};
use super::output::{Table, field};

/// Arguments of `queues`.
#[derive(Debug, Args)]
pub struct QueuesArgs {
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Jobs shown from the front of each queue (0–100).
    #[arg(long, default_value_t = 3)]
    pub heads: u32,
    /// Connection and output.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Runs the command.
pub fn run(args: &QueuesArgs, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let mut path = format!("/v1/queues?heads={}", args.heads);
    if let Some(ns) = &args.namespace {
        path.push_str(&format!("&namespace={}", client::encode(ns)));
    }
    client::run(&args.client, Call::get(path), render, out, err)
}

fn render(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut queues = Table::new(&["QUEUE", "DEPTH", "QUEUED", "WAITING", "OLDEST WAIT"]);
    let mut heads = Table::new(&[
        "QUEUE",
        "POS",
        "STATE",
        "JOB",
        "ESTIMATED START",
        "WHY IT WAITS",
    ]);
    for q in v
        .get("queues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = format!("{}/{}", field(q, "namespace"), field(q, "priority"));
        let oldest = q
            .get("oldestWaitSeconds")
            .and_then(Value::as_f64)
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.0}s"));
        queues.row(vec![
            name.clone(),
            field(q, "depth"),
            field(q, "queued"),
            field(q, "waiting"),
            oldest,
        ]);
        for h in q
            .get("heads")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            heads.row(vec![
                name.clone(),
                field(h, "position"),
                field(h, "state"),
                field(h, "name"),
                field(h, "estimatedStartAt"),
                field(h, "waitingMessage"),
            ]);
        }
    }
    queues.write(out)?;
    writeln!(out)?;
    heads.write(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_show_their_estimated_start() {
        let v = serde_json::json!({"queues": [{"namespace": "team-a", "priority": "high", "depth": 1,
            "heads": [{"position": 1, "state": "waiting", "name": "etl",
                "estimatedStartAt": "2026-12-05T09:00:00Z", "waitingMessage": "no room"}]}]});
        let mut out = Vec::new();
        render(&v, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("ESTIMATED START"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("etl") && l.contains("2026-12-05T09:00:00Z")),
            "{text}"
        );
    }
}
