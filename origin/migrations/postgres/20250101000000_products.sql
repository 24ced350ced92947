-- The public catalogue. Ids are assigned by the deterministic generator (src/seed.rs), not by the
-- database, so every fresh database holds the same key space. BIGINT throughout so every integer
-- column decodes as i64, exactly as on SQLite.
CREATE TABLE products (
    id          BIGINT PRIMARY KEY,
    sku         TEXT   NOT NULL UNIQUE,
    name        TEXT   NOT NULL,
    description TEXT   NOT NULL,
    category    TEXT   NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    currency    TEXT   NOT NULL,
    stock       BIGINT NOT NULL CHECK (stock >= 0)
);
