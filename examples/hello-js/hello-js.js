// hello-js: a sandcron job in JavaScript (world sandcron:job/job).
//
// Shows the imports from JS: logs through `log`, reads the `greeting` key of the manifest's
// [config], counts its runs in per-job `state` (a decimal string under the key "runs") and
// reports "{greeting}, run #{n}". The payload "fail" (`sandcron run --payload fail`) takes
// the error path: a thrown `{ tag: "retryable", val }` becomes job-error::retryable; the
// payload "throw" throws an uncaught `Error`, whose message becomes the run's reason.
// Build: bash build.sh   (QuickJS; `bash build.sh --starlingmonkey` for the other engine)
import { log } from "sandcron:job/log@0.1.0";
import { get as configGet } from "sandcron:job/config@0.1.0";
import { get as stateGet, set as stateSet } from "sandcron:job/state@0.1.0";

// QuickJS has no TextEncoder/TextDecoder: UTF-8 through the URI escapes works in both engines.
const utf8 = {
  encode: (s) => Uint8Array.from(unescape(encodeURIComponent(s)), (c) => c.charCodeAt(0)),
  decode: (bytes) => decodeURIComponent(escape(String.fromCharCode(...bytes))),
};

export function run(ctx) {
  log("info", `hello-js starting: attempt ${ctx.attempt} (${ctx.trigger})`, []);
  const payload = ctx.payload == null ? null : utf8.decode(ctx.payload);
  if (payload === "fail") {
    log("warn", "payload asked for a failure", []);
    throw { tag: "retryable", val: "asked to fail" };
  }
  if (payload === "throw") throw new Error("bad input");
  const greeting = configGet("greeting") ?? "hello";
  const previous = stateGet("runs");
  const runs = (previous == null ? 0 : Number(utf8.decode(previous))) + 1;
  stateSet("runs", utf8.encode(String(runs)));
  log("info", "counted this run", [["runs", String(runs)]]);
  return { summary: `${greeting}, run #${runs}` };
}
