//! A fresh PostgreSQL database per test on the shared server (127.0.0.1:5432, trust auth),
//! dropped at the end; databases left by crashed runs are swept after two hours.

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};

/// Host of the shared PostgreSQL.
pub const HOST: &str = "127.0.0.1";
/// Its port.
pub const PORT: u16 = 5432;
/// The [`crate::unique`] tag of test databases.
const TAG: &str = "db";
/// Leftovers older than this are dropped by the next test that starts.
const SWEEP_AFTER_SECS: u64 = 7200;

/// Connection options for `database` on the server at `port`.
pub fn options(port: u16, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(HOST)
        .port(port)
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
    /// Database name (a [`crate::unique`] name).
    pub name: String,
    /// The server's port.
    pub port: u16,
    /// A pool on it.
    pub pool: PgPool,
}

impl TestDb {
    /// Creates a database on the shared server and applies `migrator`; panics if PostgreSQL
    /// does not answer (a test never skips silently).
    pub async fn new(migrator: &Migrator) -> Self {
        Self::new_at(PORT, Duration::from_secs(10), migrator).await
    }

    /// Like [`TestDb::new`], on a server at `port`, with a pool that gives up acquiring after
    /// `acquire` (restart tests use short ones).
    pub async fn new_at(port: u16, acquire: Duration, migrator: &Migrator) -> Self {
        let name = create(port).await;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(acquire)
            .connect_with(options(port, &name))
            .await
            .unwrap();
        migrator.run(&pool).await.unwrap();
        Self { name, port, pool }
    }

    /// Backend pids of this database's connections whose last statement was `LISTEN` or the
    /// listener's heartbeat (who waits for notifications: the leader's pending-job listener,
    /// `queues::store::wake`).
    pub async fn listeners(&self) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND (query ILIKE 'LISTEN%' \
             OR query = 'SELECT 1 /* pending-job listener heartbeat */')",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Closes the pool and drops the database.
    pub async fn drop_database(&self) {
        self.pool.close().await;
        drop_database(self.port, &self.name).await;
    }
}

/// Creates an empty database (for code under test that migrates it itself) and returns its
/// name, after sweeping old leftovers.
pub async fn create(port: u16) -> String {
    let mut admin = options(port, "postgres")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {HOST}:{port} is unreachable: {e}"));
    sweep(&mut admin).await;
    let name = crate::unique(TAG);
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .unwrap();
    name
}

/// Drops a database, ignoring errors (cleanup is best effort).
pub async fn drop_database(port: u16, name: &str) {
    if let Ok(mut admin) = options(port, "postgres").connect().await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .await;
    }
}

async fn sweep(admin: &mut sqlx::PgConnection) {
    let now = crate::unix_now();
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(format!("{}{TAG}%", crate::PREFIX))
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        if crate::created_at(&name, TAG).is_some_and(|s| s + SWEEP_AFTER_SECS < now) {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .await;
        }
    }
}
