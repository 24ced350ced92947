-- Write-behind events (views, votes) arrive from the edge's queue consumer in batches. Each
-- batch applies in one transaction; every event id is recorded, so a redelivered event changes
-- nothing. Times are Unix milliseconds.

-- One row per batch id, however often it is delivered: `deliveries` counts the transactions.
CREATE TABLE event_batches (
    batch_id    TEXT    PRIMARY KEY,
    first_seen  INTEGER NOT NULL,
    deliveries  INTEGER NOT NULL CHECK (deliveries >= 1),
    events      INTEGER NOT NULL CHECK (events >= 0),
    applied     INTEGER NOT NULL CHECK (applied >= 0)
);

-- Every applied event, by id: what makes a redelivery recognisable.
CREATE TABLE processed_events (
    event_id    TEXT    PRIMARY KEY,
    batch_id    TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    product_id  INTEGER NOT NULL,
    value       INTEGER NOT NULL,
    at          INTEGER NOT NULL
);

-- Views and votes per product; `score` is upvotes minus downvotes, kept beside them so the
-- ranking by votes reads an index.
CREATE TABLE product_stats (
    product_id  INTEGER PRIMARY KEY,
    views       INTEGER NOT NULL DEFAULT 0 CHECK (views >= 0),
    upvotes     INTEGER NOT NULL DEFAULT 0 CHECK (upvotes >= 0),
    downvotes   INTEGER NOT NULL DEFAULT 0 CHECK (downvotes >= 0),
    score       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX product_stats_by_views ON product_stats (views DESC, product_id);
CREATE INDEX product_stats_by_score ON product_stats (score DESC, product_id);
