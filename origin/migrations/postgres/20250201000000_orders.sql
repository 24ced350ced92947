-- Orders, placed idempotently (see src/order/store.rs), their transactional outbox, and the
-- stored answers that let a retried write replay instead of applying twice. Times are Unix
-- milliseconds in BIGINT, as on SQLite, so both backends decode the same types.

CREATE TABLE orders (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    principal           TEXT   NOT NULL,
    idempotency_key     TEXT   NOT NULL,
    -- SHA-256 of the method, path and body (breakwater_core::idempotency), 64 hex digits.
    request_fingerprint TEXT   NOT NULL,
    total_cents         BIGINT NOT NULL CHECK (total_cents >= 0),
    currency            TEXT   NOT NULL,
    created_at          BIGINT NOT NULL,
    -- The last line of defence against a double apply: a retry that bypassed the edge's record
    -- waits here for the first attempt to commit, then fails and replays its answer.
    CONSTRAINT orders_one_per_key UNIQUE (principal, idempotency_key)
);

-- A principal's orders, newest first (with id to page through equal timestamps).
CREATE INDEX orders_by_principal ON orders (principal, created_at, id);

-- Prices are copied at order time; no foreign key to products, so the catalogue can drop a
-- product without rewriting history.
CREATE TABLE order_items (
    order_id         BIGINT NOT NULL REFERENCES orders (id),
    line             BIGINT NOT NULL CHECK (line >= 0),
    product_id       BIGINT NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, line),
    UNIQUE (order_id, product_id)
);

-- One row per consumer (topic) per order, written in the order's transaction; the workers claim
-- rows (`FOR UPDATE SKIP LOCKED`), deliver them and mark them delivered.
CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id     BIGINT NOT NULL REFERENCES orders (id),
    topic        TEXT   NOT NULL,
    payload      JSONB  NOT NULL,
    created_at   BIGINT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    available_at BIGINT NOT NULL,
    claimed_at   BIGINT,
    delivered_at BIGINT,
    -- What makes a redelivered message recognisable to an idempotent consumer.
    UNIQUE (order_id, topic)
);

-- What the workers scan: undelivered rows by when they may next be tried.
CREATE INDEX outbox_pending ON outbox (available_at) WHERE delivered_at IS NULL;

-- The answer each completed key replays. Written in the same transaction as the effect, so it
-- exists exactly when the effect does; only successes are stored.
CREATE TABLE idempotency_responses (
    principal           TEXT   NOT NULL,
    idempotency_key     TEXT   NOT NULL,
    request_fingerprint TEXT   NOT NULL,
    status              BIGINT NOT NULL CHECK (status BETWEEN 200 AND 399),
    content_type        TEXT   NOT NULL,
    location            TEXT,
    body                BYTEA  NOT NULL,
    created_at          BIGINT NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
