-- Accounts and sessions (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE users (
    id            BIGINT PRIMARY KEY AUTO_INCREMENT,
    email         VARCHAR(254) UNIQUE,
    password_hash VARCHAR(255),
    nickname      VARCHAR(80) NOT NULL,
    role          VARCHAR(16) NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status        VARCHAR(16) NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    withdrawn_at  BIGINT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE sessions (
    token_hash    CHAR(64) PRIMARY KEY,
    user_id       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    INDEX sessions_by_user (user_id),
    INDEX sessions_by_expiry (expires_at),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
