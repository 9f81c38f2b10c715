# A blocking HTTP GET over wasi:http 0.2, for a synchronous export such as `run`.
#
# componentize-py's own helper (poll_loop.py) drives wasi:http from an asyncio loop; a job's
# `run` is a plain synchronous call, so this waits with `pollable.block()` instead, which
# parks the whole instance until the host has the response (the host's timeout still
# applies). Each wasi resource is released (`with`) before the one it came from: the host
# refuses to drop a parent while a child (pollable, stream, body) is alive.
import re
import urllib.parse
from dataclasses import dataclass

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.wasi_http_types import (
    ErrorCode,
    ErrorCode_HttpRequestDenied,
    Fields,
    Method_Get,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
    Scheme_Other,
)

# Bytes asked for per read; the host may return fewer.
READ_SIZE = 64 * 1024


@dataclass
class Response:
    status: int
    body: bytes


class HttpError(Exception):
    """The request got no response: refused by the host, unreachable, timed out, ...

    `code` is the wasi:http error-code case; the message names it as WIT does
    ("HTTP-request-denied", "connection-refused", ...).
    """

    def __init__(self, url: str, code: ErrorCode):
        self.code = code
        detail = getattr(code, "value", None)
        super().__init__(f"GET {url}: {wit_name(code)}" + (f" ({detail})" if detail else ""))

    @property
    def denied(self) -> bool:
        """The URL's origin is not in the manifest's [capabilities] allowed_hosts."""
        return isinstance(self.code, ErrorCode_HttpRequestDenied)


def wit_name(code: ErrorCode) -> str:
    """ErrorCode_HttpRequestDenied -> "HTTP-request-denied", as the WIT case is spelled."""
    words = re.findall(r"[A-Z][a-z0-9]*", type(code).__name__.removeprefix("ErrorCode_"))
    first = words[0].upper() if words[0] in ("Http", "Dns", "Tls") else words[0].lower()
    return "-".join([first] + [w.lower() for w in words[1:]])


def get(url: str) -> Response:
    """GET `url` and wait for the whole body. Raises HttpError when no response came."""
    parts = urllib.parse.urlsplit(url)
    request = OutgoingRequest(Fields())
    request.set_method(Method_Get())
    scheme = {"http": Scheme_Http(), "https": Scheme_Https()}.get(parts.scheme)
    request.set_scheme(scheme or Scheme_Other(parts.scheme))
    request.set_authority(parts.netloc)
    request.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    # A GET has no body: never taking `request.body()` sends an empty one.
    try:
        future = outgoing_handler.handle(request, None)
    except Err as refused:  # the host refused before sending, e.g. HTTP-request-denied
        raise HttpError(url, refused.value) from None
    with future:
        while (ready := future.get()) is None:
            with future.subscribe() as pollable:
                pollable.block()
    # `ready` is Ok(Ok(response)) or Ok(Err(error-code)); Err(None) only if taken twice.
    assert isinstance(ready, Ok), "the response is taken once"
    if isinstance(ready.value, Err):
        raise HttpError(url, ready.value.value)
    with ready.value.value as response:
        status = response.status()
        with response.consume() as body:
            with body.stream() as stream:
                chunks = []
                while True:
                    try:
                        chunks.append(stream.blocking_read(READ_SIZE))
                    except Err as e:
                        if isinstance(e.value, StreamError_Closed):
                            break
                        raise
    return Response(status, b"".join(chunks))
