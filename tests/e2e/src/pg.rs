//! A fresh, migrated PostgreSQL database per test on 127.0.0.1:5432 (trust auth), dropped at
//! the end; databases left by crashed runs are swept after two hours.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};

/// Host of the shared PostgreSQL.
pub const HOST: &str = "127.0.0.1";
/// Its port.
pub const PORT: u16 = 5432;

fn options(database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(HOST)
        .port(PORT)
        .username("postgres")
        .database(database)
}

/// The connection URL of a database on the shared server.
pub fn url(database: &str) -> String {
    format!("postgres://postgres@{HOST}:{PORT}/{database}")
}

/// One test's database.
#[derive(Debug)]
pub struct TestDb {
    /// Database name.
    pub name: String,
    /// Pool on it.
    pub pool: PgPool,
}

impl TestDb {
    /// Creates and migrates a database; panics if PostgreSQL does not answer.
    pub async fn new() -> Self {
        let mut admin = options("postgres")
            .connect()
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {HOST}:{PORT} is unreachable: {e}"));
        sweep(&mut admin).await;
        let name = crate::unique("db");
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .unwrap();
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options(&name))
            .await
            .unwrap();
        queues::store::MIGRATOR.run(&pool).await.unwrap();
        Self { name, pool }
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(&self) {
        self.pool.close().await;
        drop_database(&self.name).await;
    }
}

/// Drops a database, ignoring errors (cleanup is best effort).
pub async fn drop_database(name: &str) {
    if let Ok(mut admin) = options("postgres").connect().await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .await;
    }
}

async fn sweep(admin: &mut sqlx::PgConnection) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'e2edb%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let created: Option<u64> = name
            .strip_prefix("e2edb")
            .and_then(|r| r.split('x').next())
            .and_then(|s| s.parse().ok());
        if created.is_some_and(|s| s + 7200 < now) {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}
