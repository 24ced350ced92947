// Breakwater Goods catalogue: lists products from the origin's API, through the edge.
//
// One ES module with no imports. The asset build does not rewrite JavaScript, so asset URLs are
// looked up in the asset manifest at run time (its `current` map: logical path → hashed path).
// Browser tests can rely on: #products[data-state] (loading | ready | empty | error), one
// [data-product-id] per card, #error with #retry, #prev / #next, #page-status[data-page].

const API = "/api/products";
const MANIFEST = "/asset-manifest.json";
const PRODUCT_IMAGE = "/img/product.svg";
const LOW_STOCK = 5;

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
  prev: $("prev"),
  next: $("next"),
  status: $("page-status"),
};

const state = { page: pageFromUrl(), totalPages: null, controller: null };

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

/** An error to show in the banner, from an `application/problem+json` body or a network failure. */
class ProblemError extends Error {
  constructor({ title, detail = "", status = 0, requestId = null }) {
    super(title);
    this.title = title;
    this.detail = detail;
    this.status = status;
    this.requestId = requestId;
  }
}

function pageFromUrl() {
  const page = Number.parseInt(new URLSearchParams(location.search).get("page") || "1", 10);
  return Number.isSafeInteger(page) && page >= 1 ? page : 1;
}

async function fetchPage(page, signal) {
  let res;
  try {
    res = await fetch(`${API}?page=${page}`, { signal, headers: { accept: "application/json" } });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ProblemError({
      title: "Can't reach the shop",
      detail: "Check your connection and try again.",
    });
  }
  const requestId = res.headers.get("x-request-id") || res.headers.get("request-id");
  if (!res.ok) throw await problemFrom(res, requestId);
  try {
    return await res.json();
  } catch {
    throw new ProblemError({ title: "The shop sent an unreadable answer", status: res.status, requestId });
  }
}

async function problemFrom(res, requestId) {
  let problem = {};
  if ((res.headers.get("content-type") || "").includes("json")) {
    problem = await res.json().catch(() => ({}));
  }
  let detail = problem.detail || "";
  const retryAfter = Number.parseInt(res.headers.get("retry-after") || "", 10);
  if (Number.isFinite(retryAfter) && retryAfter > 0) {
    detail = `${detail} Try again in ${retryAfter} second${retryAfter === 1 ? "" : "s"}.`.trim();
  }
  return new ProblemError({
    title: problem.title || `The shop answered ${res.status} ${res.statusText}`.trim(),
    detail,
    status: problem.status || res.status,
    requestId: problem.request_id || requestId,
  });
}

// --- Rendering ---------------------------------------------------------------------------------

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
      el("h3", { class: "product-card__name", id: nameId }, item.name),
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
  const { page, totalPages } = state;
  ui.prev.disabled = page <= 1;
  ui.next.disabled = totalPages === null || page >= totalPages;
  ui.status.dataset.page = String(page);
  ui.status.textContent = totalPages ? `Page ${counts.format(page)} of ${counts.format(totalPages)}` : `Page ${counts.format(page)}`;
  document.title = `Catalogue${page > 1 ? ` — page ${page}` : ""} · Breakwater Goods`;
}

function showError(problem) {
  ui.errorTitle.textContent = problem.title;
  ui.errorDetail.textContent = problem.detail;
  ui.errorDetail.hidden = !problem.detail;
  ui.errorRequestId.textContent = problem.requestId || "";
  ui.errorRequest.hidden = !problem.requestId;
  ui.error.dataset.status = String(problem.status || "");
  ui.error.hidden = false;
  ui.products.dataset.state = "error";
  // Placeholder cards would suggest something is still loading.
  if (ui.products.querySelector(".product-card--skeleton")) ui.products.replaceChildren();
  ui.summary.textContent = "Products could not be loaded.";
}

// --- Loading and navigation --------------------------------------------------------------------

async function load({ focus = false } = {}) {
  state.controller?.abort();
  const controller = new AbortController();
  state.controller = controller;
  const page = state.page;

  ui.products.dataset.state = "loading";
  ui.products.setAttribute("aria-busy", "true");
  ui.summary.textContent = `Loading page ${counts.format(page)}…`;
  // Buttons stay enabled while loading (disabling a focused button drops keyboard focus); a newer
  // request simply aborts this one.

  try {
    const [data] = await Promise.all([fetchPage(page, controller.signal), manifestReady]);
    if (controller.signal.aborted) return;
    state.totalPages = Number(data.total_pages) || 0;
    if (data.items?.length === 0 && state.totalPages > 0 && page > state.totalPages) {
      // A stale link past the end: show the last page instead of an empty one.
      go(state.totalPages, { replace: true, focus });
      return;
    }
    ui.error.hidden = true;
    renderProducts(data);
    if (focus) {
      ui.heading.focus({ preventScroll: true });
      ui.heading.scrollIntoView({ block: "start", behavior: "smooth" });
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    showError(err instanceof ProblemError ? err : new ProblemError({ title: "Something went wrong", detail: String(err.message || err) }));
  } finally {
    if (state.controller === controller) {
      ui.products.setAttribute("aria-busy", "false");
      renderPager();
    }
  }
}

/** Shows `page`, keeping it in the URL (`?page=N`) so reloads, links and Back all work. */
function go(page, { replace = false, focus = true } = {}) {
  state.page = page;
  const url = new URL(location.href);
  url.searchParams.set("page", String(page));
  history[replace ? "replaceState" : "pushState"]({ page }, "", url);
  load({ focus });
}

ui.prev.addEventListener("click", () => go(Math.max(1, state.page - 1)));
ui.next.addEventListener("click", () => go(state.page + 1));
ui.retry.addEventListener("click", () => load({ focus: true }));
window.addEventListener("popstate", () => {
  state.page = pageFromUrl();
  load();
});

renderPager();
load();
