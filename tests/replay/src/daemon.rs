//! The orchestrator under test: the daemon `orchestrator run` starts — AMQP intake, outbox
//! relay, housekeeping, capacity watches, leader election, submitter, tracking, cron and the
//! HTTP API — on the world's cluster, database and RabbitMQ topology, in this process.
//!
//! Its configuration is a config file's text (the trace's catalog and the daemon sections)
//! read by the daemon's own loader; only the submitter section is set afterwards, with
//! durations that mean workload time scaled to the replay's speed.

use std::time::Duration;

use e2e::world::{AMQP_URL, World};
use orchestrator::config::Config;
use orchestrator::daemon::Daemon;
use submitter::config::SubmitterConfig;

use crate::replay::Error;

/// Starts the daemon and waits until it leads (so the replay clock starts with a submitter).
pub async fn start(
    world: &World,
    catalog: &str,
    submitter: SubmitterConfig,
) -> Result<Daemon, Error> {
    let prefix = world.topology.names().prefix();
    let text = format!(
        "{catalog}\n[amqp]\nurl = \"{AMQP_URL}\"\nprefix = \"{prefix}\"\n\
         [database]\nurl = \"{db}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[auth]\ndisabled = true\n\
         [leader]\nlease_name = \"{prefix}-replay\"\n",
        db = test_support::pg::url(&world.db.name),
    );
    let mut config = Config::from_toml_str(&text, "replay daemon config")
        .map_err(|e| Error::Config(e.to_string()))?;
    config.submitter = submitter;
    let daemon = Daemon::start(config, world.client.clone(), format!("{prefix}-daemon"))
        .await
        .map_err(|e| Error::Daemon(e.to_string()))?;
    let mut leads = daemon.leadership();
    let led = tokio::time::timeout(Duration::from_secs(60), leads.wait_for(|l| *l)).await;
    if !matches!(led, Ok(Ok(_))) {
        daemon.shutdown().await;
        return Err(Error::Daemon(
            "it did not take the lease within 60 s".into(),
        ));
    }
    Ok(daemon)
}
