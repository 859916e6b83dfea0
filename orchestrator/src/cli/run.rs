//! `orchestrator run` (the daemon) and `orchestrator migrate` (apply the database schema).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tracing_subscriber::EnvFilter;

use super::Exit;
use crate::config::{Config, LogFormat};
use crate::daemon::Daemon;
use crate::leader;

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Listen address of the API (overrides `http.listen` and `ORCHESTRATOR_HTTP_ADDR`).
    #[arg(long)]
    pub listen: Option<String>,
    /// Kubeconfig file (overrides `kubernetes.kubeconfig` and `KUBECONFIG`).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// This replica's identity for leader election (default: host name and pid).
    #[arg(long)]
    pub identity: Option<String>,
    /// Log as JSON lines.
    #[arg(long)]
    pub json_logs: bool,
}

/// Reads the config file and applies the environment; prints problems and returns `None`.
pub fn load_config(path: &Path) -> Option<Config> {
    let mut config = match Config::from_file(path) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return None;
        }
    };
    if let Err(e) = config.apply_env(|k| std::env::var(k).ok()) {
        eprint!("{e}");
        return None;
    }
    Some(config)
}

/// Runs the daemon until SIGTERM or SIGINT, then shuts down cleanly.
pub fn run(config_path: &Path, args: &RunArgs) -> Exit {
    let Some(mut config) = load_config(config_path) else {
        return Exit::Usage;
    };
    if let Some(listen) = &args.listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            eprintln!("--listen {listen:?} is not an address like 127.0.0.1:8080");
            return Exit::Usage;
        }
        config.http.listen = listen.clone();
    }
    if let Some(path) = &args.kubeconfig {
        config.kubernetes.kubeconfig = Some(path.clone());
    }
    if args.json_logs {
        config.logging.format = LogFormat::Json;
    }
    init_logging(&config);
    let Some(runtime) = runtime(tokio::runtime::Builder::new_multi_thread()) else {
        return Exit::Usage;
    };
    let identity = args
        .identity
        .clone()
        .or_else(|| config.leader.identity.clone())
        .unwrap_or_else(leader::default_identity);
    match runtime.block_on(serve(config, identity)) {
        Ok(()) => Exit::Success,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("orchestrator: {e:#}");
            Exit::Usage
        }
    }
}

async fn serve(config: Config, identity: String) -> anyhow::Result<()> {
    // Both lapin and kube use rustls; pick its provider once for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = kube_client(&config).await?;
    let daemon = Daemon::start(config, client, identity).await?;
    // Scripts and tests read the address from here (the listen port may be 0).
    println!("orchestrator listening on http://{}", daemon.http_addr());
    wait_for_signal().await?;
    daemon.shutdown().await;
    Ok(())
}

/// The Kubernetes client: the configured kubeconfig, else the usual inference (env
/// `KUBECONFIG`, `~/.kube/config`, in-cluster service account).
pub async fn kube_client(config: &Config) -> anyhow::Result<kube::Client> {
    let kube_config = match &config.kubernetes.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("kubeconfig {} is unusable", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes config: set kubernetes.kubeconfig or KUBECONFIG")?,
    };
    kube::Client::try_from(kube_config).context("cannot build the Kubernetes client")
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM"),
        r = tokio::signal::ctrl_c() => { r.context("cannot listen for SIGINT")?; tracing::info!("SIGINT") }
    }
    Ok(())
}

fn init_logging(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.logging.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// `orchestrator migrate`: applies the schema and exits.
pub fn migrate(config_path: &Path) -> Exit {
    let Some(config) = load_config(config_path) else {
        return Exit::Usage;
    };
    let Some(runtime) = runtime(tokio::runtime::Builder::new_current_thread()) else {
        return Exit::Usage;
    };
    let result = runtime.block_on(async {
        let names = queues::Names::new(config.amqp.prefix.clone())?;
        let store = queues::JobStore::connect(
            &config.database.url,
            1,
            names,
            std::sync::Arc::new(queues::Metrics::default()),
        )
        .await?;
        store.migrate().await?;
        store.pool().close().await;
        Ok::<_, queues::Error>(())
    });
    match result {
        Ok(()) => {
            println!("migrations applied");
            Exit::Success
        }
        Err(e) => {
            eprintln!("orchestrator migrate: {e}");
            Exit::Usage
        }
    }
}

/// The async runtime `builder` makes (with I/O and timers), or `None` after saying why not.
fn runtime(mut builder: tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("cannot start the async runtime: {e}"))
        .ok()
}
