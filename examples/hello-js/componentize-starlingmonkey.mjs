// Builds a JS job with the StarlingMonkey engine by calling componentize-js's API directly:
// `jco componentize --backend starlingmonkey` fails with "failed to get path metadata" once
// @bytecodealliance/preview2-shim 0.26 is installed; the API (with preview2-shim 0.25.0
// beside it) works. It finds componentize-js in $SANDCRON_NODE_MODULES (set by
// target/toolchains/env.sh) or through node's own resolution.
// Usage: node componentize-starlingmonkey.mjs [--http] SOURCE.js WIT_DIR WORLD OUT.wasm
//   --http  keep the engine's `fetch` (it imports wasi:http/outgoing-handler); without it the
//           component imports no wasi:http at all.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const http = args[0] === "--http";
const [source, witPath, worldName, out] = http ? args.slice(1) : args;
if (!out) {
  console.error("usage: node componentize-starlingmonkey.mjs [--http] SOURCE.js WIT_DIR WORLD OUT.wasm");
  process.exit(2);
}
const modules = process.env.SANDCRON_NODE_MODULES;
const api = modules
  ? pathToFileURL(join(modules, "@bytecodealliance/componentize-js/src/componentize.js")).href
  : "@bytecodealliance/componentize-js";
const { componentize } = await import(api);
// stdio, clocks and random stay for the engine's own use (console, timers, Math.random).
// "fetch-event" (an exported wasi:http/incoming-handler) is never wanted: a job exports `run`.
const { component } = await componentize({
  sourcePath: source,
  witPath,
  worldName,
  disableFeatures: http ? ["fetch-event"] : ["http", "fetch-event"],
});
await writeFile(out, component);
