//! HTTPS for when `[auth]` is on. kubectl (client-go) never sends credentials over plain
//! HTTP, so an API with bearer tokens must speak TLS: at start a throw-away CA and a
//! server certificate for `127.0.0.1`/`localhost` are generated (nothing on disk, no key
//! in the repository), and the listener serves TLS and plain HTTP on the same port —
//! the first byte tells them apart (`0x16` opens a TLS handshake) — so test harnesses
//! that speak HTTP to `/sim/...` keep working. Handshakes run off the accept loop with a
//! deadline, so a client that stalls or sends garbage holds up nobody.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

/// The server's TLS material.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
    /// The CA certificate (DER) clients must trust.
    pub ca_der: Vec<u8>,
    /// The same in PEM.
    pub ca_pem: String,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// A fresh CA and server certificate.
    pub fn generate() -> Result<ServerTls, String> {
        let err = |e: rcgen::Error| format!("generating the TLS certificate: {e}");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(err)?)
            .map_err(err)?;
        let key = KeyPair::generate().map_err(err)?;
        let mut params = CertificateParams::new(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ])
        .map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-sim");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params.signed_by(&key, &ca).map_err(err)?;
        let ca_cert: &rcgen::Certificate = ca.as_ref();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone(), ca_cert.der().clone()];
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                chain,
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .map_err(|e| e.to_string())?;
        // HTTP/1 only: ALPN must not offer h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_der: ca_cert.der().to_vec(),
            ca_pem: ca_cert.pem(),
        })
    }
}

/// A connection: plain TCP or TLS over TCP.
pub type Conn = Either<TcpStream, TlsStream<TcpStream>>;

/// An axum listener that serves TLS and plain HTTP on one port.
#[derive(Debug)]
pub struct DualListener {
    rx: mpsc::Receiver<(Conn, SocketAddr)>,
    addr: SocketAddr,
}

const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);

impl DualListener {
    /// Start accepting on `listener` until `token` is cancelled.
    pub fn start(listener: TcpListener, tls: ServerTls, token: CancellationToken) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = token.cancelled() => break,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => {
                            tracing::debug!(error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    },
                };
                let tx = tx.clone();
                let acceptor = tls.acceptor.clone();
                tokio::spawn(async move {
                    let conn = tokio::time::timeout(HANDSHAKE_DEADLINE, async {
                        let mut first = [0u8; 1];
                        let n = stream.peek(&mut first).await.ok()?;
                        if n == 1 && first[0] == 0x16 {
                            acceptor.accept(stream).await.ok().map(Either::Right)
                        } else {
                            Some(Either::Left(stream))
                        }
                    })
                    .await;
                    if let Ok(Some(c)) = conn {
                        let _ = tx.send((c, peer)).await;
                    }
                });
            }
        });
        DualListener { rx, addr }
    }
}

impl axum::serve::Listener for DualListener {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept loop ended (shutdown): never yield another connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
