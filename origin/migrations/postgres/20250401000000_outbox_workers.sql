-- Outbox workers (see src/outbox/): why a row last failed and when it was given up, the dead
-- letters operators list and replay, what each idempotent consumer has already applied, and the
-- sales the analytics consumer counts for the rankings. Times are Unix milliseconds.

ALTER TABLE outbox ADD COLUMN last_error TEXT;
-- Set when the row was moved to the dead letters; cleared by a replay.
ALTER TABLE outbox ADD COLUMN dead_at BIGINT;

-- What the claim scans: rows neither delivered nor dead, by when they may next be tried (id
-- breaks ties, matching the claim's ORDER BY, so the index alone yields the batch in order).
DROP INDEX outbox_pending;
CREATE INDEX outbox_pending ON outbox (available_at, id)
    WHERE delivered_at IS NULL AND dead_at IS NULL;

-- One row each time a message is given up. Nothing here is deleted automatically: a replay
-- stamps `replayed_at` and puts the outbox row back in line; if it dies again, a new row is added.
CREATE TABLE dead_letters (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    outbox_id   BIGINT NOT NULL REFERENCES outbox (id),
    order_id    BIGINT NOT NULL,
    topic       TEXT   NOT NULL,
    attempts    BIGINT NOT NULL CHECK (attempts >= 1),
    last_error  TEXT   NOT NULL,
    dead_at     BIGINT NOT NULL,
    replayed_at BIGINT
);

-- What `dead-letters list` and `replay --all` read.
CREATE INDEX dead_letters_pending ON dead_letters (id) WHERE replayed_at IS NULL;

-- A consumer records each message it applied in the same transaction as the effect, so a
-- redelivered message finds its row and changes nothing.
CREATE TABLE processed_messages (
    consumer     TEXT   NOT NULL,
    message_id   TEXT   NOT NULL,
    processed_at BIGINT NOT NULL,
    PRIMARY KEY (consumer, message_id)
);

-- Units sold per product (the analytics consumer); no foreign key, like order_items.
CREATE TABLE product_sales (
    product_id    BIGINT PRIMARY KEY,
    units         BIGINT NOT NULL CHECK (units >= 0),
    orders        BIGINT NOT NULL CHECK (orders >= 0),
    revenue_cents BIGINT NOT NULL CHECK (revenue_cents >= 0)
);

-- GET /api/rankings: most units first, ties by product id.
CREATE INDEX product_sales_ranking ON product_sales (units DESC, product_id);
