-- Saved keywords (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE keyword_alerts (
    user_id     BIGINT NOT NULL,
    keyword     VARCHAR(40) NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, keyword),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
