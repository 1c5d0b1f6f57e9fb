//! HTTPS for the emulator, so that clients' TLS paths (private CAs, client certificates,
//! proxies that tunnel) are tested offline: a certificate authority and a server certificate for
//! `localhost` and `127.0.0.1` made at start (or PEM files given), and optionally a client
//! certificate required (mTLS).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};

/// How the emulator serves HTTPS.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// A server certificate chain and key (PEM); `None`: made at start, with a CA of its own.
    pub cert_and_key: Option<(Vec<u8>, Vec<u8>)>,
    /// Require a client certificate issued by one of these CAs (PEM).
    pub client_ca: Option<Vec<u8>>,
}

/// What a started TLS set-up gives the emulator: the acceptor and, when the emulator made its
/// own, the CA certificate clients must trust.
pub(crate) struct Ready {
    pub acceptor: TlsAcceptor,
    pub ca_pem: Option<String>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn bad(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned())
}

/// Makes a CA and a server certificate for localhost and 127.0.0.1 signed by it.
fn self_signed() -> std::io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String)>
{
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let err = |e: rcgen::Error| std::io::Error::other(e.to_string());
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "genesys-auth emulator CA");
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(err)?;
    leaf.distinguished_name
        .push(DnType::CommonName, "genesys-auth emulator");
    let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
    let key = PrivateKeyDer::try_from(key.serialize_der()).map_err(bad)?;
    Ok((vec![cert.der().clone()], key, ca_cert.pem()))
}

pub(crate) fn prepare(opts: &TlsOptions) -> std::io::Result<Ready> {
    let (chain, key, ca_pem) = match &opts.cert_and_key {
        None => {
            let (c, k, ca) = self_signed()?;
            (c, k, Some(ca))
        }
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("the server certificate is not PEM"))?;
            if chain.is_empty() {
                return Err(bad("the server certificate file holds no certificate"));
            }
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|_| bad("the server key is not a PEM private key"))?;
            (chain, key, None)
        }
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let builder = match &opts.client_ca {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots
                    .add(cert.map_err(|_| bad("the client CA file is not PEM"))?)
                    .map_err(|_| bad("the client CA file holds an unusable certificate"))?;
            }
            if roots.is_empty() {
                return Err(bad("the client CA file holds no certificate"));
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(&format!("the server certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Ready {
        acceptor: TlsAcceptor::from(Arc::new(config)),
        ca_pem,
    })
}

/// A listener that hands axum finished TLS connections. Handshakes run in their own tasks, so
/// that one slow or failing client holds up no other.
pub(crate) struct TlsListener {
    rx: mpsc::Receiver<(
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        SocketAddr,
    )>,
    addr: SocketAddr,
}

impl TlsListener {
    /// `handshake_timeout` bounds each handshake: a client that opens a connection and
    /// stalls is dropped.
    pub(crate) fn new(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        handshake_timeout: std::time::Duration,
    ) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                // Ends, and frees the port, when the server that reads `rx` is gone.
                let accepted = tokio::select! {
                    _ = tx.closed() => break,
                    a = tcp.accept() => a,
                };
                let Ok((stream, peer)) = accepted else {
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    // A failed handshake (an untrusted client certificate, say) only ends that
                    // connection.
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream));
                    if let Ok(Ok(tls)) = handshake.await {
                        let _ = tx.send((tls, peer)).await;
                    }
                });
            }
        });
        Ok(Self { rx, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task ends only with the runtime.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

/// The peer's address, for plain and TLS listeners alike (the IP allowlist needs it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Peer(pub SocketAddr);
