// The operator dashboard: signs in with the admin token (a session cookie the script cannot
// read), then polls the operator API every POLL_MS and shows what the edge decides. Rates are the
// counters' differences between two polls. Nothing from the API is inserted as HTML.

const POLL_MS = 2000;
const HISTORY = 90;
/** The latency histograms' bucket bounds in ms, as the edge counts them (core::metrics). */
const BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
const TIERS = ["memory", "cache-api", "kv"];
const PRIORITIES = ["critical", "high", "normal", "low"];
/** Of the recent errors the edge keeps, how many the page lists (newest first). */
const RECENT_SHOWN = 10;

const $ = (id) => document.getElementById(id);
let timer = null;
let previous = null;
const history = [];

class SignedOut extends Error {}

/** A JSON call to the operator API; a 401 shows the sign-in form. */
async function call(path, init = {}) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
  if (response.status === 401) {
    showLogin();
    throw new SignedOut();
  }
  if (!response.ok) throw await problem(response);
  return response.status === 204 ? null : response.json();
}

/** A readable error from a problem+json answer: title, detail, Retry-After and request id. */
async function problem(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not problem+json: the status says enough.
  }
  const retry = response.headers.get("retry-after");
  const parts = [body.title ?? `HTTP ${response.status}`];
  if (body.detail) parts.push(body.detail);
  if (retry) parts.push(`retry in ${retry} s`);
  if (body.request_id) parts.push(`request ${body.request_id}`);
  return new Error(parts.join(" · "));
}

function showLogin() {
  clearInterval(timer);
  timer = null;
  previous = null;
  $("board").hidden = true;
  $("live").hidden = true;
  $("sign-out").hidden = true;
  $("login").hidden = false;
  $("token").focus();
}

function start() {
  $("login").hidden = true;
  $("login-error").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  $("live").hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, POLL_MS);
}

async function refresh() {
  try {
    const [overview, origins, dead] = await Promise.all([
      call("/_breakwater/overview"),
      call("/_breakwater/origins"),
      call("/_breakwater/dead-events?limit=20"),
    ]);
    render(overview, origins.origins, dead.dead_events);
    $("board-error").hidden = true;
    $("updated").textContent = new Date(overview.now_ms).toLocaleTimeString();
  } catch (e) {
    if (e instanceof SignedOut) return;
    $("board-error").textContent = e.message;
    $("board-error").hidden = false;
  }
}

/** Which of the dashboard's outcomes an answer counts under. */
function outcome({ status, cache }) {
  if (TIERS.includes(cache)) return "cache hit";
  if (status === 429) return "rate limited";
  if (status >= 500) return "server error";
  if (status >= 400) return "client error";
  return "answered";
}

function sumBy(entries, keyOf) {
  const sums = new Map();
  for (const [key, n] of entries) {
    const k = keyOf(key);
    if (k !== null) sums.set(k, (sums.get(k) ?? 0) + n);
  }
  return sums;
}

function render(overview, origins, dead) {
  const requests = overview.metrics.requests;
  const totals = sumBy(requests, outcome);
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  const restarted = previous && previous.since_ms !== overview.since_ms;
  const seconds = previous && !restarted ? (overview.now_ms - previous.now_ms) / 1000 : 0;
  const rate = (now, before) => (seconds > 0 ? Math.max(0, now - before) / seconds : 0);
  const before = previous && !restarted ? sumBy(previous.metrics.requests, outcome) : new Map();
  const beforeAll = [...before.values()].reduce((a, b) => a + b, 0);
  const rps = rate(all, beforeAll);
  if (seconds > 0) {
    history.push(rps);
    if (history.length > HISTORY) history.shift();
  }
  $("rps").textContent = seconds > 0 ? rps.toFixed(1) : "–";
  spark(history);
  rows("outcomes", [...totals].map(([name, n]) => [name, rate(n, before.get(name) ?? 0).toFixed(1), n]));

  const cached = requests.filter(([k]) => k.cache !== "none").reduce((a, [, n]) => a + n, 0);
  const hits = sumBy(requests, (k) => (TIERS.includes(k.cache) ? k.cache : null));
  rows("tiers", TIERS.map((t) => [t, hits.get(t) ?? 0, percent(hits.get(t) ?? 0, cached)]));
  const memory = overview.isolate;
  $("memory").textContent = `${memory.memory_keys} keys, ${bytes(memory.memory_bytes)} of ${bytes(memory.memory_capacity)}`;

  $("fraction").textContent = overview.fraction.toFixed(2);
  $("effective").textContent = overview.effective.toFixed(2);
  $("burn-short").textContent = overview.burn_short?.toFixed(2) ?? "no signal";
  $("burn-long").textContent = overview.burn_long?.toFixed(2) ?? "no signal";
  rows("shed", PRIORITIES.map((p) => [p, percent(overview.shed[p] ?? 0, 1)]));

  rows("refusals", Object.entries(overview.metrics.refusals));
  const limited = sumBy(requests, (k) => (k.status === 429 ? k.route : null));
  rows("limited", [...limited]);

  rows("origins", origins.map((o) => {
    const breaker = overview.breakers[o.url]?.phase ?? "closed";
    const healthy = o.health?.healthy ?? true;
    const h = overview.metrics.origins[o.url];
    return [
      o.url,
      { text: breaker, className: `state--${breaker}` },
      { text: healthy ? "healthy" : "unhealthy", className: healthy ? "" : "state--unhealthy" },
      o.isolate.ejected ? "yes" : "no",
      o.isolate.in_flight,
      h ? `${quantile(h, 0.5)} / ${quantile(h, 0.99)}` : "–",
    ];
  }));

  $("replay-all").hidden = dead.length === 0;
  rows("dead", dead.map((d) => [
    { text: d.id, code: true },
    d.reason,
    d.attempts ?? "–",
    new Date(d.at).toLocaleString(),
    { button: "Replay", onClick: () => replay({ ids: [d.id] }) },
  ]));

  rows("errors", [...overview.metrics.recent_errors].reverse().slice(0, RECENT_SHOWN).map((e) => [
    new Date(e.at_ms).toLocaleTimeString(),
    e.status,
    e.route,
    e.problem,
    { text: e.request_id, code: true },
  ]));
  $("epoch").textContent = overview.purge_epoch;
  rows("purges", overview.purges.map((p) => [p.epoch, p.kind, { text: p.item, code: true }]));
  previous = overview;
}

/** `q`'s quantile of a histogram, as the bound of the bucket that holds it. */
function quantile(h, q) {
  const count = h.counts.reduce((a, b) => a + b, 0);
  if (count === 0) return "–";
  let seen = 0;
  for (const [i, n] of h.counts.entries()) {
    seen += n;
    if (seen >= q * count) return i < BOUNDS_MS.length ? `≤ ${BOUNDS_MS[i]} ms` : "> 10 s";
  }
  return "–";
}

function percent(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)} %` : "–";
}

function bytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** Replaces a table's body with `data`: a cell is text, or {text, code, className}, or a button. */
function rows(table, data) {
  const body = $(table).tBodies[0];
  if (data.length === 0) {
    const td = document.createElement("td");
    td.colSpan = $(table).tHead.rows[0].cells.length;
    td.className = "muted";
    td.textContent = "none";
    const tr = document.createElement("tr");
    tr.append(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...data.map((cells) => {
    const tr = document.createElement("tr");
    for (const cell of cells) {
      const td = document.createElement("td");
      if (cell !== null && typeof cell === "object") {
        if (cell.button) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "button button--ghost";
          button.textContent = cell.button;
          button.addEventListener("click", cell.onClick);
          td.append(button);
        } else if (cell.code) {
          const code = document.createElement("code");
          code.textContent = cell.text;
          td.append(code);
        } else {
          td.textContent = cell.text;
          if (cell.className) td.className = cell.className;
        }
      } else {
        td.textContent = String(cell);
      }
      tr.append(td);
    }
    return tr;
  }));
}

function spark(values) {
  const svg = $("spark");
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? 300 / (values.length - 1) : 0;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(58 - (56 * v) / max).toFixed(1)}`).join(" ");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.replaceChildren(line);
}

async function replay(body) {
  try {
    const result = await call("/_breakwater/dead-events/replay", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    $("board-error").hidden = true;
    $("dead-title").dataset.replayed = String(result.replayed);
  } catch (e) {
    if (e instanceof SignedOut) return;
    $("board-error").textContent = `Replay failed: ${e.message}`;
    $("board-error").hidden = false;
  }
  refresh();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value;
  $("token").value = "";
  const response = await fetch("/_breakwater/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.status === 204) {
    start();
  } else {
    $("login-error").textContent = (await problem(response)).message;
    $("login-error").hidden = false;
  }
});

$("sign-out").addEventListener("click", async () => {
  await fetch("/_breakwater/session", { method: "DELETE", credentials: "same-origin" });
  showLogin();
});

$("replay-all").addEventListener("click", () => replay({ all: true }));

// A session may still be open from before: the first poll tells.
start();
