//! The stand-in over HTTPS: the same router behind tokio-rustls, so tests
//! can play a PBX with a certificate of their making (self-signed, expired,
//! marked as a CA) and still see what arrived.
//!
//! A connection whose handshake fails (the gateway refused the certificate)
//! never reaches the router and records nothing, which is exactly what a
//! real PBX would have received over it.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::{Listener, ListenerExt};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{StandIn, new_shared, router};

/// How long a client has to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl StandIn {
    /// Binds `addr` (port 0 for any) and serves HTTPS with `cert_pem` (the
    /// certificate, then any chain) and `key_pem` (its private key: PKCS#8,
    /// PKCS#1 or SEC1, as `openssl` or rcgen write them).
    pub async fn bind_tls(addr: &str, cert_pem: &str, key_pem: &str) -> io::Result<StandIn> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("stand-in TLS {what}: {e}"))
        };
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| invalid("key", &e))?;
        // The provider the gateway's client uses, so both ends are the one in the binary.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("versions", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid("certificate and key", &e))?;
        let addr: SocketAddr = addr.parse().map_err(|e| invalid("address", &e))?;
        let tcp = crate::net::bind(addr)?;
        let addr = tcp.local_addr()?;
        let listener = TlsListener::start(tcp, TlsAcceptor::from(Arc::new(config)));
        let shared = new_shared(true, None);
        let app = router(shared.clone());
        tokio::spawn(async move {
            // axum gives `ConnectInfo<SocketAddr>` to any tapped listener with that address type.
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener.tap_io(|_| {}), app).await {
                tracing::error!("stand-in PBX (TLS) stopped: {e}");
            }
        });
        Ok(StandIn { addr, shared, scheme: "https" })
    }
}

/// Accepted TLS connections. Handshakes run in their own tasks, so a slow
/// or refusing client does not hold up the next one.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: io::Result<SocketAddr>,
}

impl TlsListener {
    fn start(tcp: TcpListener, acceptor: TlsAcceptor) -> TlsListener {
        let local = tcp.local_addr();
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!("stand-in PBX (TLS): accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("stand-in PBX (TLS): handshake with {peer} failed: {e}"),
                        Err(_) => tracing::debug!("stand-in PBX (TLS): handshake with {peer} timed out"),
                    }
                });
            }
        });
        TlsListener { ready, local }
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task is gone: nothing more will arrive.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.local {
            Ok(a) => Ok(*a),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}
