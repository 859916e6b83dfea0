//! Command-line interface: argument definitions and the offline commands.
//!
//! Exit codes are part of the interface: 0 success, 1 the input was refused (e.g. an invalid
//! job), 2 usage or config errors.

pub mod run;
pub mod validate;

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
}
