// Runs the built edge worker (build/index.js + index_bg.wasm) under workerd through the Miniflare
// API, for the benchmark: `wrangler dev` puts a Node proxy in front of workerd that caps
// throughput (bench/README.md, "What it does, in one run"), Miniflare's socket is workerd's own.
//
//   node bench/miniflare.mjs --origin http://127.0.0.1:PORT [--memory-bytes N]
//                            [--var NAME=VALUE ...] [--persist DIR] [--scheduled-route]
//                            [--inspector-port N] [--verbose]
//
// `--var NAME=VALUE` (repeatable; `NAME:VALUE`, wrangler's spelling, works too) sets a var or a
// secret, replacing wrangler.toml's value: Miniflare binds both as text, as `wrangler dev --var`
// does. A table var (ADMISSION, SLO, BREAKER, CACHE_POLICY, IDEMPOTENCY_POLICY, WRITE_BEHIND)
// takes a JSON string, which the edge parses as it parses the table. `--origin` and
// `--memory-bytes` are shorthands for ORIGIN_URL and CACHE_MEMORY_BYTES; a `--var` of the same
// name wins.
//
// Under Miniflare the cron trigger never fires on its own. `--scheduled-route` lets the caller
// be the cron: `GET <url>/cdn-cgi/local/scheduled?cron=<expression>` runs the worker's
// `scheduled` handler once and answers `200 ok`, or `500` with the outcome (Miniflare's
// `unsafeTriggerHandlers`, which also opens `/cdn-cgi/local/email`; off without the flag, so
// those paths reach the worker as any other). The failover scenario fires it once a second.
//
// `--inspector-port N` opens the V8 inspector (DevTools protocol) of the worker on that port, as
// `wrangler dev` does; `bench/profile.mjs` uses it to take CPU profiles.
//
// Prints one line, `READY <url> miniflare=<v> workerd=<v> node=<v>`, on stdout once workerd
// accepts requests; everything else goes to stderr. KV, Durable Objects and the Cache API
// persist under DIR (default: a temp directory of its own, deleted on stop).
//
// Stops, disposing workerd, when stdin closes: the reliable way, and what happens when the
// parent exits for any reason. SIGTERM/SIGINT also stop it, but Miniflare and wrangler bundle
// several copies of `signal-exit`, whose listeners count each other's and can re-raise the
// signal before ours runs; workerd is still stopped then (by Miniflare's exit hook), but a temp
// directory of our own may be left behind.
//
// Bindings, vars, compatibility date/flags, module rules and the assets directory come from
// wrangler.toml through wrangler's own reader (`unstable_getMiniflareWorkerOptions`, offline), so
// nothing here duplicates the configuration; only what the flags name is overridden. That
// includes the queues: the producers EVENTS and EVENTS_DLQ, and this worker as the consumer of
// both with wrangler.toml's batching, retries and dead-letter queue, which Miniflare simulates
// in-process (queued messages live as long as the process). Miniflare is the copy wrangler
// depends on (resolved from wrangler's location), so the bench runs the same workerd as
// `wrangler dev`; it is not a direct dependency.

import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const { values: args } = parseArgs({
  options: {
    origin: { type: "string" },
    "memory-bytes": { type: "string" },
    var: { type: "string", multiple: true, default: [] },
    persist: { type: "string" },
    config: { type: "string", default: join(root, "wrangler.toml") },
    "scheduled-route": { type: "boolean", default: false },
    "inspector-port": { type: "string" },
    verbose: { type: "boolean", default: false },
  },
});
if (!args.origin) {
  fail("--origin <url> is required");
}
if (args["memory-bytes"] !== undefined && !/^[1-9][0-9]*$/.test(args["memory-bytes"])) {
  fail(`--memory-bytes must be a positive integer, got ${args["memory-bytes"]}`);
}
const overrides = Object.fromEntries(args.var.map(parseVar));

const require = createRequire(import.meta.url);
const wranglerEntry = require.resolve("wrangler");
const fromWrangler = createRequire(wranglerEntry);
const wrangler = await import(pathToFileURL(wranglerEntry).href);
const miniflare = await import(pathToFileURL(fromWrangler.resolve("miniflare")).href);
const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = miniflare;

const versions = {
  miniflare: packageVersion(fromWrangler, "miniflare"),
  workerd: packageVersion(createRequire(fromWrangler.resolve("miniflare")), "workerd"),
  node: process.version,
};

// wrangler's reader logs through console.log; keep stdout for the READY line alone.
const consoleLog = console.log;
console.log = (...xs) => console.error(...xs);
const { workerOptions, main } = wrangler.unstable_getMiniflareWorkerOptions(args.config);
console.log = consoleLog;
if (!main) {
  fail(`${args.config} has no \`main\``);
}

// wrangler's options locate modules by `modulesRules`, which Miniflare 5's v4 adapter refuses
// ("cannot convert ... without losing behavior"): list the worker's modules explicitly instead.
const { modulesRules: _rules, ...sourceless } = workerOptions;
const modules = workerModules(main);

const ownPersist = args.persist === undefined;
const persist = ownPersist ? mkdtempSync(join(tmpdir(), "breakwater-bench-mf-")) : args.persist;
function removePersist() {
  if (ownPersist) rmSync(persist, { recursive: true, force: true });
}

/** Miniflare's own messages, on stderr. */
class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

let mf;
try {
  mf = new Miniflare(options());
} catch (e) {
  removePersist();
  throw e;
}

function options() {
  return convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: 0, // a free port; the READY line says which
    cf: false, // the placeholder `request.cf`; fetching the real one needs the internet
    log: new StderrLog(args.verbose ? LogLevel.INFO : LogLevel.WARN),
    // The worker's console output (one line per failed request, for example) is noise in a
    // benchmark unless asked for; warnings and errors always show.
    handleStructuredLogs: ({ level, message }) => {
      if (args.verbose || level === "warn" || level === "error") {
        process.stderr.write(`[workerd ${level}] ${message}\n`);
      }
    },
    resourcePersistencePath: persist,
    unsafeTriggerHandlers: args["scheduled-route"],
    ...(args["inspector-port"] ? { inspectorPort: Number(args["inspector-port"]) } : {}),
    ...sourceless,
    unsafeInspectorProxy: args["inspector-port"] !== undefined,
    name: "breakwater",
    modules,
    modulesRoot: dirname(main),
    bindings: {
      ...sourceless.bindings,
      ORIGIN_URL: args.origin,
      ...(args["memory-bytes"] ? { CACHE_MEMORY_BYTES: args["memory-bytes"] } : {}),
      ...overrides,
    },
  });
}

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    removePersist();
    process.exit(code);
  }
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.on("error", () => stop(0));
process.stdin.resume();

try {
  const url = await mf.ready;
  const info = Object.entries(versions)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  process.stdout.write(`READY ${url.origin} ${info}\n`);
} catch (e) {
  console.error(e);
  await stop(1);
}

/**
 * The entry module and every module it imports by relative path, transitively (worker-build
 * emits `index.js` importing `./index_bg.wasm`). Types follow wrangler's default module rules.
 */
function workerModules(entry) {
  const types = { ".js": "ESModule", ".mjs": "ESModule", ".wasm": "CompiledWasm" };
  const seen = new Map();
  const visit = (path) => {
    if (seen.has(path)) return;
    const ext = extname(path);
    const type = types[ext];
    if (!type) fail(`${path}: no module type for ${ext} files`);
    seen.set(path, { type, path });
    if (type !== "ESModule") return;
    const source = readFileSync(path, "utf8");
    for (const [, spec] of source.matchAll(/\b(?:from|import)\s*["'](\.{1,2}\/[^"']+)["']/g)) {
      visit(resolve(dirname(path), spec));
    }
  };
  visit(resolve(entry));
  return [...seen.values()];
}

/** `NAME=VALUE` or `NAME:VALUE` → [NAME, VALUE]; the value is everything after the separator. */
function parseVar(spec) {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)[=:]([\s\S]*)$/.exec(spec);
  if (!m) fail(`--var takes NAME=VALUE, got ${JSON.stringify(spec)}`);
  return [m[1], m[2]];
}

function packageVersion(req, name) {
  try {
    const pkg = JSON.parse(readFileSync(req.resolve(`${name}/package.json`), "utf8"));
    return pkg.version;
  } catch {
    return "unknown";
  }
}

function fail(message) {
  process.stderr.write(`bench/miniflare.mjs: ${message}\n`);
  process.exit(2);
}
