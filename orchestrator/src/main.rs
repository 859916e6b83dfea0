//! The `orchestrator` binary: parse arguments, dispatch, map the outcome to an exit code.

#![forbid(unsafe_code)]

use std::io;
use std::process::ExitCode;

use clap::Parser;
use orchestrator::cli::{Cli, Command, Exit, run, validate};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Success.into()
            };
        }
    };
    match &cli.command {
        Command::Validate(args) => validate::run(
            &cli.config,
            args,
            io::stdin().lock(),
            io::stdout().lock(),
            io::stderr().lock(),
        )
        .into(),
        Command::Run(args) => run::run(&cli.config, args).into(),
        Command::Migrate => run::migrate(&cli.config).into(),
    }
}
