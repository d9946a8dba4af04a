-- Cancels (refunds) of paid orders (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
ALTER TABLE order_lines ADD COLUMN cancelled_quantity BIGINT NOT NULL DEFAULT 0;

CREATE TABLE refunds (
    id                BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id          BIGINT NOT NULL,
    payment_id        BIGINT NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount > 0),
    cancelled_before  BIGINT NOT NULL,
    reason            VARCHAR(400) NOT NULL,
    line_items        VARCHAR(4000) NOT NULL,
    source            VARCHAR(16) NOT NULL,
    requested_by      BIGINT NULL,
    status            VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
    idempotency_key   VARCHAR(64) NOT NULL,
    last_error        VARCHAR(1000) NULL,
    created_at        BIGINT NOT NULL,
    done_at           BIGINT NULL,
    UNIQUE KEY refunds_key (idempotency_key),
    KEY refunds_by_order (order_id, id),
    KEY refunds_by_status (status, id),
    FOREIGN KEY (order_id) REFERENCES orders (id),
    FOREIGN KEY (payment_id) REFERENCES payments (id),
    FOREIGN KEY (requested_by) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE payment_intents (
    order_id     BIGINT NOT NULL,
    provider     VARCHAR(16) NOT NULL,
    payment_key  VARCHAR(200) NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (order_id, provider),
    FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
