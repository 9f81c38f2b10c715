//! The `wasi:http` calls: one request out, one whole response back, blocking.
//!
//! The order of calls is `wasi:http`'s contract, and getting it wrong hangs or traps:
//!
//! - the body resource is taken before `handle` (which consumes the request) but written
//!   after it: the host only starts draining the body once the request is sent, so writing
//!   more than its buffer first would block forever;
//! - a failed body write is usually the symptom of a failed request (refused, connection
//!   lost), so the response future's error-code is preferred over the stream's;
//! - child resources (a stream, a body, a headers handle) are dropped before their parent,
//!   or the host traps.
//!
//! A GET takes no body resource at all: the host then sends an empty body without
//! `transfer-encoding: chunked`.

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    self, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody, OutgoingRequest,
    RequestOptions,
};
use wasip2::io::streams::StreamError;

use super::error::Kind;
use super::url::{Scheme, Target};
use super::{Method, Request, Response};

/// `blocking-write-and-flush` takes at most 4096 bytes per call.
const WRITE_CHUNK: usize = 4096;
/// Largest read asked of the host at once; it may return less.
const READ_CHUNK: u64 = 64 * 1024;

pub(crate) fn send(req: &Request, target: &Target<'_>) -> Result<Response, Kind> {
    let headers = types::Fields::new();
    for (name, value) in req.wire_headers() {
        headers.append(name, value.as_bytes()).map_err(|err| Kind::Header {
            name: name.to_owned(),
            error: header_error_name(&err),
        })?;
    }
    let outgoing = OutgoingRequest::new(headers);
    let uri_invalid = |what: &str| Kind::code("HTTP-request-URI-invalid", format!("bad {what}"));
    outgoing
        .set_method(&wasi_method(req.method()))
        .map_err(|()| Kind::code("HTTP-request-method-invalid", None))?;
    outgoing.set_scheme(Some(&wasi_scheme(target.scheme))).map_err(|()| uri_invalid("scheme"))?;
    outgoing.set_authority(Some(target.authority)).map_err(|()| uri_invalid("host or port"))?;
    outgoing
        .set_path_with_query(Some(&target.path_with_query))
        .map_err(|()| uri_invalid("path or query"))?;

    let body = match req.body_bytes() {
        [] => None,
        _ => Some(outgoing.body().map_err(|()| Kind::internal("request body taken twice"))?),
    };
    let options = req.timeout_value().map(options).transpose()?;
    let future = outgoing_handler::handle(outgoing, options).map_err(|c| Kind::from_wasi(&c))?;

    if let Some(body) = body
        && let Err(write_error) = write_body(body, req.body_bytes())
    {
        wait(&future)?;
        return Err(write_error);
    }
    let response = wait(&future)?;
    read_response(req, response)
}

fn options(timeout: Duration) -> Result<RequestOptions, Kind> {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let refused = |which: &str| {
        Kind::code("configuration-error", format!("the host does not support a {which} timeout"))
    };
    let options = RequestOptions::new();
    options.set_connect_timeout(Some(nanos)).map_err(|()| refused("connect"))?;
    options.set_first_byte_timeout(Some(nanos)).map_err(|()| refused("first-byte"))?;
    Ok(options)
}

fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), Kind> {
    let stream = body.write().map_err(|()| Kind::internal("request body stream taken twice"))?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(chunk).map_err(|err| match err {
            StreamError::Closed => Kind::Stream("the host closed the request body".to_owned()),
            StreamError::LastOperationFailed(io) => stream_error(io),
        })?;
    }
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|code| Kind::from_wasi(&code))
}

/// Block until the response head (status and headers) has arrived, or the request failed.
fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, Kind> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(code))) => return Err(Kind::from_wasi(&code)),
            Some(Err(())) => return Err(Kind::internal("response taken twice")),
            None => future.subscribe().block(),
        }
    }
}

fn read_response(req: &Request, response: IncomingResponse) -> Result<Response, Kind> {
    let status = response.status();
    let headers = {
        let fields = response.headers();
        fields.entries()
    };
    let headers = headers
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();

    let body = response.consume().map_err(|()| Kind::internal("response body taken twice"))?;
    let stream = body.stream().map_err(|()| Kind::internal("response stream taken twice"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(io)) => return Err(stream_error(io)),
        }
    }
    drop(stream);
    // Trailers are rare in responses to jobs' requests, and nothing here would read them.
    drop(IncomingBody::finish(body));
    Ok(Response::new(req.method(), req.url(), status, headers, bytes))
}

/// A body stream's failure, as the `wasi:http` error-code behind it when there is one.
fn stream_error(io: types::IoError) -> Kind {
    match types::http_error_code(&io) {
        Some(code) => Kind::from_wasi(&code),
        None => Kind::Stream(io.to_debug_string()),
    }
}

fn header_error_name(err: &types::HeaderError) -> &'static str {
    match err {
        types::HeaderError::InvalidSyntax => "invalid-syntax",
        types::HeaderError::Forbidden => "forbidden",
        types::HeaderError::Immutable => "immutable",
    }
}

fn wasi_method(method: Method) -> types::Method {
    match method {
        Method::Get => types::Method::Get,
        Method::Post => types::Method::Post,
        Method::Put => types::Method::Put,
        Method::Delete => types::Method::Delete,
        Method::Head => types::Method::Head,
        Method::Patch => types::Method::Patch,
    }
}

fn wasi_scheme(scheme: Scheme) -> types::Scheme {
    match scheme {
        Scheme::Http => types::Scheme::Http,
        Scheme::Https => types::Scheme::Https,
    }
}
