-- The public catalogue. Ids are assigned by the deterministic generator (src/seed.rs), not by the
-- database, so every fresh database holds the same key space.
CREATE TABLE products (
    id          INTEGER PRIMARY KEY NOT NULL,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    category    TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
    currency    TEXT    NOT NULL,
    stock       INTEGER NOT NULL CHECK (stock >= 0)
);
