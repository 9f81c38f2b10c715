//! `wasi:http` outgoing requests through the allowlist: the host's replacement for
//! wasmtime-wasi-http's default sender.
//!
//! The order is the point: check the scheme, host and port; resolve a name once; check
//! every address; connect to one of exactly those addresses (the name is never looked up
//! again, so a rebinding DNS server cannot swap in another); TLS against the name; then
//! HTTP/1.1. Bodies are counted in both directions against the run's byte caps, and a
//! response that would pass the cap fails that request with `HTTP-response-body-size`
//! without the host buffering it. Redirects come back to the guest as they are: each hop
//! it follows is a new request, checked again.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::RunNet;
use super::counted::{Counted, Direction};
use super::rules::{self, Target};
use crate::config::{NetScheme, normalize_name};

/// The future that drives a connection after the response headers arrived.
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Result<(http::Response<WasiBody>, IoFuture), Error>;

/// The run's `wasi:http` hooks: every request goes through [`RunNet::send_http`].
pub(crate) struct NetHooks {
    pub(crate) net: Arc<RunNet>,
}

impl WasiHttpHooks for NetHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = Sent> + Send> {
        let net = self.net.clone();
        Box::new(async move { net.send_http(request, options).await })
    }

    // The run's own log says what failed; don't warn in the host's log for each guest error.
    fn p2_error_from_hyper(&mut self, err: &hyper::Error) -> ErrorCode {
        if err.is_timeout() {
            ErrorCode::ConnectionReadTimeout
        } else {
            ErrorCode::HttpProtocolError
        }
    }
}

impl RunNet {
    pub(super) async fn send_http(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Sent {
        let uri = request.uri().clone();
        let what = uri.to_string();
        let scheme = match uri.scheme_str() {
            Some("http") => NetScheme::Http,
            Some("https") => NetScheme::Https,
            _ => {
                self.refuse(&what, "only http and https requests are supported");
                return Err(Error::HttpRequestDenied);
            }
        };
        let host_text = uri.host().unwrap_or_default();
        let host_text = host_text.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if scheme == NetScheme::Https { 443 } else { 80 });
        let name;
        let target = match host_text.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(ip),
            Err(_) => match normalize_name(host_text) {
                Some(normalized) => {
                    name = normalized;
                    Target::Name(&name)
                }
                None => {
                    self.refuse(&what, &format!("{host_text:?} is not a valid host"));
                    return Err(Error::HttpRequestUriInvalid);
                }
            },
        };

        // The allowlist, then the caps: a refused request costs nothing and uses no quota.
        let grant = match target {
            Target::Name(name) => match rules::admit_name(&self.allowed, scheme, name, port) {
                Ok(grant) => Some(grant),
                Err(reason) => {
                    self.refuse(&what, &reason);
                    return Err(Error::HttpRequestDenied);
                }
            },
            Target::Ip(_) => None,
        };
        // An IP literal is checked once, here; its label is kept for the metrics.
        let ip_label = match target {
            Target::Ip(ip) => match rules::admit_address(&self.allowed, scheme, ip, port, None) {
                Ok(label) => Some(label),
                Err(reason) => {
                    self.refuse(&what, &reason);
                    return Err(Error::HttpRequestDenied);
                }
            },
            Target::Name(_) => None,
        };
        let permit = match self.in_flight.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let reason = format!(
                    "{} requests are already in flight (limits.concurrent_requests)",
                    self.limits.concurrent_requests
                );
                self.limit(&what, None, &reason);
                return Err(Error::ConnectionLimitReached);
            }
        };
        if let Err(reason) = self.take_request() {
            self.limit(&what, None, &reason);
            return Err(Error::ConnectionLimitReached);
        }

        let options = options.unwrap_or_default();
        let connect_timeout = shorter(options.connect_timeout, self.limits.connect_timeout);
        let connect_by = Instant::now() + connect_timeout;
        let (addresses, label) = match target {
            Target::Ip(ip) => {
                (vec![SocketAddr::new(ip, port)], ip_label.expect("an IP literal has a label"))
            }
            Target::Name(name) => {
                let grant = grant.expect("a name has a grant");
                let resolved = match tokio::time::timeout_at(
                    connect_by.into(),
                    tokio::net::lookup_host((name, port)),
                )
                .await
                {
                    Ok(Ok(found)) => found.collect::<Vec<_>>(),
                    Ok(Err(err)) => {
                        self.failed(&what, &grant.label, &format!("cannot resolve {name}: {err}"));
                        return Err(Error::DnsError {
                            rcode: Some(err.to_string()),
                            info_code: None,
                        });
                    }
                    Err(_) => {
                        self.failed(&what, &grant.label, &format!("resolving {name} timed out"));
                        return Err(Error::DnsTimeout);
                    }
                };
                let mut checked = Vec::new();
                let mut first_refusal = None;
                for address in resolved {
                    let ip = address.ip();
                    match rules::admit_address(&self.allowed, scheme, ip, port, Some(&grant)) {
                        Ok(_) => checked.push(address),
                        Err(reason) => {
                            let reason = format!("{name} resolves to {ip}; {reason}");
                            first_refusal.get_or_insert(reason);
                        }
                    }
                }
                if checked.is_empty() {
                    // Give the slot back: nothing was sent.
                    self.requests.fetch_sub(1, Ordering::Relaxed);
                    let reason = first_refusal.unwrap_or_else(|| format!("{name} has no address"));
                    self.refuse(&what, &reason);
                    return Err(Error::HttpRequestDenied);
                }
                (checked, grant.label)
            }
        };

        let stream = match connect_any(&addresses, connect_by).await {
            Ok(stream) => stream,
            Err((error, reason)) => {
                self.failed(&what, &label, &reason);
                return Err(error);
            }
        };
        let io: Box<dyn Stream> = if scheme == NetScheme::Https {
            match tls_connect(host_text, stream, connect_by).await {
                Ok(tls) => Box::new(tls),
                Err((error, reason)) => {
                    self.failed(&what, &label, &reason);
                    return Err(error);
                }
            }
        } else {
            Box::new(stream)
        };
        let handshake = hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(io));
        let (mut sender, connection) =
            match tokio::time::timeout_at(connect_by.into(), handshake).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(err)) => {
                    self.failed(&what, &label, &format!("HTTP handshake failed: {err}"));
                    return Err(Error::from(err));
                }
                Err(_) => {
                    self.failed(&what, &label, "connect timed out");
                    return Err(Error::ConnectionTimeout);
                }
            };

        // On the wire the request line carries only the path; the Host header the authority.
        *request.uri_mut() = http::Uri::builder()
            .path_and_query(uri.path_and_query().map_or("/", |p| p.as_str()))
            .build()
            .map_err(|_| Error::HttpRequestUriInvalid)?;
        let remaining_out = self.remaining(Direction::Out);
        if content_length(request.headers()).is_some_and(|len| len > remaining_out) {
            let reason = format!(
                "its body is larger than the {remaining_out} bytes left of limits.bytes_out"
            );
            self.limit(&what, Some(&label), &reason);
            return Err(Error::HttpRequestBodySize(Some(remaining_out)));
        }
        let request =
            request.map(|body| Counted::new(body, &self, Direction::Out, None).boxed_unsync());

        let first_byte = shorter(options.first_byte_timeout, self.limits.first_byte_timeout);
        let mut connection = Box::pin(connection);
        let send = tokio::time::timeout(first_byte, sender.send_request(request));
        tokio::pin!(send);
        let mut connection_done = false;
        let response = loop {
            tokio::select! {
                sent = &mut send => break sent,
                ended = &mut connection, if !connection_done => {
                    connection_done = true;
                    if let Err(err) = ended {
                        self.failed(&what, &label, &format!("connection failed: {err}"));
                        return Err(Error::from(err));
                    }
                }
            }
        };
        let response = match response {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                self.failed(&what, &label, &format!("request failed: {err}"));
                return Err(Error::from(err));
            }
            Err(_) => {
                let reason =
                    format!("no response within {}", humantime::format_duration(first_byte));
                self.failed(&what, &label, &reason);
                return Err(Error::ConnectionReadTimeout);
            }
        };

        let remaining_in = self.remaining(Direction::In);
        if content_length(response.headers()).is_some_and(|len| len > remaining_in) {
            let reason = format!(
                "the response ({} bytes) is larger than the {remaining_in} bytes left of limits.bytes_in",
                content_length(response.headers()).unwrap_or_default()
            );
            self.limit(&what, Some(&label), &reason);
            return Err(Error::HttpResponseBodySize(content_length(response.headers())));
        }
        self.tally(&label, "ok");
        let response = response.map(|body| {
            let body = body.map_err(Error::from);
            Counted::new(body, &self, Direction::In, Some((permit, what, label))).boxed_unsync()
        });
        let io: IoFuture = Box::new(async move {
            if connection_done {
                return Ok(());
            }
            connection.await.map_err(Error::from)
        });
        Ok((response, io))
    }

    /// A request that passed the allowlist but did not get a response.
    fn failed(&self, what: &str, label: &str, reason: &str) {
        self.tally(label, "error");
        self.event("warn", format!("{what} failed: {reason}"));
    }

    fn remaining(&self, direction: Direction) -> u64 {
        let (used, cap) = match direction {
            Direction::In => (&self.bytes_in, self.limits.bytes_in.0),
            Direction::Out => (&self.bytes_out, self.limits.bytes_out.0),
        };
        cap.saturating_sub(used.load(Ordering::Relaxed))
    }
}

fn shorter(asked: Option<Duration>, cap: Duration) -> Duration {
    asked.map_or(cap, |asked| asked.min(cap))
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers.get(http::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// What hyper reads and writes: a TCP stream, or TLS over one.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Connects to the first of `addresses` that answers before `deadline`.
async fn connect_any(
    addresses: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, (Error, String)> {
    let mut last = String::new();
    for address in addresses {
        match tokio::time::timeout_at(deadline.into(), TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(err)) => last = format!("cannot connect to {address}: {err}"),
            Err(_) => {
                return Err((
                    Error::ConnectionTimeout,
                    format!("connecting to {address} timed out"),
                ));
            }
        }
    }
    Err((Error::ConnectionRefused, last))
}

async fn tls_connect(
    host: &str,
    stream: TcpStream,
    deadline: Instant,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, (Error, String)> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
        Arc::new(
            rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth(),
        )
    });
    let server_name = match host.parse::<IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|err| {
            (Error::HttpRequestUriInvalid, format!("invalid TLS name {host}: {err}"))
        })?,
    };
    let connector = tokio_rustls::TlsConnector::from(config.clone());
    match tokio::time::timeout_at(deadline.into(), connector.connect(server_name, stream)).await {
        Ok(Ok(tls)) => Ok(tls),
        Ok(Err(err)) => Err((Error::TlsProtocolError, format!("TLS with {host} failed: {err}"))),
        Err(_) => Err((Error::ConnectionTimeout, format!("TLS with {host} timed out"))),
    }
}
