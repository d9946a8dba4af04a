-- Product reviews: one per paid order line, by its buyer.
CREATE TABLE product_reviews (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_line_id  INTEGER NOT NULL UNIQUE REFERENCES order_lines (id),
    product_id     INTEGER NOT NULL REFERENCES products (id),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    rating         INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body           TEXT NOT NULL,
    -- Comma-separated media ids (the reviewer's uploads), at most 5.
    images         TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX product_reviews_by_product ON product_reviews (product_id, id);
