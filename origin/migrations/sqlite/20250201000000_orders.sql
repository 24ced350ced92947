-- Orders, placed idempotently (see src/order/store.rs), their transactional outbox, and the
-- stored answers that let a retried write replay instead of applying twice. Times are Unix
-- milliseconds. AUTOINCREMENT so that ids are never reused, as with Postgres identities: outbox
-- consumers key on the order id.

CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    principal           TEXT    NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    -- SHA-256 of the method, path and body (breakwater_core::idempotency), 64 hex digits.
    request_fingerprint TEXT    NOT NULL,
    total_cents         INTEGER NOT NULL CHECK (total_cents >= 0),
    currency            TEXT    NOT NULL,
    created_at          INTEGER NOT NULL,
    -- The last line of defence against a double apply: a retry that bypassed the edge's record
    -- waits for the write lock, then fails here and replays the first attempt's answer.
    CONSTRAINT orders_one_per_key UNIQUE (principal, idempotency_key)
);

-- A principal's orders, newest first (with id to page through equal timestamps).
CREATE INDEX orders_by_principal ON orders (principal, created_at, id);

-- Prices are copied at order time; no foreign key to products, so the catalogue can drop a
-- product without rewriting history.
CREATE TABLE order_items (
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    line             INTEGER NOT NULL CHECK (line >= 0),
    product_id       INTEGER NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, line),
    UNIQUE (order_id, product_id)
);

-- One row per consumer (topic) per order, written in the order's transaction; the workers claim
-- rows, deliver them and mark them delivered. The payload is JSON text.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    topic        TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    available_at INTEGER NOT NULL,
    claimed_at   INTEGER,
    delivered_at INTEGER,
    -- What makes a redelivered message recognisable to an idempotent consumer.
    UNIQUE (order_id, topic)
);

-- What the workers scan: undelivered rows by when they may next be tried.
CREATE INDEX outbox_pending ON outbox (available_at) WHERE delivered_at IS NULL;

-- The answer each completed key replays. Written in the same transaction as the effect, so it
-- exists exactly when the effect does; only successes are stored.
CREATE TABLE idempotency_responses (
    principal           TEXT    NOT NULL,
    idempotency_key     TEXT    NOT NULL,
    request_fingerprint TEXT    NOT NULL,
    status              INTEGER NOT NULL CHECK (status BETWEEN 200 AND 399),
    content_type        TEXT    NOT NULL,
    location            TEXT,
    body                BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
