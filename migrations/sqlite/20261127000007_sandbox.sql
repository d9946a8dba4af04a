-- The built-in sandbox payment provider keeps its ledger here, so that
-- every node of a cluster sees the same "provider" (a payment approved
-- through one node can be cancelled through another), like a real one.
CREATE TABLE sandbox_payments (
    payment_key      TEXT PRIMARY KEY,
    order_id         TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    cancelled        INTEGER NOT NULL DEFAULT 0,
    -- The idempotency key of the confirm that approved it (a replay).
    confirm_key      TEXT NOT NULL,
    approved_at      INTEGER NOT NULL
);

CREATE TABLE sandbox_cancels (
    idempotency_key  TEXT PRIMARY KEY,
    payment_key      TEXT NOT NULL,
    amount           INTEGER NOT NULL,
    remaining        INTEGER NOT NULL
);
