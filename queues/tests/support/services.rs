//! Private service instances for tests that restart their server: a RabbitMQ node and a
//! PostgreSQL cluster of their own (own ports, own data in a temporary directory), so
//! stopping them never disturbs the tests sharing the machine's services. Both stop and
//! clean up on drop, also when the test panics.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: each test crate uses a different part, and a panic is how a test fails"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 outside the ranges RabbitMQ's own tools use (25672, and
/// 35672–35682 for CLI distribution).
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port != 25672 && !(35672..=35700).contains(&port) {
            return port;
        }
    }
}

fn run(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn chown(path: &Path, user: &str) {
    assert!(
        run(Command::new("chown")
            .args(["-R", &format!("{user}:{user}")])
            .arg(path)),
        "chown {user} {}",
        path.display()
    );
}

/// A RabbitMQ node of this test's own (`rabbitmq-server` with its own node name, ports and
/// data directory).
pub struct PrivateBroker {
    pub node: String,
    pub port: u16,
    dir: tempfile::TempDir,
    server: Option<std::process::Child>,
}

impl PrivateBroker {
    /// Starts the node and waits (bounded) until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("queues-rabbit-")
            .tempdir_in("/tmp")
            .unwrap();
        let port = free_port();
        let dist = free_port();
        let name = format!("qt{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let node = format!("{name}@localhost");
        let d = dir.path();
        std::fs::write(d.join("env.conf"), "").unwrap();
        std::fs::write(
            d.join("rabbitmq.conf"),
            format!("listeners.tcp.default = 127.0.0.1:{port}\nloopback_users = none\n"),
        )
        .unwrap();
        std::fs::write(d.join("enabled_plugins"), "[].\n").unwrap();
        chown(d, "rabbitmq");
        let mut broker = Self {
            node,
            port,
            dir,
            server: None,
        };
        let out = std::fs::File::create(broker.dir.path().join("server.out")).unwrap();
        let server = Command::new("rabbitmq-server")
            .envs(broker.env())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("rabbitmq-server must be installed (Debian package rabbitmq-server)");
        broker.server = Some(server);
        broker.await_startup(Duration::from_secs(120));
        broker
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        let d = self.dir.path().display();
        vec![
            ("RABBITMQ_CONF_ENV_FILE", format!("{d}/env.conf")),
            ("RABBITMQ_NODENAME", self.node.clone()),
            ("RABBITMQ_MNESIA_BASE", format!("{d}/mnesia")),
            ("RABBITMQ_LOG_BASE", format!("{d}/log")),
            ("RABBITMQ_CONFIG_FILE", format!("{d}/rabbitmq")),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                format!("{d}/enabled_plugins"),
            ),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
        ]
    }

    /// `amqp://guest:guest@127.0.0.1:{port}/%2f`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// `rabbitmqctl -n {node} …`; true on success.
    pub fn ctl(&self, args: &[&str]) -> bool {
        run(Command::new("rabbitmqctl")
            .args(["-n", &self.node, "-q"])
            .args(args)
            .envs(self.env()))
    }

    fn await_startup(&self, limit: Duration) {
        let started = Instant::now();
        // `await_startup` fails at once while the node has not registered yet: poll it.
        while !self.ctl(&["await_startup", "--timeout", "30"]) {
            assert!(
                started.elapsed() < limit,
                "private RabbitMQ node {} did not start within {limit:?}; see {}",
                self.node,
                self.dir.path().join("server.out").display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        while TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
            assert!(
                started.elapsed() < limit,
                "AMQP port {} never opened",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the RabbitMQ application (the Erlang node stays up): every connection drops.
    pub fn stop_app(&self) {
        assert!(self.ctl(&["stop_app"]), "rabbitmqctl stop_app");
    }

    /// Starts it again and waits until it serves.
    pub fn start_app(&self) {
        assert!(self.ctl(&["start_app"]), "rabbitmqctl start_app");
        self.await_startup(Duration::from_secs(120));
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop"]);
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A PostgreSQL cluster of this test's own (`initdb` + `pg_ctl`, run as the `postgres` user).
pub struct PrivatePostgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    /// Creates and starts the cluster (trust auth on 127.0.0.1).
    pub fn start() -> Self {
        let bin = [
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
            "/usr/lib/postgresql/17/bin",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.join("initdb").exists())
        .expect("PostgreSQL server binaries (initdb, pg_ctl) must be installed");
        let dir = tempfile::Builder::new()
            .prefix("queues-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        chown(dir.path(), "postgres");
        let pg = Self {
            port: free_port(),
            dir,
            bin,
        };
        assert!(
            pg.as_postgres(
                "initdb",
                &[
                    "-D",
                    &pg.data(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync"
                ]
            ),
            "initdb failed"
        );
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, tool: &str, args: &[&str]) -> bool {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .args(args))
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start_server(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log").display().to_string();
        assert!(
            self.as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    &self.data(),
                    "-o",
                    &opts,
                    "-l",
                    &log,
                    "-w",
                    "-t",
                    "60",
                    "start"
                ]
            ),
            "pg_ctl start failed; see {log}"
        );
    }

    /// Stops the server (fast: connections are cut).
    pub fn stop_server(&self) {
        assert!(
            self.as_postgres("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]),
            "pg_ctl stop failed"
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.as_postgres(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}
