//! The `orchestrator` binary: parse arguments, dispatch, map the outcome to an exit code.

#![forbid(unsafe_code)]

use std::io;
use std::process::ExitCode;

use clap::Parser;
use orchestrator::cli::{
    Cli, Command, Exit, dlq, enqueue, jobs, queue_overview, run, schedules, validate,
};

/// mimalloc rather than glibc's malloc: the daemon's work is allocation-heavy (JSON bodies,
/// HTTP and AMQP frames, SQL rows), and in the end-to-end bench, where the daemon runs in one
/// process with kube-sim, it took that process from 0.76 to 0.62 CPU-seconds per 1,000 jobs
/// (40 interleaved runs; BENCHMARKS.md, stop 34).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Enqueue(args) => {
            enqueue::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()).into()
        }
        Command::Jobs(args) => {
            jobs::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()).into()
        }
        Command::Dlq(args) => {
            dlq::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()).into()
        }
        Command::Schedules(args) => {
            schedules::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()).into()
        }
        Command::Queues(args) => {
            queue_overview::run(args, &mut io::stdout().lock(), &mut io::stderr().lock()).into()
        }
        Command::Completions { shell } => {
            orchestrator::cli::completions(*shell, &mut io::stdout().lock()).into()
        }
    }
}
