//! `kube-sim --config FILE --listen ADDR --kubeconfig-out FILE [--kubeconfig-as WHO=FILE]...`:
//! run the simulator until SIGINT/SIGTERM. The first stdout line is `kube-sim listening on http://ADDR`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Kubernetes API simulator for tests and the demo.
#[derive(Debug, Parser)]
#[command(name = "kube-sim", version)]
struct Args {
    /// Cluster configuration (TOML); see tests/kube-sim/README.md.
    #[arg(long, env = "KUBE_SIM_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0", env = "KUBE_SIM_LISTEN")]
    listen: SocketAddr,
    /// Write a kubeconfig pointing at the simulator here (with `[auth]`: as the first
    /// administrator).
    #[arg(long, env = "KUBE_SIM_KUBECONFIG_OUT")]
    kubeconfig_out: Option<PathBuf>,
    /// `WHO=FILE`: also write a kubeconfig that authenticates as WHO, a user name or a
    /// ServiceAccount (`NS/NAME`) of `[auth]`; repeatable.
    #[arg(long = "kubeconfig-as", value_parser = parse_as)]
    kubeconfig_as: Vec<(String, PathBuf)>,
}

fn parse_as(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((who, path)) if !who.is_empty() && !path.is_empty() => {
            Ok((who.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected WHO=FILE, got {s:?}")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => match kube_sim::SimConfig::from_file(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("kube-sim: {e}");
                return ExitCode::from(64);
            }
        },
        None => kube_sim::SimConfig::default(),
    };
    for (who, _) in &args.kubeconfig_as {
        let known = config
            .auth
            .as_ref()
            .is_some_and(|a| a.token_for(who).is_some());
        if !known {
            eprintln!(
                "kube-sim: --kubeconfig-as {who}=...: no [auth] user or service account {who:?}"
            );
            return ExitCode::from(64);
        }
    }
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "kube-sim: refusing to listen on {}: the simulator has no authentication; use a loopback address",
            args.listen
        );
        return ExitCode::from(64);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kube-sim: cannot start the runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match runtime.block_on(run(config, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube-sim: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: kube_sim::SimConfig, args: Args) -> anyhow::Result<()> {
    let sim = kube_sim::Simulator::start(config, args.listen)?;
    if let Some(path) = &args.kubeconfig_out {
        sim.write_kubeconfig(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    for (who, path) in &args.kubeconfig_as {
        sim.write_kubeconfig_as(who, path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("kube-sim listening on {}", sim.url());
    shutdown_signal().await;
    sim.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
