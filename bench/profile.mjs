// A CPU profile of the edge under load: where workerd spends its time serving one kind of
// request, by function (wasm functions by their Rust names), to find what a hot path pays for.
//
//   node bench/profile.mjs --origin http://127.0.0.1:PORT [--path /api/products/42]
//        [--method GET] [--header 'name: value' ...] [--body JSON] [--unique-header NAME]
//        [--seconds 5] [--concurrency 16] [--top 40] [--var NAME=VALUE ...]
//        [--config wrangler.toml] [--filter REGEX]
//
// Starts bench/miniflare.mjs with the V8 inspector open, sends the request until warm, then
// profiles (DevTools `Profiler`) while a closed loop of `--concurrency` requests runs for
// `--seconds`, and prints the functions with the most self time, then the most total time
// (self plus callees). `--unique-header NAME` gives each request its own value of that header
// (an `Idempotency-Key`, so every POST is a first attempt). `--filter REGEX` keeps only the
// functions whose name matches in both tables (`--filter '^breakwater'`: the edge's own code).
//
// Names need the wasm's name section: build with `BREAKWATER_WASM_OPT=0 sh scripts/build-edge.sh`
// (wasm-opt -Oz drops it; the profile's shares are then of unoptimised code, close enough to
// find where time goes, not to quote). The load runs in this Node process, outside workerd.

import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const { values: args } = parseArgs({
  options: {
    origin: { type: "string" },
    path: { type: "string", default: "/api/products/42" },
    method: { type: "string", default: "GET" },
    header: { type: "string", multiple: true, default: [] },
    body: { type: "string" },
    "unique-header": { type: "string" },
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "16" },
    top: { type: "string", default: "40" },
    filter: { type: "string" },
    var: { type: "string", multiple: true, default: [] },
    config: { type: "string" },
  },
});
if (!args.origin) fail("--origin <url> is required (any URL if the path never reaches it)");
const seconds = positive("--seconds", args.seconds);
const concurrency = positive("--concurrency", args.concurrency);
const top = positive("--top", args.top);
const headers = Object.fromEntries(
  args.header.map((h) => {
    const at = h.indexOf(":");
    if (at < 1) fail(`--header takes 'name: value', got ${JSON.stringify(h)}`);
    return [h.slice(0, at).trim(), h.slice(at + 1).trim()];
  }),
);

const port = await freePort();
const child = spawn(
  join(root, "node_modules/.bin/node"),
  [
    join(root, "bench/miniflare.mjs"),
    "--origin",
    args.origin,
    "--inspector-port",
    String(port),
    ...(args.config ? ["--config", args.config] : []),
    ...args.var.flatMap((v) => ["--var", v]),
  ],
  { stdio: ["pipe", "pipe", "inherit"] },
);
child.on("exit", (code) => {
  if (!stopping) fail(`bench/miniflare.mjs exited (${code}) before the profile was taken`);
});
let stopping = false;
const url = await new Promise((ok) => {
  createInterface({ input: child.stdout }).on("line", (line) => {
    if (line.startsWith("READY ")) ok(line.split(" ")[1]);
  });
});

let sent = 0;
const request = () => {
  const h = { ...headers };
  if (args["unique-header"]) h[args["unique-header"]] = `profile-${process.pid}-${sent}-${Date.now()}`;
  sent += 1;
  return fetch(url + args.path, { method: args.method, headers: h, body: args.body });
};
async function loop(until) {
  const statuses = new Map();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        const res = await request();
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }),
  );
  return statuses;
}

process.stderr.write(`profile: ${url} ready; warming for 1 s\n`);
await loop(Date.now() + 1000); // warm: the cache filled, the isolate compiled
const inspector = await connect(port);
await inspector.call("Profiler.enable");
await inspector.call("Profiler.setSamplingInterval", { interval: 100 });
await inspector.call("Profiler.start");
process.stderr.write(`profile: profiling ${args.method} ${args.path} for ${seconds} s\n`);
const started = Date.now();
const statuses = await loop(started + seconds * 1000);
const { profile } = await inspector.call("Profiler.stop");
const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
process.stdout.write(
  `${args.method} ${args.path}: ${answered} answers in ${seconds} s at ${concurrency} in flight ` +
    `(${[...statuses].map(([s, n]) => `${n} × ${s}`).join(", ")})\n\n`,
);
report(profile, answered);
stopping = true;
inspector.close();
child.stdin.end();

/** Self and total time per function name, as shares of the sampled time and µs per answer. */
function report(profile, answered) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const deltas = new Map();
  profile.samples.forEach((id, i) => {
    deltas.set(id, (deltas.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const self = new Map();
  const total = new Map();
  let all = 0;
  let idle = 0;
  for (const [id, us] of deltas) {
    const node = byId.get(id);
    const name = label(node);
    if (name === "(idle)" || name === "(program)") idle += us;
    all += us;
    self.set(name, (self.get(name) ?? 0) + us);
    // Total: each distinct function on the sample's stack, once.
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const n = label(byId.get(at));
      if (!seen.has(n)) {
        seen.add(n);
        total.set(n, (total.get(n) ?? 0) + us);
      }
    }
  }
  const busy = all - idle;
  process.stdout.write(
    `sampled ${(all / 1e3).toFixed(0)} ms, busy ${(busy / 1e3).toFixed(0)} ms ` +
      `(${((busy / answered) | 0)} µs per answer in the isolate's thread)\n`,
  );
  for (const [title, map] of [["self", self], ["total", total]]) {
    process.stdout.write(`\n| ${title} % of busy | µs/answer | function |\n|---:|---:|---|\n`);
    const keep = args.filter ? new RegExp(args.filter) : /./;
    const rows = [...map].filter(
      ([n]) => n !== "(idle)" && n !== "(root)" && n !== "(program)" && keep.test(n),
    );
    rows.sort((a, b) => b[1] - a[1]);
    for (const [name, us] of rows.slice(0, top)) {
      process.stdout.write(
        `| ${((100 * us) / busy).toFixed(1)} | ${(us / answered).toFixed(1)} | \`${name}\` |\n`,
      );
    }
  }
}

function label(node) {
  const f = node.callFrame;
  const name = f.functionName || "(anonymous)";
  const file = f.url ? f.url.split("/").pop() : "";
  return file && !name.startsWith("(") ? `${name} ${file}` : name;
}

/** The DevTools protocol on the first target the inspector lists. */
async function connect(port) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl);
  if (!target) fail(`the inspector on port ${port} lists no target`);
  // Miniflare's inspector proxy closes connections without an `Origin` it allows.
  const ws = new WebSocket(target.webSocketDebuggerUrl, { headers: { origin: "http://localhost" } });
  await new Promise((ok, no) => {
    ws.onopen = ok;
    ws.onerror = no;
  });
  let next = 0;
  const pending = new Map();
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    const p = pending.get(msg.id);
    // workerd answers a command with no result (`Profiler.start`) by echoing it back.
    if (!p) return;
    pending.delete(msg.id);
    if (msg.error) p.no(new Error(`${msg.error.message}`));
    else p.ok(msg.result);
  };
  return {
    call(method, params = {}) {
      next += 1;
      const id = next;
      return new Promise((ok, no) => {
        pending.set(id, { ok, no });
        ws.send(JSON.stringify({ id, method, params }));
      });
    },
    close() {
      ws.close();
    },
  };
}

function freePort() {
  return new Promise((ok) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

function positive(flag, text) {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) fail(`${flag} must be a positive number, got ${text}`);
  return n;
}

function fail(message) {
  process.stderr.write(`bench/profile.mjs: ${message}\n`);
  process.exit(2);
}
