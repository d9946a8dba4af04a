-- The curated shop: products with options (each its own SKU and stock),
-- images, audited stock changes, wishlists and carts.
CREATE TABLE products (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    brand           TEXT NOT NULL,
    description     TEXT NOT NULL,
    category        TEXT NOT NULL,
    base_price      INTEGER NOT NULL CHECK (base_price >= 0),
    status          TEXT NOT NULL CHECK (status IN ('draft', 'on_sale', 'sold_out', 'hidden')),
    -- Lower-cased name, brand and description, for substring search.
    search_text     TEXT NOT NULL,
    wishlist_count  INTEGER NOT NULL DEFAULT 0,
    review_count    INTEGER NOT NULL DEFAULT 0,
    rating_sum      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);
CREATE INDEX products_recent ON products (deleted_at, status, id);
CREATE INDEX products_by_price ON products (base_price, id);
CREATE INDEX products_popular ON products (wishlist_count, id);

CREATE TABLE product_options (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id   INTEGER NOT NULL REFERENCES products (id),
    label        TEXT NOT NULL,
    sku          TEXT NOT NULL UNIQUE,
    price_delta  INTEGER NOT NULL DEFAULT 0,
    -- Never negative: reservations decrement conditionally (stock >= n).
    stock        INTEGER NOT NULL CHECK (stock >= 0),
    position     INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX product_options_by_product ON product_options (product_id, position);

CREATE TABLE product_images (
    product_id  INTEGER NOT NULL REFERENCES products (id),
    position    INTEGER NOT NULL,
    media_id    INTEGER NOT NULL REFERENCES media (id),
    PRIMARY KEY (product_id, position)
);

-- Every stock change an admin makes: who, when, why, by how much.
CREATE TABLE stock_adjustments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    option_id    INTEGER NOT NULL REFERENCES product_options (id),
    admin_id     INTEGER NOT NULL REFERENCES users (id),
    delta        INTEGER NOT NULL,
    stock_after  INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX stock_adjustments_by_option ON stock_adjustments (option_id, id);

CREATE TABLE wishlist (
    user_id     INTEGER NOT NULL REFERENCES users (id),
    product_id  INTEGER NOT NULL REFERENCES products (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX wishlist_by_user ON wishlist (user_id, created_at);

CREATE TABLE cart_items (
    user_id     INTEGER NOT NULL REFERENCES users (id),
    option_id   INTEGER NOT NULL REFERENCES product_options (id),
    quantity    INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, option_id)
);
