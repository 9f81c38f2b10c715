// http-js: a sandcron job in JavaScript that calls an HTTP endpoint (world sandcron:job/job).
//
// GETs the URL in the manifest's [config] `url` with the engine's own `fetch` and reports
// "GET URL -> STATUS (N bytes)". A status outside 200-299, or a request that fails (refused,
// unreachable, or not in the manifest's [capabilities] allowed_hosts), becomes
// job-error::retryable; a missing `url` is fatal. The payload "fail" takes the error path
// without a request.
//
// Needs StarlingMonkey (bash build.sh): its `fetch` runs over wasi:http. QuickJS has no
// `fetch` (see docs/languages.md). `run` is a synchronous export in WIT; componentize-js
// resolves the promise an async export returns by running the engine's event loop inside
// the call, so `await` works here and the host sees an ordinary blocking call.
import { log } from "sandcron:job/log@0.1.0";
import { get as configGet } from "sandcron:job/config@0.1.0";

export async function run(ctx) {
  if (ctx.payload != null && new TextDecoder().decode(ctx.payload) === "fail") {
    log("warn", "payload asked for a failure", []);
    throw { tag: "retryable", val: "asked to fail" };
  }
  const url = configGet("url");
  if (url == null) {
    throw { tag: "fatal", val: "no `url` in the manifest's [config]" };
  }
  log("info", `GET ${url}`, []);
  let response, body;
  try {
    response = await fetch(url);
    body = new Uint8Array(await response.arrayBuffer());
  } catch (e) {
    throw { tag: "retryable", val: `GET ${url} failed: ${e}` };
  }
  const summary = `GET ${url} -> ${response.status} (${body.length} bytes)`;
  log("info", "response", [["status", String(response.status)], ["bytes", String(body.length)]]);
  if (!response.ok) {
    throw { tag: "retryable", val: summary };
  }
  return { summary };
}
