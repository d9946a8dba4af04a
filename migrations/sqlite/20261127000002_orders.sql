-- Orders (shop products now, used listings later) and the outbox: side
-- effects that must happen at least once after a business change commits.
CREATE TABLE orders (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Human-friendly, random (domain::order::order_number).
    order_number  TEXT NOT NULL UNIQUE,
    buyer_id      INTEGER NOT NULL REFERENCES users (id),
    status        TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_cancelled',
                                                  'cancelled', 'expired', 'cancelled_by_user')),
    total         INTEGER NOT NULL CHECK (total >= 0),
    -- Set for an order of a used listing: the listing and the reservation
    -- the order holds on it while unpaid.
    listing_id      INTEGER REFERENCES listings (id),
    reservation_id  INTEGER REFERENCES reservations (id),
    expires_at    INTEGER NOT NULL,
    paid_at       INTEGER,
    ended_at      INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX orders_by_buyer ON orders (buyer_id, id);

CREATE TABLE order_lines (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id       INTEGER NOT NULL REFERENCES orders (id),
    -- A shop line names its option and product; a used-listing line its listing.
    option_id      INTEGER REFERENCES product_options (id),
    product_id     INTEGER REFERENCES products (id),
    listing_id     INTEGER REFERENCES listings (id),
    -- Copied at order time: later catalogue edits do not change an order.
    product_name   TEXT NOT NULL,
    brand          TEXT NOT NULL,
    option_label   TEXT NOT NULL,
    sku            TEXT NOT NULL,
    unit_price     INTEGER NOT NULL CHECK (unit_price >= 0),
    quantity       INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    -- Set once when this line's reserved stock went back to the shelf: the
    -- per-line key that makes a repeated restore a no-op.
    restored_at    INTEGER
);
CREATE INDEX order_lines_by_order ON order_lines (order_id);

CREATE TABLE outbox (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL,
    -- JSON.
    payload        TEXT NOT NULL,
    -- At most one job per key (e.g. `order_expire:17`).
    dedup_key      TEXT NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    due_at         INTEGER NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    claimed_by     TEXT,
    claimed_until  INTEGER,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    done_at        INTEGER
);
CREATE INDEX outbox_due ON outbox (status, due_at);
