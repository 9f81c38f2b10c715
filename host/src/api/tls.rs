//! TLS for the API (O6): `serve --tls-cert FILE --tls-key FILE` (PEM) loaded once at start
//! into a rustls server configuration, and the per-connection handshake the accept loop
//! (`server`) runs under the same idle timeout as a request.
//!
//! rustls with the ring provider, the stack wasmtime-wasi-http already brings, so TLS adds
//! no second crypto library. HTTP/1.1 only (ALPN `http/1.1`), as in cleartext. A client
//! that speaks plain HTTP to the TLS port gets a readable 400 `https_required` instead of
//! a dropped connection: the first byte of a TLS connection is always 0x16 (a handshake
//! record), so one peeked byte tells them apart.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::ApiError;

/// The API's TLS identity, ready to accept connections with.
#[derive(Clone)]
pub struct ApiTls {
    acceptor: TlsAcceptor,
}

impl fmt::Debug for ApiTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiTls")
    }
}

/// A certificate or key that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no usable PEM item of the kind needed.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// rustls refused the pair (e.g. the key is not the certificate's).
    #[error("{} with {}: {source}", cert.display(), key.display())]
    Identity {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls' reason.
        source: rustls::Error,
    },
}

impl ApiTls {
    /// Loads a PEM certificate chain (leaf first) and its PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })
        };
        let pem_error = |path: &Path, what: String| TlsError::Pem { path: path.into(), what };
        let cert_pem = read(cert)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_error(cert, format!("not a PEM certificate file: {e}")))?;
        if chain.is_empty() {
            let what = "no certificate in it (expected a `BEGIN CERTIFICATE` block)";
            return Err(pem_error(cert, what.into()));
        }
        let key_der = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| {
            let what = format!("no private key in it (expected a `BEGIN PRIVATE KEY` block): {e}");
            pem_error(key, what)
        })?;
        let identity = |source| TlsError::Identity { cert: cert.into(), key: key.into(), source };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(identity)?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(identity)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(ApiTls { acceptor: TlsAcceptor::from(Arc::new(config)) })
    }
}

/// What arrived on the TLS port.
pub(super) enum Accepted {
    /// A finished handshake.
    Tls(Box<TlsStream<TcpStream>>),
    /// Plain HTTP: answer it with [`https_required`] on the raw stream.
    Plain(TcpStream),
}

/// Tells TLS from plain HTTP by the first byte, then runs the handshake. The caller bounds
/// this by the idle timeout: a client that sends nothing, or half a handshake, is closed.
pub(super) async fn accept(tls: &ApiTls, stream: TcpStream) -> std::io::Result<Accepted> {
    /// The content type of a TLS handshake record, the first byte a TLS client sends.
    const HANDSHAKE: u8 = 0x16;
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if first[0] != HANDSHAKE {
        return Ok(Accepted::Plain(stream));
    }
    Ok(Accepted::Tls(Box::new(tls.acceptor.accept(stream).await?)))
}

/// The router for a plain-HTTP client on the TLS port: every request gets 400
/// `https_required`, and the connection closes after it.
pub(super) fn https_required() -> Router {
    Router::new().fallback(|| async {
        let message = "this API speaks https only: use https://HOST:PORT";
        let mut response: Response =
            ApiError::new(StatusCode::BAD_REQUEST, "https_required", message).into_response();
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    })
}
