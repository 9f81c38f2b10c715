# http-python: a sandcron job in Python that calls an HTTP endpoint (world job-http).
#
# GETs the URL in the manifest's [config] `url` through wasi:http and reports
# "GET URL -> STATUS (N bytes)". A status outside 200-299, or a request that gets no
# response (refused, unreachable, timed out), raises Err(JobError_Retryable(...)). A URL
# outside the manifest's [capabilities] allowed_hosts fails with HTTP-request-denied, which
# no retry can fix, so that one is fatal, as is a missing `url`. The payload "fail" takes
# the error path without a request.
#
# The world is `job-http` (wit/job-http.wit): the job world plus an import of
# wasi:http/outgoing-handler, because componentize-py only generates bindings for the
# imports of the world it is given. The request itself is in blocking_http.py.
# Build: bash build.sh
import blocking_http
import wit_world
from componentize_py_types import Err
from wit_world.imports import config, log
from wit_world.imports.log import Level
from wit_world.imports.sandcron_job_types import (
    JobError_Fatal,
    JobError_Retryable,
    RunContext,
    RunOutput,
)


class WitWorld(wit_world.WitWorld):
    def run(self, ctx: RunContext) -> RunOutput:
        if ctx.payload == b"fail":
            log.log(Level.WARN, "payload asked for a failure", [])
            raise Err(JobError_Retryable("asked to fail"))
        url = config.get("url")
        if url is None:
            raise Err(JobError_Fatal("no `url` in the manifest's [config]"))
        log.log(Level.INFO, f"GET {url}", [])
        try:
            response = blocking_http.get(url)
        except blocking_http.HttpError as e:
            raise Err(JobError_Fatal(str(e)) if e.denied else JobError_Retryable(str(e)))
        summary = f"GET {url} -> {response.status} ({len(response.body)} bytes)"
        log.log(Level.INFO, "response", [("status", str(response.status)), ("bytes", str(len(response.body)))])
        if not 200 <= response.status < 300:
            raise Err(JobError_Retryable(summary))
        return RunOutput(summary=summary)
