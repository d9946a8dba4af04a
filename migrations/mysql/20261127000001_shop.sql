-- The curated shop (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE products (
    id              BIGINT PRIMARY KEY AUTO_INCREMENT,
    name            VARCHAR(400) NOT NULL,
    brand           VARCHAR(200) NOT NULL,
    description     VARCHAR(5000) NOT NULL,
    category        VARCHAR(32) NOT NULL,
    base_price      BIGINT NOT NULL CHECK (base_price >= 0),
    status          VARCHAR(16) NOT NULL CHECK (status IN ('draft', 'on_sale', 'sold_out', 'hidden')),
    search_text     VARCHAR(5200) NOT NULL,
    wishlist_count  BIGINT NOT NULL DEFAULT 0,
    review_count    BIGINT NOT NULL DEFAULT 0,
    rating_sum      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT,
    INDEX products_recent (deleted_at, status, id),
    INDEX products_by_price (base_price, id),
    INDEX products_popular (wishlist_count, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE product_options (
    id           BIGINT PRIMARY KEY AUTO_INCREMENT,
    product_id   BIGINT NOT NULL,
    label        VARCHAR(200) NOT NULL,
    sku          VARCHAR(40) NOT NULL,
    price_delta  BIGINT NOT NULL DEFAULT 0,
    stock        BIGINT NOT NULL CHECK (stock >= 0),
    position     BIGINT NOT NULL,
    deleted_at   BIGINT,
    UNIQUE KEY product_options_sku (sku),
    INDEX product_options_by_product (product_id, position),
    FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE product_images (
    product_id  BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    media_id    BIGINT NOT NULL,
    PRIMARY KEY (product_id, position),
    FOREIGN KEY (product_id) REFERENCES products (id),
    FOREIGN KEY (media_id) REFERENCES media (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE stock_adjustments (
    id           BIGINT PRIMARY KEY AUTO_INCREMENT,
    option_id    BIGINT NOT NULL,
    admin_id     BIGINT NOT NULL,
    delta        BIGINT NOT NULL,
    stock_after  BIGINT NOT NULL,
    reason       VARCHAR(2000) NOT NULL,
    created_at   BIGINT NOT NULL,
    INDEX stock_adjustments_by_option (option_id, id),
    FOREIGN KEY (option_id) REFERENCES product_options (id),
    FOREIGN KEY (admin_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE wishlist (
    user_id     BIGINT NOT NULL,
    product_id  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, product_id),
    INDEX wishlist_by_user (user_id, created_at),
    FOREIGN KEY (user_id) REFERENCES users (id),
    FOREIGN KEY (product_id) REFERENCES products (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE cart_items (
    user_id     BIGINT NOT NULL,
    option_id   BIGINT NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity BETWEEN 1 AND 99),
    added_at    BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, option_id),
    FOREIGN KEY (user_id) REFERENCES users (id),
    FOREIGN KEY (option_id) REFERENCES product_options (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
