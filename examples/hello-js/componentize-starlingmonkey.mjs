// Builds a JS job with the StarlingMonkey engine by calling componentize-js's API directly:
// `jco componentize --backend starlingmonkey` fails with "failed to get path metadata" once
// @bytecodealliance/preview2-shim 0.26 is installed; the API (with preview2-shim 0.25.0
// beside it) works. It finds componentize-js in $SANDCRON_NODE_MODULES (set by
// target/toolchains/env.sh) or through node's own resolution.
// Usage: node componentize-starlingmonkey.mjs SOURCE.js WIT_DIR WORLD OUT.wasm
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [source, witPath, worldName, out] = process.argv.slice(2);
if (!out) {
  console.error("usage: node componentize-starlingmonkey.mjs SOURCE.js WIT_DIR WORLD OUT.wasm");
  process.exit(2);
}
const modules = process.env.SANDCRON_NODE_MODULES;
const api = modules
  ? pathToFileURL(join(modules, "@bytecodealliance/componentize-js/src/componentize.js")).href
  : "@bytecodealliance/componentize-js";
const { componentize } = await import(api);
// The job world needs no HTTP; stdio, clocks and random stay for the engine's own use.
const { component } = await componentize({
  sourcePath: source,
  witPath,
  worldName,
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
