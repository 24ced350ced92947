-- Users, their refresh tokens, and their carts (see src/auth/ and src/cart.rs). Times are Unix
-- milliseconds, as in the other tables.

-- `email` is stored lowercased by the origin, so UNIQUE is case-insensitive in effect.
-- `password_hash` is an Argon2id PHC string, which names its own parameters and salt.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);

-- Only the SHA-256 of a refresh token is kept (64 hex digits): a copy of this table signs no one
-- in. Every rotation adds a row to the same family and marks the presented one used; presenting
-- a used one again revokes the whole family (src/auth/refresh.rs).
CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token_hash  TEXT    NOT NULL UNIQUE,
    family_id   TEXT    NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    revoked_at  INTEGER
);

-- What revoking a family scans.
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- A user's cart: one row per product. A product leaving the catalogue leaves every cart too.
CREATE TABLE cart_items (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    product_id INTEGER NOT NULL REFERENCES products (id) ON DELETE CASCADE,
    quantity   INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    PRIMARY KEY (user_id, product_id)
);
