-- Payments (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE payments (
    id                BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id          BIGINT NOT NULL,
    provider          VARCHAR(16) NOT NULL,
    payment_key       VARCHAR(200) NOT NULL,
    amount            BIGINT NOT NULL CHECK (amount >= 0),
    cancelled_amount  BIGINT NOT NULL DEFAULT 0,
    method            VARCHAR(64) NOT NULL,
    status            VARCHAR(24) NOT NULL CHECK (status IN ('done', 'partially_cancelled', 'cancelled')),
    approved_at       BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE KEY payments_order (order_id),
    UNIQUE KEY payments_key (payment_key),
    FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE payment_events (
    id           BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id     BIGINT,
    provider     VARCHAR(16) NOT NULL,
    action       VARCHAR(32) NOT NULL,
    request_id   VARCHAR(100) NOT NULL,
    outcome      VARCHAR(32) NOT NULL,
    latency_ms   BIGINT NOT NULL,
    detail       VARCHAR(1000) NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    INDEX payment_events_by_order (order_id, id),
    FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
