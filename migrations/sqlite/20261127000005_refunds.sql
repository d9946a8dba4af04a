-- Cancels (refunds) of paid orders, whole or per line.
--
-- A cancel is written in one transaction with its effects on our side (the
-- lines' cancelled quantities, the stock, the order's status, the payment's
-- cancelled amount) and an outbox job that makes the provider refund it:
-- `pending` until the provider confirms, `done` after, `failed` when the
-- outbox gave up (admins see it: GET /api/admin/payments/failures).
ALTER TABLE order_lines ADD COLUMN cancelled_quantity INTEGER NOT NULL DEFAULT 0;

CREATE TABLE refunds (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id          INTEGER NOT NULL REFERENCES orders (id),
    payment_id        INTEGER NOT NULL REFERENCES payments (id),
    amount            INTEGER NOT NULL CHECK (amount > 0),
    -- What had been cancelled on the payment before this refund.
    cancelled_before  INTEGER NOT NULL,
    reason            TEXT NOT NULL,
    -- JSON: [{"line": id, "quantity": n}, ...].
    line_items        TEXT NOT NULL,
    -- buyer, admin, or provider (cancelled at the provider, learnt by webhook).
    source            TEXT NOT NULL,
    requested_by      INTEGER REFERENCES users (id),
    status            TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    idempotency_key   TEXT NOT NULL UNIQUE,
    last_error        TEXT,
    created_at        INTEGER NOT NULL,
    done_at           INTEGER
);
CREATE INDEX refunds_by_order ON refunds (order_id, id);
CREATE INDEX refunds_by_status ON refunds (status, id);

-- KakaoPay: the tid the ready step returned, bound to the order (approve
-- must name the same order and buyer).
CREATE TABLE payment_intents (
    order_id     INTEGER NOT NULL REFERENCES orders (id),
    provider     TEXT NOT NULL,
    payment_key  TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (order_id, provider)
);
