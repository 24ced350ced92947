// Breakwater Goods: the shop, one page with four views switched by the URL's #fragment
// (catalogue `#/`, product `#/product/ID`, cart `#/cart`, account `#/account`), all through the
// edge's API.
//
// One ES module with no imports. The asset build does not rewrite JavaScript, so asset URLs are
// looked up in the asset manifest at run time (its `current` map: logical path → hashed path).
//
// Sessions: the access token lives in this page's memory only (never in storage a script on
// another page could read); the refresh token is an HttpOnly cookie the origin sets
// (`refresh_in_cookie`), which this script cannot read either. A page load asks for a fresh
// access token (`POST /api/auth/refresh` with `{}`) the first time a view needs one.
//
// Orders: one `Idempotency-Key` per checkout; a network error, a 502/503/504 or a 409 (the same
// key still in flight) is retried with the same key, so a dropped answer or a double click makes
// exactly one order, and a replayed answer (`Idempotent-Replayed: true`) is shown as the success
// it is.
//
// Browser tests can rely on: #products[data-state] (loading | ready | empty | error), one
// [data-product-id] per card, #error with #retry and #error-request-id, #prev / #next,
// #page-status[data-page], [data-view] sections, #cart-count, #checkout, #order-result
// [data-order-id][data-replayed], #orders rows [data-order-id].

const PRODUCTS = "/api/products";
const MANIFEST = "/asset-manifest.json";
const PRODUCT_IMAGE = "/img/product.svg";
const LOW_STOCK = 5;
/** Attempts of one checkout, the first included, before the error is shown. */
const ORDER_ATTEMPTS = 5;

const $ = (id) => document.getElementById(id);
const ui = {
  products: $("products"),
  heading: $("products-heading"),
  summary: $("summary"),
  error: $("error"),
  errorTitle: $("error-title"),
  errorDetail: $("error-detail"),
  errorRequest: $("error-request"),
  errorRequestId: $("error-request-id"),
  retry: $("retry"),
  notice: $("notice"),
  prev: $("prev"),
  next: $("next"),
  status: $("page-status"),
};

/** The hashed URL of an asset; the logical path until (or unless) the manifest has loaded. */
let assetUrl = (path) => path;

const manifestReady = fetch(MANIFEST, { headers: { accept: "application/json" } })
  .then((res) => (res.ok ? res.json() : null))
  .then((manifest) => {
    const current = manifest && manifest.current;
    if (current && typeof current === "object") {
      assetUrl = (path) => current[path] || path;
    }
  })
  // Unhashed names are served too (they revalidate), so a missing manifest only costs caching.
  .catch(() => {});

// --- Errors ------------------------------------------------------------------------------------

/** An error to show in the banner, from an `application/problem+json` body or a network failure. */
class ProblemError extends Error {
  constructor({ title, detail = "", status = 0, requestId = null, retryAfter = null, network = false }) {
    super(title);
    this.title = title;
    this.detail = detail;
    this.status = status;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
    this.network = network;
  }
}

/** The view needs a signed-in user and there is none. */
class SignInNeeded extends Error {}

function networkProblem() {
  return new ProblemError({
    title: "Can't reach the shop",
    detail: "Check your connection and try again.",
    network: true,
  });
}

async function problemFrom(res) {
  let problem = {};
  if ((res.headers.get("content-type") || "").includes("json")) {
    problem = await res.json().catch(() => ({}));
  }
  let detail = problem.detail || "";
  const retryAfter = Number.parseInt(res.headers.get("retry-after") || "", 10);
  const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null;
  if (wait) detail = `${detail} Try again in ${wait} second${wait === 1 ? "" : "s"}.`.trim();
  return new ProblemError({
    title: problem.title || `The shop answered ${res.status} ${res.statusText}`.trim(),
    detail,
    status: problem.status || res.status,
    requestId: problem.request_id || res.headers.get("x-request-id"),
    retryAfter: wait,
  });
}

let retryAction = () => {};

/** Shows `problem` in the banner; Retry runs `retry`. */
function showError(problem, retry = () => route()) {
  if (problem instanceof SignInNeeded) {
    location.hash = "#/account";
    return;
  }
  const p = problem instanceof ProblemError
    ? problem
    : new ProblemError({ title: "Something went wrong", detail: String(problem?.message || problem) });
  ui.errorTitle.textContent = p.title;
  ui.errorDetail.textContent = p.detail;
  ui.errorDetail.hidden = !p.detail;
  ui.errorRequestId.textContent = p.requestId || "";
  ui.errorRequest.hidden = !p.requestId;
  ui.error.dataset.status = String(p.status || "");
  ui.error.hidden = false;
  retryAction = retry;
}

function hideError() {
  ui.error.hidden = true;
}

function notify(text) {
  ui.notice.textContent = text;
  ui.notice.hidden = !text;
}

// --- Session and API ---------------------------------------------------------------------------

const session = { token: null, pending: null, email: null };

/** The access token: the one in memory, else a fresh one from the refresh cookie, else null. */
async function accessToken() {
  if (session.token) return session.token;
  session.pending ??= fetch("/api/auth/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: "{}",
  })
    .then(async (res) => (res.ok ? (await res.json()).access_token : null))
    .catch(() => null)
    .finally(() => { session.pending = null; });
  session.token = await session.pending;
  renderAccountLink();
  return session.token;
}

/**
 * Calls the API. `auth` adds the access token (and, on a 401, refreshes it once and retries);
 * answers other than 2xx throw a ProblemError, as does a network failure (`network: true`).
 */
async function api(path, { method = "GET", body, auth = false, headers = {} } = {}) {
  for (let attempt = 0; ; attempt++) {
    const h = { accept: "application/json", ...headers };
    if (body !== undefined) h["content-type"] = "application/json";
    if (auth) {
      const token = await accessToken();
      if (!token) throw new SignInNeeded();
      h.authorization = `Bearer ${token}`;
    }
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: h,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw networkProblem();
    }
    if (res.status === 401 && auth && attempt === 0) {
      session.token = null;
      continue;
    }
    if (!res.ok) throw await problemFrom(res);
    return res;
  }
}

async function signIn(email, password) {
  const res = await api("/api/auth/login", {
    method: "POST",
    body: { email, password, refresh_in_cookie: true },
  });
  session.token = (await res.json()).access_token;
  session.email = email;
  renderAccountLink();
}

async function signOut() {
  await fetch("/api/auth/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: "{}",
  }).catch(() => {});
  session.token = null;
  session.email = null;
  renderAccountLink();
  renderCartCount(null);
}

function renderAccountLink() {
  $("account-link").textContent = session.token ? "Account" : "Sign in";
}

// --- Rendering helpers ---------------------------------------------------------------------------

const counts = new Intl.NumberFormat();
const priceFormats = new Map();

function formatPrice(cents, currency) {
  if (!priceFormats.has(currency)) {
    let format = null;
    try {
      format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    } catch {
      // An unknown currency code: fall back to a plain number with the code.
    }
    priceFormats.set(currency, format);
  }
  const format = priceFormats.get(currency);
  if (!format) return `${(cents / 100).toFixed(2)} ${currency}`;
  // Minor units differ by currency (EUR 2, JPY 0); the formatter knows how many.
  return format.format(cents / 10 ** format.resolvedOptions().maximumFractionDigits);
}

function stockBadge(stock) {
  if (stock <= 0) return { text: "Out of stock", kind: "out" };
  if (stock <= LOW_STOCK) return { text: `Only ${stock} left`, kind: "low" };
  return { text: "In stock", kind: "ok" };
}

/** Creates an element; text goes in through textContent, never as HTML. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  node.append(...children);
  return node;
}

function button(text, onClick, attrs = {}) {
  const b = el("button", { type: "button", class: "button", ...attrs }, text);
  b.addEventListener("click", onClick);
  return b;
}

// --- Catalogue -----------------------------------------------------------------------------------

const catalogue = { page: pageFromUrl(), totalPages: null, controller: null };

function pageFromUrl() {
  const page = Number.parseInt(new URLSearchParams(location.search).get("page") || "1", 10);
  return Number.isSafeInteger(page) && page >= 1 ? page : 1;
}

function productCard(item) {
  const badge = stockBadge(item.stock);
  const nameId = `product-${item.id}-name`;
  return el(
    "li",
    { class: "product-card", "data-product-id": item.id, "aria-labelledby": nameId },
    el("img", {
      class: "product-card__image",
      src: assetUrl(PRODUCT_IMAGE),
      alt: item.name,
      width: 320,
      height: 240,
      loading: "lazy",
      decoding: "async",
    }),
    el(
      "div",
      { class: "product-card__body" },
      el("p", { class: "product-card__category" }, item.category),
      el("h3", { class: "product-card__name", id: nameId }, el("a", { href: `#/product/${item.id}` }, item.name)),
      el("p", { class: "product-card__description" }, item.description),
      el(
        "div",
        { class: "product-card__footer" },
        el("span", { class: "product-card__price", "data-price-cents": item.price_cents }, formatPrice(item.price_cents, item.currency)),
        el("span", { class: `badge badge--${badge.kind}`, "data-stock": item.stock }, badge.text),
      ),
      el("span", { class: "product-card__sku" }, item.sku),
    ),
  );
}

function renderProducts(data) {
  const items = Array.isArray(data.items) ? data.items : [];
  if (items.length === 0) {
    ui.products.replaceChildren(el("li", { class: "empty" }, "No products on this page."));
    ui.summary.textContent = data.total ? `${counts.format(data.total)} products` : "No products yet.";
  } else {
    ui.products.replaceChildren(...items.map(productCard));
    const first = (data.page - 1) * data.per_page + 1;
    const last = first + items.length - 1;
    ui.summary.textContent = `Showing ${counts.format(first)}–${counts.format(last)} of ${counts.format(data.total)} products`;
  }
  ui.products.dataset.state = items.length ? "ready" : "empty";
}

function renderPager() {
  const { page, totalPages } = catalogue;
  ui.prev.disabled = page <= 1;
  ui.next.disabled = totalPages === null || page >= totalPages;
  ui.status.dataset.page = String(page);
  ui.status.textContent = totalPages ? `Page ${counts.format(page)} of ${counts.format(totalPages)}` : `Page ${counts.format(page)}`;
  document.title = `Catalogue${page > 1 ? ` — page ${page}` : ""} · Breakwater Goods`;
}

async function loadCatalogue({ focus = false } = {}) {
  catalogue.controller?.abort();
  const controller = new AbortController();
  catalogue.controller = controller;
  const page = catalogue.page;

  ui.products.dataset.state = "loading";
  ui.products.setAttribute("aria-busy", "true");
  ui.summary.textContent = `Loading page ${counts.format(page)}…`;
  // Buttons stay enabled while loading (disabling a focused button drops keyboard focus); a newer
  // request simply aborts this one.
  try {
    const [res] = await Promise.all([api(`${PRODUCTS}?page=${page}`), manifestReady]);
    const data = await res.json();
    if (controller.signal.aborted) return;
    catalogue.totalPages = Number(data.total_pages) || 0;
    if (data.items?.length === 0 && catalogue.totalPages > 0 && page > catalogue.totalPages) {
      // A stale link past the end: show the last page instead of an empty one.
      goToPage(catalogue.totalPages, { replace: true, focus });
      return;
    }
    hideError();
    renderProducts(data);
    if (focus) {
      ui.heading.focus({ preventScroll: true });
      ui.heading.scrollIntoView({ block: "start", behavior: "smooth" });
    }
  } catch (err) {
    if (controller.signal.aborted) return;
    showError(err, () => loadCatalogue({ focus: true }));
    ui.products.dataset.state = "error";
    // Placeholder cards would suggest something is still loading.
    if (ui.products.querySelector(".product-card--skeleton")) ui.products.replaceChildren();
    ui.summary.textContent = "Products could not be loaded.";
  } finally {
    if (catalogue.controller === controller) {
      ui.products.setAttribute("aria-busy", "false");
      renderPager();
    }
  }
}

/** Shows catalogue page `page`, keeping it in the URL (`?page=N`) so reloads, links and Back work. */
function goToPage(page, { replace = false, focus = true } = {}) {
  catalogue.page = page;
  const url = new URL(location.href);
  url.searchParams.set("page", String(page));
  url.hash = "";
  history[replace ? "replaceState" : "pushState"]({ page }, "", url);
  loadCatalogue({ focus });
}

// --- Product -------------------------------------------------------------------------------------

async function showProduct(id) {
  const box = $("product");
  box.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  const res = await api(`${PRODUCTS}/${id}`);
  const item = await res.json();
  await manifestReady;
  document.title = `${item.name} · Breakwater Goods`;
  const quantity = el("input", { id: "quantity", type: "number", min: 1, max: 100, value: 1, "aria-label": "Quantity" });
  const badge = stockBadge(item.stock);
  box.replaceChildren(
    el("img", { src: assetUrl(PRODUCT_IMAGE), alt: item.name, width: 320, height: 240 }),
    el(
      "div",
      { "data-product-id": item.id },
      el("p", { class: "product-card__category" }, item.category),
      el("h1", {}, item.name),
      el("p", {}, item.description),
      el("p", { class: "product-page__price" }, formatPrice(item.price_cents, item.currency)),
      el("span", { class: `badge badge--${badge.kind}` }, badge.text),
      el(
        "div",
        { class: "product-page__actions" },
        quantity,
        button("Add to cart", () => addToCart(item, Number(quantity.value)), { id: "add-to-cart" }),
        button("👍 Useful", () => vote(item.id, 1), { class: "button button--ghost", id: "vote-up" }),
        button("👎 Not for me", () => vote(item.id, -1), { class: "button button--ghost", id: "vote-down" }),
      ),
    ),
  );
  // A view, written behind: the edge queues it and answers 202 at once.
  api(`${PRODUCTS}/${id}/views`, { method: "POST" }).catch(() => {});
}

async function addToCart(item, quantity) {
  try {
    await api(`/api/cart/items/${item.id}`, { method: "PUT", auth: true, body: { quantity } });
    hideError();
    notify(`${item.name} × ${quantity} is in your cart.`);
    refreshCartCount();
  } catch (err) {
    if (err instanceof SignInNeeded) notify("Sign in to keep a cart.");
    showError(err, () => addToCart(item, quantity));
  }
}

async function vote(id, value) {
  try {
    await api(`${PRODUCTS}/${id}/votes`, { method: "POST", body: { value } });
    hideError();
    notify("Thanks, your vote is counted (the rankings show it within seconds).");
  } catch (err) {
    showError(err, () => vote(id, value));
  }
}

// --- Cart and checkout ---------------------------------------------------------------------------

let cart = null;

function renderCartCount(c) {
  const n = c ? c.items.reduce((sum, line) => sum + line.quantity, 0) : 0;
  $("cart-count").textContent = String(n);
  $("cart-count").hidden = n === 0;
}

async function refreshCartCount() {
  if (!session.token) return;
  try {
    renderCartCount(await loadCart());
  } catch {
    // The count is a nicety; the cart view shows any error.
  }
}

async function showCart() {
  const signedIn = await accessToken();
  $("cart-signin").hidden = Boolean(signedIn);
  if (!signedIn) {
    for (const id of ["cart", "cart-empty", "checkout"]) $(id).hidden = true;
    return;
  }
  await loadCart();
  renderCart();
}

function renderCart() {
  renderCartCount(cart);
  const empty = cart.items.length === 0;
  $("cart").hidden = empty;
  $("cart-empty").hidden = !empty;
  $("checkout").hidden = empty;
  $("cart").tBodies[0].replaceChildren(...cart.items.map((line) => {
    const quantity = el("input", { type: "number", min: 1, max: 100, value: line.quantity, "aria-label": `Quantity of ${line.name}` });
    quantity.addEventListener("change", () => setQuantity(line.product_id, Number(quantity.value)));
    return el(
      "tr",
      { "data-product-id": line.product_id },
      el("td", {}, el("a", { href: `#/product/${line.product_id}` }, line.name)),
      el("td", {}, quantity),
      el("td", {}, formatPrice(line.line_total_cents, cart.currency)),
      el("td", {}, button("Remove", () => setQuantity(line.product_id, 0), { class: "button button--ghost" })),
    );
  }));
  $("cart-total").textContent = cart.currency ? formatPrice(cart.total_cents, cart.currency) : "";
}

/** The cart as the origin has it now. */
async function loadCart() {
  cart = await (await api("/api/cart", { auth: true })).json();
  return cart;
}

async function setQuantity(productId, quantity) {
  try {
    const path = `/api/cart/items/${productId}`;
    if (quantity > 0) await api(path, { method: "PUT", auth: true, body: { quantity } });
    else await api(path, { method: "DELETE", auth: true });
    await loadCart();
    hideError();
    renderCart();
  } catch (err) {
    showError(err, () => setQuantity(productId, quantity));
  }
}

let placing = false;

/** Places the cart as one order: one key for every attempt, so retries can never order twice. */
async function checkout() {
  if (placing || !cart || cart.items.length === 0) return;
  placing = true;
  const place = $("checkout");
  place.disabled = true;
  place.textContent = "Placing order…";
  const result = $("order-result");
  result.hidden = true;
  const key = `order-${crypto.randomUUID()}`;
  const items = cart.items.map(({ product_id, quantity }) => ({ product_id, quantity }));
  try {
    const res = await withRetries(() =>
      api("/api/orders", { method: "POST", auth: true, body: { items }, headers: { "idempotency-key": key } }));
    const order = await res.json();
    const replayed = res.headers.get("idempotent-replayed") === "true";
    hideError();
    notify("");
    result.textContent = `Order #${order.id} placed: ${formatPrice(order.total_cents, order.currency)}.` +
      (replayed ? " (The first answer was lost on the way; this is the same order, not a second one.)" : "");
    result.dataset.orderId = String(order.id);
    result.dataset.replayed = String(replayed);
    result.hidden = false;
    // The order is placed; what it bought leaves the cart (a failure here is only shown).
    for (const { product_id } of items) {
      await api(`/api/cart/items/${product_id}`, { method: "DELETE", auth: true });
    }
    await loadCart();
    renderCart();
  } catch (err) {
    showError(err, checkout);
  } finally {
    placing = false;
    place.disabled = false;
    place.textContent = "Place order";
  }
}

/** Runs `send` until it succeeds, retrying what a retry with the same key can fix. */
async function withRetries(send) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await send();
    } catch (err) {
      const retryable = err instanceof ProblemError && (err.network || [409, 502, 503, 504].includes(err.status));
      if (!retryable || attempt >= ORDER_ATTEMPTS) throw err;
      notify(`Still placing your order (attempt ${attempt + 1} of ${ORDER_ATTEMPTS})…`);
      const wait = err.retryAfter ? err.retryAfter * 1000 : 250 * 2 ** attempt;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

// --- Account -------------------------------------------------------------------------------------

async function showAccount() {
  const signedIn = await accessToken();
  $("signin").hidden = Boolean(signedIn);
  $("orders-panel").hidden = !signedIn;
  if (!signedIn) return;
  $("signed-in-as").textContent = session.email ? `Signed in as ${session.email}.` : "Signed in.";
  const page = await (await api("/api/orders", { auth: true })).json();
  $("orders").tBodies[0].replaceChildren(...page.items.map((order) => el(
    "tr",
    { "data-order-id": order.id },
    el("td", {}, `#${order.id}`),
    el("td", {}, new Date(order.created_at).toLocaleString()),
    el("td", {}, String(order.items.reduce((sum, line) => sum + line.quantity, 0))),
    el("td", {}, formatPrice(order.total_cents, order.currency)),
  )));
  if (page.items.length === 0) {
    $("orders").tBodies[0].replaceChildren(el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No orders yet.")));
  }
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("email").value.trim();
  const password = $("password").value;
  try {
    if (event.submitter?.dataset.action === "signup") {
      await api("/api/users", { method: "POST", body: { email, password } });
    }
    await signIn(email, password);
    $("password").value = "";
    hideError();
    notify(`Signed in as ${email}.`);
    refreshCartCount();
    showAccount();
  } catch (err) {
    showError(err, () => {});
  }
});

$("signout").addEventListener("click", async () => {
  await signOut();
  notify("Signed out.");
  showAccount();
});

// --- Routing -------------------------------------------------------------------------------------

/** Shows the view the URL's #fragment names, and loads what it needs. */
async function route() {
  const hash = location.hash || "#/";
  const product = /^#\/product\/(\d+)$/.exec(hash);
  const view = product ? "product" : { "#/cart": "cart", "#/account": "account" }[hash] ?? "catalogue";
  for (const section of document.querySelectorAll("[data-view]")) {
    section.hidden = section.dataset.view !== view;
  }
  for (const link of document.querySelectorAll("[data-view-link]")) {
    if (link.dataset.viewLink === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  hideError();
  notify("");
  try {
    if (view === "product") await showProduct(product[1]);
    else if (view === "cart") await showCart();
    else if (view === "account") await showAccount();
    else {
      document.title = "Catalogue · Breakwater Goods";
      await loadCatalogue();
    }
  } catch (err) {
    showError(err);
  }
}

ui.prev.addEventListener("click", () => goToPage(Math.max(1, catalogue.page - 1)));
ui.next.addEventListener("click", () => goToPage(catalogue.page + 1));
ui.retry.addEventListener("click", () => retryAction());
$("checkout").addEventListener("click", checkout);
window.addEventListener("hashchange", route);
window.addEventListener("popstate", () => {
  catalogue.page = pageFromUrl();
  if (!location.hash || location.hash === "#/") loadCatalogue();
});

renderPager();
route();
