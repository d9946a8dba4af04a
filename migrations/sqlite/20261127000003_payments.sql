-- Payments of orders, and every provider call for audit.
CREATE TABLE payments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    -- One approved payment per order.
    order_id          INTEGER NOT NULL UNIQUE REFERENCES orders (id),
    provider          TEXT NOT NULL,
    payment_key       TEXT NOT NULL UNIQUE,
    amount            INTEGER NOT NULL CHECK (amount >= 0),
    cancelled_amount  INTEGER NOT NULL DEFAULT 0,
    method            TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('done', 'partially_cancelled', 'cancelled')),
    approved_at       INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);

CREATE TABLE payment_events (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id     INTEGER REFERENCES orders (id),
    provider     TEXT NOT NULL,
    -- confirm, cancel, compensate ...
    action       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    -- ok, declined, already_processed, unavailable, ...
    outcome      TEXT NOT NULL,
    latency_ms   INTEGER NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL
);
CREATE INDEX payment_events_by_order ON payment_events (order_id, id);
