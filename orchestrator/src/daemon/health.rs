//! Readiness: can this replica reach what it needs (broker, database, Kubernetes)?

use std::time::Duration;

use lapin::ConnectionStatus;
use queues::JobStore;

use crate::http::{Component, Readiness};

/// The dependencies `/readyz` checks.
#[derive(Clone)]
pub struct Health {
    store: JobStore,
    broker: ConnectionStatus,
    client: kube::Client,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Health {
    /// Over the daemon's connections.
    pub fn new(store: JobStore, broker: ConnectionStatus, client: kube::Client) -> Self {
        Self {
            store,
            broker,
            client,
        }
    }

    /// Checks every component (each bounded by a short timeout), concurrently.
    async fn components(&self) -> Vec<Component> {
        let database = async {
            match tokio::time::timeout(
                CHECK_TIMEOUT,
                sqlx::query("SELECT 1").execute(self.store.pool()),
            )
            .await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 2 s".into()),
            }
        };
        let kubernetes = async {
            match tokio::time::timeout(CHECK_TIMEOUT, self.client.apiserver_version()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 2 s".into()),
            }
        };
        let broker = if self.broker.connected() {
            Ok(())
        } else if self.broker.errored() {
            Err("the connection failed".into())
        } else {
            Err("not connected".into())
        };
        let (database, kubernetes) = tokio::join!(database, kubernetes);
        vec![
            Component::new("broker", broker),
            Component::new("database", database),
            Component::new("kubernetes", kubernetes),
        ]
    }
}

#[async_trait::async_trait]
impl Readiness for Health {
    async fn check(&self) -> Vec<Component> {
        self.components().await
    }
}
