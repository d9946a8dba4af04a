-- The sandbox provider's ledger (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE sandbox_payments (
    payment_key      VARCHAR(200) NOT NULL PRIMARY KEY,
    order_id         VARCHAR(64) NOT NULL,
    amount           BIGINT NOT NULL,
    cancelled        BIGINT NOT NULL DEFAULT 0,
    confirm_key      VARCHAR(300) NOT NULL,
    approved_at      BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sandbox_cancels (
    idempotency_key  VARCHAR(300) NOT NULL PRIMARY KEY,
    payment_key      VARCHAR(200) NOT NULL,
    amount           BIGINT NOT NULL,
    remaining        BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
