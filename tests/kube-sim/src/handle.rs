//! Starting the simulator in-process ([`Simulator::start`]) and controlling it
//! ([`SimHandle`]): address, kube client, kubeconfig, and the admin operations.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::admin;
use crate::auth::{AccessEntry, AuthConfig};
use crate::cluster::{self, Shared};
use crate::config::SimConfig;
use crate::error::{Error, Result};
use crate::faults::{ErrorRule, FaultConfig};

/// Entry point.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Start a simulator on the current tokio runtime, listening on `listen`
    /// (port 0 picks a free port). Fails when called outside a tokio runtime.
    pub fn start(config: SimConfig, listen: SocketAddr) -> Result<SimHandle> {
        config.validate()?;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::Config(format!("Simulator::start needs a tokio runtime: {e}")))?;
        let std_listener = std::net::TcpListener::bind(listen).map_err(|source| Error::Bind {
            addr: listen,
            source,
        })?;
        std_listener
            .set_nonblocking(true)
            .map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let addr = std_listener.local_addr().map_err(|source| Error::Bind {
            addr: listen,
            source,
        })?;
        let _guard = rt.enter();
        let listener =
            tokio::net::TcpListener::from_std(std_listener).map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let auth = config.auth.clone();
        let tls = match &auth {
            Some(_) => Some(crate::tls::ServerTls::generate().map_err(Error::Config)?),
            None => None,
        };
        let shared = cluster::build(config)?;
        let token = CancellationToken::new();
        rt.spawn(crate::controllers::run(shared.clone(), token.child_token()));
        let app = crate::server::router(shared.clone());
        let serve_token = token.child_token();
        match &tls {
            None => {
                rt.spawn(async move {
                    let server = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { serve_token.cancelled().await });
                    if let Err(e) = server.await {
                        tracing::warn!(error = %e, "kube-sim server stopped");
                    }
                });
            }
            Some(t) => {
                let dual =
                    crate::tls::DualListener::start(listener, t.clone(), token.child_token());
                rt.spawn(async move {
                    let server = axum::serve(dual, app)
                        .with_graceful_shutdown(async move { serve_token.cancelled().await });
                    if let Err(e) = server.await {
                        tracing::warn!(error = %e, "kube-sim server stopped");
                    }
                });
            }
        }
        Ok(SimHandle {
            addr,
            shared,
            token,
            auth,
            tls,
        })
    }
}

/// A running simulator. Dropping it shuts it down.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    token: CancellationToken,
    auth: Option<AuthConfig>,
    tls: Option<crate::tls::ServerTls>,
}

impl SimHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, or `https://` with `[auth]` (the same port also answers
    /// plain HTTP, see [`SimHandle::http_url`]).
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://{}", self.addr),
            None => self.http_url(),
        }
    }

    /// `http://127.0.0.1:PORT`, also when the API is served over TLS.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The PEM CA certificate clients must trust when `[auth]` turned HTTPS on.
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.ca_pem.clone())
    }

    /// A real kube client talking HTTP to this simulator (namespace `default`). With
    /// `[auth]` it carries the first administrator's token (none configured: no token,
    /// every request gets 401).
    pub fn client(&self) -> Result<kube::Client> {
        self.client_with(self.admin_token())
    }

    /// A kube client that authenticates as `who`: a user name, `NS/NAME` or
    /// `system:serviceaccount:NS:NAME` of a ServiceAccount configured in `[auth]`.
    pub fn client_as(&self, who: &str) -> Result<kube::Client> {
        let token = self.token_for(who)?;
        self.client_with(Some(&token))
    }

    /// A kube client with this bearer token (also a wrong one, to test refusals).
    pub fn client_with_token(&self, token: &str) -> Result<kube::Client> {
        self.client_with(Some(token))
    }

    fn client_with(&self, token: Option<&str>) -> Result<kube::Client> {
        // kube 5 with rustls needs a process-wide crypto provider even for http://; if the
        // process already installed one (e.g. the daemon's main), that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let uri = self
            .url()
            .parse()
            .map_err(|e| Error::Config(format!("bad url: {e}")))?;
        let mut config = kube::Config::new(uri);
        if let Some(tls) = &self.tls {
            config.root_cert = Some(vec![tls.ca_der.clone()]);
        }
        if let Some(t) = token {
            config.auth_info.token = Some(t.to_string().into());
        }
        Ok(kube::Client::try_from(config)?)
    }

    fn admin_token(&self) -> Option<&str> {
        self.auth.as_ref().and_then(AuthConfig::admin_token)
    }

    /// The bearer token of `who` (see [`SimHandle::client_as`]).
    pub fn token_for(&self, who: &str) -> Result<String> {
        self.auth
            .as_ref()
            .and_then(|a| a.token_for(who))
            .map(String::from)
            .ok_or_else(|| Error::Config(format!("no [auth] token for {who:?}")))
    }

    /// A kubeconfig for this simulator that kubectl and kube accept (with `[auth]`, the
    /// first administrator's token).
    pub fn kubeconfig_yaml(&self) -> String {
        match (self.admin_token(), &self.tls) {
            (Some(t), Some(tls)) => kubeconfig_with_token(&self.url(), &tls.ca_pem, t),
            _ => kubeconfig(&self.url()),
        }
    }

    /// A kubeconfig that authenticates as `who` (see [`SimHandle::client_as`]).
    pub fn kubeconfig_yaml_as(&self, who: &str) -> Result<String> {
        let ca = self.ca_pem().unwrap_or_default();
        Ok(kubeconfig_with_token(
            &self.url(),
            &ca,
            &self.token_for(who)?,
        ))
    }

    /// Write the kubeconfig to a file.
    pub fn write_kubeconfig(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        write(path.as_ref(), &self.kubeconfig_yaml())
    }

    /// Write a kubeconfig that authenticates as `who`.
    pub fn write_kubeconfig_as(&self, who: &str, path: impl AsRef<std::path::Path>) -> Result<()> {
        write(path.as_ref(), &self.kubeconfig_yaml_as(who)?)
    }

    /// What each identity was allowed to do so far (empty without `[auth]`): one entry
    /// per (user, verb, apiGroup, resource, subresource, namespace) with a count.
    pub fn access_log(&self) -> Vec<AccessEntry> {
        self.shared
            .lock()
            .auth
            .as_ref()
            .map(|a| a.access_log())
            .unwrap_or_default()
    }

    /// What the RBAC objects grant `who` (a configured user or ServiceAccount), each
    /// with whether the access log shows it used. A least-privilege test runs a workload
    /// as `who` and fails on every grant with `false`; the authorizer already refuses
    /// what is not granted.
    pub fn grants(&self, who: &str) -> Result<Vec<(crate::rbac::Grant, bool)>> {
        let mut c = self.shared.lock();
        let c = &mut *c;
        c.auth
            .as_mut()
            .and_then(|a| a.grants_of(&c.store, who))
            .ok_or_else(|| Error::Config(format!("no [auth] user or service account {who:?}")))
    }

    /// Forget the access log.
    pub fn clear_access_log(&self) {
        if let Some(a) = self.shared.lock().auth.as_mut() {
            a.clear_access_log();
        }
    }

    /// Change the clock speed (simulated seconds per wall second).
    pub fn set_speed(&self, speed: f64) -> Result<()> {
        admin::set_speed(&mut self.shared.lock(), speed)?;
        Ok(())
    }

    /// Jump the simulated clock forward (timers due by then fire at once).
    pub fn advance(&self, by: Duration) {
        admin::advance(&mut self.shared.lock(), by);
        self.shared.wake.notify_one();
    }

    /// Run one round of every controller now (after [`SimHandle::advance`], so that a
    /// test can assert on the consequences without waiting for the controller loop).
    pub fn settle(&self) {
        crate::controllers::round(&mut self.shared.lock());
    }

    /// Simulated time since start.
    pub fn sim_time(&self) -> Duration {
        self.shared.lock().clock.now()
    }

    /// Replace the fault rules.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<()> {
        faults.validate().map_err(Error::Config)?;
        self.shared.lock().faults.set(faults);
        Ok(())
    }

    /// Add one error rule.
    pub fn add_error_rule(&self, rule: ErrorRule) -> Result<()> {
        let mut c = self.shared.lock();
        let mut cfg = c.faults.config.clone();
        cfg.errors.push(rule);
        cfg.validate().map_err(Error::Config)?;
        c.faults.set(cfg);
        Ok(())
    }

    /// Remove every fault (rules, pending forced 410s, drop-after).
    pub fn clear_faults(&self) {
        let mut c = self.shared.lock();
        c.faults.set(FaultConfig::default());
        c.faults.forced_gone = 0;
    }

    /// Close every open watch stream now.
    pub fn drop_watches(&self) {
        admin::drop_watches(&self.shared);
    }

    /// Close each watch stream after it has sent `n` events (`None`: never).
    pub fn drop_watches_after(&self, n: Option<u64>) {
        self.shared.lock().faults.config.drop_watches_after = n;
    }

    /// Answer the next `n` watch requests with a `410 Gone` ERROR event.
    pub fn expire_next_watches(&self, n: u64) {
        self.shared.lock().faults.forced_gone += n;
    }

    /// Cordon (`true`) or uncordon a node.
    pub fn set_node_unschedulable(&self, node: &str, unschedulable: bool) -> Result<()> {
        admin::set_unschedulable(&mut self.shared.lock(), node, unschedulable)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Remove a node and its pods.
    pub fn delete_node(&self, node: &str) -> Result<()> {
        admin::delete_node(&mut self.shared.lock(), node)?;
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Grow or shrink a configured pool; returns the new node count.
    pub fn scale_pool(&self, pool: &str, count: usize) -> Result<usize> {
        let n = admin::scale_pool(&mut self.shared.lock(), pool, count)?;
        self.shared.wake.notify_one();
        Ok(n)
    }

    /// Create an object in-process (no HTTP, no fault injection), e.g. to seed a large
    /// cluster quickly. The resource is taken from `apiVersion`/`kind`.
    pub fn create_object(&self, object: Value) -> Result<Value> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let res = crate::resources::ALL
            .into_iter()
            .find(|r| r.def().api_version() == api_version && r.def().kind == kind)
            .ok_or_else(|| {
                Error::Config(format!("kube-sim does not serve {api_version} {kind}"))
            })?;
        let ns = crate::object::namespace(&object).to_string();
        let out = crate::api::create(
            &mut self.shared.lock(),
            res,
            &ns,
            object,
            &crate::api::WriteOpts::internal("kube-sim"),
        )?;
        self.shared.wake.notify_one();
        Ok(out)
    }

    /// The `/sim/stats` document.
    pub fn stats(&self) -> Value {
        admin::stats(&self.shared)
    }

    /// Stop serving: close watches, stop the controllers and the listener.
    pub fn shutdown(&self) {
        admin::drop_watches(&self.shared);
        self.token.cancel();
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn write(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// A kubeconfig for an HTTPS server at `url` whose certificate `ca_pem` signed, with a
/// bearer token.
pub fn kubeconfig_with_token(url: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    kubeconfig(url)
        .replace(
            "    server: ",
            &format!("    certificate-authority-data: {ca}\n    server: "),
        )
        .replace(
            "  user: {}\n",
            &format!("  user:\n    token: {}\n", Value::from(token)),
        )
}

/// A kubeconfig for a server at `url` without credentials.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kube-sim\n  cluster:\n    server: {url}\ncontexts:\n- name: kube-sim\n  context:\n    cluster: kube-sim\n    user: kube-sim\n    namespace: default\ncurrent-context: kube-sim\nusers:\n- name: kube-sim\n  user: {{}}\npreferences: {{}}\n"
    )
}
