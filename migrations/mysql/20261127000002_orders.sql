-- Orders and the outbox (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE orders (
    id            BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_number  VARCHAR(32) NOT NULL,
    buyer_id      BIGINT NOT NULL,
    status        VARCHAR(24) NOT NULL CHECK (status IN ('pending_payment', 'paid', 'partially_cancelled',
                                                         'cancelled', 'expired', 'cancelled_by_user')),
    total         BIGINT NOT NULL CHECK (total >= 0),
    listing_id      BIGINT,
    reservation_id  BIGINT,
    expires_at    BIGINT NOT NULL,
    paid_at       BIGINT,
    ended_at      BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    UNIQUE KEY orders_number (order_number),
    INDEX orders_by_buyer (buyer_id, id),
    FOREIGN KEY (buyer_id) REFERENCES users (id),
    FOREIGN KEY (listing_id) REFERENCES listings (id),
    FOREIGN KEY (reservation_id) REFERENCES reservations (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE order_lines (
    id             BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_id       BIGINT NOT NULL,
    option_id      BIGINT,
    product_id     BIGINT,
    listing_id     BIGINT,
    product_name   VARCHAR(400) NOT NULL,
    brand          VARCHAR(200) NOT NULL,
    option_label   VARCHAR(200) NOT NULL,
    sku            VARCHAR(40) NOT NULL,
    unit_price     BIGINT NOT NULL CHECK (unit_price >= 0),
    quantity       BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    restored_at    BIGINT,
    INDEX order_lines_by_order (order_id),
    FOREIGN KEY (order_id) REFERENCES orders (id),
    FOREIGN KEY (option_id) REFERENCES product_options (id),
    FOREIGN KEY (product_id) REFERENCES products (id),
    FOREIGN KEY (listing_id) REFERENCES listings (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE outbox (
    id             BIGINT PRIMARY KEY AUTO_INCREMENT,
    kind           VARCHAR(64) NOT NULL,
    payload        VARCHAR(4000) NOT NULL,
    dedup_key      VARCHAR(200) NOT NULL,
    status         VARCHAR(16) NOT NULL CHECK (status IN ('pending', 'done', 'dead')),
    due_at         BIGINT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    claimed_by     VARCHAR(100),
    claimed_until  BIGINT,
    last_error     VARCHAR(1000),
    created_at     BIGINT NOT NULL,
    done_at        BIGINT,
    UNIQUE KEY outbox_dedup (dedup_key),
    INDEX outbox_due (status, due_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
