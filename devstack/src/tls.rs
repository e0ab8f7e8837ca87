//! The devstack's TLS mode (`--tls`): both servers speak HTTPS with a fixed test certificate for
//! 127.0.0.1/localhost, issued by a test CA checked in under `devstack/keys/` (so clients can be
//! pointed at it with `ca_file`). Also the accept loop both servers share, with or without TLS (every
//! listener the devstack has goes through it).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;

/// The test CA's certificate (PEM), for clients' `ca_file`.
pub const CA_PEM: &str = include_str!("../keys/tls-ca.pem");
const SERVER_CERT: &str = include_str!("../keys/tls-server.pem");
const SERVER_KEY: &str = include_str!("../keys/tls-server-key.pem");
/// The second test CA (`tls_two_cas`: the S3 endpoint's), and the certificate it issued.
pub const S3_CA_PEM: &str = include_str!("../keys/tls-s3-ca.pem");
const S3_SERVER_CERT: &str = include_str!("../keys/tls-s3-server.pem");
const S3_SERVER_KEY: &str = include_str!("../keys/tls-s3-server-key.pem");

/// The acceptor for the test CA's certificate.
pub fn acceptor() -> TlsAcceptor {
    acceptor_for(SERVER_CERT, SERVER_KEY)
}

/// The acceptor for the second CA's certificate (the S3 endpoint with `tls_two_cas`).
pub fn s3_acceptor() -> TlsAcceptor {
    acceptor_for(S3_SERVER_CERT, S3_SERVER_KEY)
}

fn acceptor_for(cert: &str, key: &str) -> TlsAcceptor {
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.as_bytes()).collect::<Result<_, _>>().expect("checked-in cert");
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("checked-in key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("checked-in cert and key match");
    TlsAcceptor::from(Arc::new(config))
}

/// Serves connections from `listener` until `stop`, each with a fresh service from `make`, over TLS
/// when an acceptor is given. In-flight requests finish before it returns.
pub async fn serve<F, S, B>(listener: TcpListener, tls: Option<TlsAcceptor>, mut stop: watch::Receiver<bool>, make: F)
where
    F: Fn() -> S + Send + Sync + 'static,
    S: hyper::service::Service<hyper::Request<Incoming>, Response = hyper::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let graceful = Arc::new(hyper_util::server::graceful::GracefulShutdown::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                // As MinIO's connections (Go's net package sets TCP_NODELAY on every accepted one).
                // With Nagle on, a response written in two pieces (headers, then the body) waits for
                // the client's delayed ACK: ~40 ms per request on a kept-alive connection.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                let (tls, svc, graceful) = (tls.clone(), make(), graceful.clone());
                tokio::spawn(async move {
                    let io = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(s) => Either::Left(s),
                            Err(e) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => Either::Right(stream),
                    };
                    let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(io), svc)
                        .into_owned();
                    if let Err(e) = graceful.watch(conn).await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    match Arc::try_unwrap(graceful) {
        Ok(g) => g.shutdown().await,
        Err(_) => tracing::debug!("connections still starting at shutdown"),
    }
}
