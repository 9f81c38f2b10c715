//! How a command reaches a running host's API: the HTTP agent (ureq, with rustls for an
//! https API and `--ca-cert` to trust a private CA) and what to tell the operator when the
//! call never gets an answer. Shared by every verb that talks to the API.
//!
//! `--ca-cert` replaces the public roots rather than adding to them: an operator who names
//! the CA of their host means "this host's certificate comes from here", and trusting the
//! whole web PKI besides would only widen who could stand in for it.

use std::io;
use std::path::Path;
use std::time::Duration;

use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::api_url::Scheme;
use crate::cli::ApiClientArgs;

/// The API's base URL (`http://` when the address names no scheme).
pub(crate) fn base_url(client: &ApiClientArgs) -> String {
    client.api.base_url(Scheme::Http)
}

/// An agent for `client`'s API that reports HTTP errors as responses; `Err` is a message
/// naming the `--ca-cert` file and what is wrong with it.
pub(crate) fn agent(client: &ApiClientArgs, timeout: Duration) -> Result<ureq::Agent, String> {
    let mut tls = TlsConfig::builder();
    if let Some(path) = &client.ca_cert {
        tls = tls.root_certs(trusted(path)?);
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls.build())
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// The certificates of a PEM file, as the only roots to trust.
fn trusted(path: &Path) -> Result<RootCerts, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("--ca-cert {shown}: cannot read it: {e}"))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(cert)) => certs.push(cert),
            Ok(_) => {}
            Err(e) => return Err(format!("--ca-cert {shown}: not a PEM file: {e}")),
        }
    }
    if certs.is_empty() {
        return Err(format!("--ca-cert {shown}: no `BEGIN CERTIFICATE` block in it"));
    }
    Ok(RootCerts::from(certs))
}

/// Why a call got no answer, and what to try: (error line, hint line).
pub(crate) fn explain(err: &ureq::Error, client: &ApiClientArgs) -> (String, String) {
    let api = base_url(client);
    match rustls_error(err) {
        Some(rustls::Error::InvalidCertificate(why)) => {
            use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
            let hint = match why {
                NotValidForName | NotValidForNameContext { .. } => {
                    "connect by a name or address the certificate lists (its subject alt names)"
                }
                _ if client.ca_cert.is_some() => {
                    "the certificate was not issued by the --ca-cert given: pass the CA (or the \
                     self-signed certificate) the host serves with"
                }
                _ => {
                    "for a private or self-signed certificate, pass it (or its CA) with \
                     --ca-cert FILE or SANDCRON_CA_CERT"
                }
            };
            (
                format!("the API at {api} presented a certificate that is not trusted: {why:?}"),
                hint.into(),
            )
        }
        Some(other) => (
            format!("TLS with the API at {api} failed: {other}"),
            "does the host serve plain http? Then use http://HOST:PORT".into(),
        ),
        None => (
            format!("cannot reach the sandcron API at {api}: {err}"),
            "is `sandcron serve` running? Set --api or SANDCRON_API to its address.".into(),
        ),
    }
}

/// The rustls error behind a failed call, however ureq wrapped it.
fn rustls_error(err: &ureq::Error) -> Option<&rustls::Error> {
    match err {
        ureq::Error::Rustls(inner) => Some(inner),
        ureq::Error::Io(io) => io_rustls(io),
        _ => None,
    }
}

fn io_rustls(err: &io::Error) -> Option<&rustls::Error> {
    let inner = err.get_ref()?;
    inner
        .downcast_ref::<rustls::Error>()
        .or_else(|| inner.downcast_ref::<io::Error>().and_then(io_rustls))
}
