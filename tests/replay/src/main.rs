//! `replay generate …` writes a seeded trace; `replay run --trace FILE --out DIR` replays it
//! under each policy and writes the report (markdown, PNG, JSON). See the crate README.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use replay::generate::{self, SaturatedParams, StandardParams};
use replay::replay::RunConfig;
use replay::{Policy, plot, report, trace};

#[derive(Parser)]
#[command(about = "Workload traces and the scheduling-quality replay")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Kind {
    /// Mixed sizes, two priorities, 10 namespaces, bursts, a nightly cron wave.
    Standard,
    /// The seed blog's scenario: trivial flood, critical jobs behind it, a backfill wave.
    Seed002,
    /// One-node gangs all at once: deadlocks the Spark Operator alone.
    Deadlock,
    /// Load well above the cluster for hours, gangs of 20–60 executors, 20 % high priority.
    Saturated,
}

#[derive(Subcommand)]
enum Command {
    /// Writes a trace (JSON lines) to --out or stdout.
    Generate {
        #[arg(long, value_enum, default_value = "standard")]
        kind: Kind,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Cluster size the load is scaled to.
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Submission window (standard, saturated), simulated hours.
        #[arg(long, default_value_t = 3.0)]
        hours: f64,
        /// Jobs (deadlock).
        #[arg(long, default_value_t = 12)]
        jobs: usize,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replays a trace under each policy and writes the report into --out.
    Run {
        #[arg(long)]
        trace: PathBuf,
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Simulated seconds per wall second.
        #[arg(long, default_value_t = 100.0)]
        speed: f64,
        /// Comma-separated policies (default: orchestrator and the three baselines; also
        /// orchestrator-preempt).
        #[arg(long, value_delimiter = ',')]
        policies: Vec<String>,
        /// Stuck limit, simulated seconds.
        #[arg(long, default_value_t = 120.0)]
        stuck_limit: f64,
        /// Give up this long after the last submission, simulated seconds.
        #[arg(long, default_value_t = 14_400.0)]
        drain: f64,
        /// Report directory.
        #[arg(long)]
        out: PathBuf,
        /// Report file stem (default: the trace's file stem).
        #[arg(long)]
        name: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Generate {
            kind,
            seed,
            nodes,
            hours,
            jobs,
            out,
        } => {
            let t = match kind {
                Kind::Standard => generate::standard(&StandardParams {
                    seed,
                    nodes,
                    hours,
                    ..StandardParams::default()
                }),
                Kind::Seed002 => generate::seed002(seed, nodes),
                Kind::Deadlock => generate::deadlock(jobs, 60.0),
                Kind::Saturated => generate::saturated(&SaturatedParams {
                    seed,
                    nodes,
                    hours,
                    ..SaturatedParams::default()
                }),
            };
            let text = trace::render(&t);
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{text}"),
            }
            eprintln!("{} jobs", t.len());
            Ok(())
        }
        Command::Run {
            trace: path,
            nodes,
            speed,
            policies,
            stuck_limit,
            drain,
            out,
            name,
        } => {
            let jobs = trace::read(&path)?;
            let policies: Vec<Policy> = if policies.is_empty() {
                Policy::DEFAULT.to_vec()
            } else {
                policies
                    .iter()
                    .map(|p| p.parse().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()?
            };
            if !(speed.is_finite() && speed > 0.0) || nodes == 0 {
                bail!("--speed must be > 0 and --nodes ≥ 1");
            }
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let stem = name.unwrap_or_else(|| {
                path.file_stem()
                    .map_or("replay".into(), |s| s.to_string_lossy().into_owned())
            });
            let cfg = RunConfig {
                nodes,
                speed,
                stuck_limit,
                drain,
                ..RunConfig::default()
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let mut runs = Vec::new();
            for policy in policies {
                eprintln!("replaying {} jobs under {} …", jobs.len(), policy.name());
                let run = rt.block_on(replay::replay::run(&jobs, policy, &cfg))?;
                eprintln!(
                    "  {}: {} s wall, {} of {} jobs ended",
                    policy.name(),
                    run.wall.as_secs(),
                    run.recorder
                        .jobs
                        .iter()
                        .filter(|j| j.finished.is_some())
                        .count(),
                    jobs.len()
                );
                let records: String = run
                    .recorder
                    .jobs
                    .iter()
                    .filter_map(|j| serde_json::to_string(j).ok())
                    .fold(String::new(), |mut s, l| {
                        s.push_str(&l);
                        s.push('\n');
                        s
                    });
                std::fs::write(
                    out.join(format!("{stem}-{}.jobs.jsonl", policy.name())),
                    records,
                )?;
                runs.push(run);
            }
            let summaries: Vec<_> = runs.iter().map(|r| r.summary()).collect();
            let png = out.join(format!("{stem}.png"));
            let plotted: Vec<(&str, &replay::record::Recorder)> = runs
                .iter()
                .map(|r| (r.policy.name(), &r.recorder))
                .collect();
            let font = std::env::var_os("REPLAY_FONT").map(PathBuf::from);
            plot::draw(&png, &plotted, font.as_deref())?;
            let mut md = String::new();
            let _ = writeln!(md, "# Replay: `{}`\n", path.display());
            let _ = writeln!(
                md,
                "{} jobs, {nodes} nodes of 16 cpu / 64 GiB, simulated time ×{speed}, stuck = driver \
                 running with an executor pending for more than {} in one stretch. Wait = enqueue → \
                 all required executors running. Wall time per policy, and the replayer's own \
                 stalls (the process did not run for over 100 ms, so what happened meanwhile \
                 was seen late by that much simulated time): {}.\n",
                jobs.len(),
                report::duration(stuck_limit),
                runs.iter()
                    .zip(&summaries)
                    .map(|(r, s)| format!(
                        "{} {} s ({} stalls, longest {})",
                        r.policy.name(),
                        r.wall.as_secs(),
                        s.stalls.0,
                        report::duration(s.stalls.1)
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            md.push_str(&report::table(&summaries));
            if let Some(o) = summaries
                .iter()
                .find(|s| s.policy == Policy::Orchestrator.name())
            {
                let _ = writeln!(md, "\nTargets (issue 9), orchestrator:\n");
                md.push_str(&report::targets_markdown(o));
            }
            let _ = writeln!(
                md,
                "\nPreemption and start estimates (error = |estimated − actual admission|, of the \
                 first estimate a job got and of the one its last wait ended with):\n"
            );
            md.push_str(&report::preemption_table(&summaries));
            let find = |p: Policy| summaries.iter().find(|s| s.policy == p.name());
            if let (Some(without), Some(with)) = (
                find(Policy::Orchestrator),
                find(Policy::OrchestratorPreempt),
            ) {
                let _ = writeln!(md, "\nTargets (issue 19), preemption:\n");
                md.push_str(&report::checklist(&report::preemption_targets(
                    without, with,
                )));
            }
            let _ = writeln!(md, "\n![waits and utilization]({stem}.png)");
            std::fs::write(out.join(format!("{stem}.md")), &md)?;
            std::fs::write(
                out.join(format!("{stem}.json")),
                serde_json::to_string_pretty(&summaries)?,
            )?;
            println!("{md}");
            Ok(())
        }
    }
}
