//! Command-line interface: argument definitions and the commands.
//!
//! `validate` works offline; `run` and `migrate` drive the daemon; `enqueue`, `jobs`, `dlq`
//! and `schedules` are clients of the HTTP API ([`client`] makes the request, [`output`]
//! prints tables; [`watch`] follows a job to its end). Exit codes are part of the interface: 0 success, 1 the input was refused
//! (e.g. an invalid job, an unknown id: any 4xx from the API), 2 usage, config or transport
//! errors (and 5xx answers).

pub mod client;
pub mod dlq;
pub mod enqueue;
pub mod jobs;
pub mod output;
pub mod queue_overview;
pub mod run;
pub mod schedules;
pub mod validate;
pub mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit statuses shared by every subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Success = 0,
    /// The input was looked at and refused.
    Refused = 1,
    /// Bad usage, unreadable input, or a bad config.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// Spark job orchestrator for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about, propagate_version = true)]
pub struct Cli {
    /// Config file (TOML).
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATOR_CONFIG",
        default_value = "orchestrator.toml"
    )]
    pub config: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a job file against the config, offline: prints the normalised job (exit 0) or
    /// `{"valid":false,"errors":[…]}` (exit 1).
    Validate(validate::ValidateArgs),
    /// Run the daemon: intake, admission, tracking, cron, API, until SIGTERM.
    Run(run::RunArgs),
    /// Apply the database schema (migrations) and exit.
    Migrate,
    /// Submit a job file through the API.
    Enqueue(enqueue::EnqueueArgs),
    /// List, show and cancel jobs through the API.
    Jobs(jobs::JobsArgs),
    /// List, inspect, requeue and purge dead letters through the API.
    Dlq(dlq::DlqArgs),
    /// Create, list, show, pause, resume and delete cron schedules through the API.
    Schedules(schedules::SchedulesArgs),
    /// Queue depths, oldest waits and the jobs at the front, with why they wait.
    Queues(queue_overview::QueuesArgs),
    /// Print a shell completion script (e.g. `orchestrator completions bash >
    /// /etc/bash_completion.d/orchestrator`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Writes the completion script for `shell`, generated from the argument definitions above,
/// so it never lags behind a new flag.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) -> Exit {
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "orchestrator", out);
    Exit::Success
}
