-- Product reviews (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE product_reviews (
    id             BIGINT PRIMARY KEY AUTO_INCREMENT,
    order_line_id  BIGINT NOT NULL,
    product_id     BIGINT NOT NULL,
    user_id        BIGINT NOT NULL,
    rating         BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body           VARCHAR(2000) NOT NULL,
    images         VARCHAR(200) NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE KEY product_reviews_line (order_line_id),
    INDEX product_reviews_by_product (product_id, id),
    FOREIGN KEY (order_line_id) REFERENCES order_lines (id),
    FOREIGN KEY (product_id) REFERENCES products (id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
