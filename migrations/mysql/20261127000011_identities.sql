-- Sign-in with Kakao and Google (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite,
-- which explains the tables.
CREATE TABLE user_identities (
    provider     VARCHAR(16) NOT NULL,
    subject      VARCHAR(255) NOT NULL,
    user_id      BIGINT NOT NULL,
    email        VARCHAR(254),
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    PRIMARY KEY (provider, subject),
    UNIQUE INDEX user_identities_by_user (user_id, provider),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE oauth_flows (
    state_hash    CHAR(64) PRIMARY KEY,
    provider      VARCHAR(16) NOT NULL,
    browser_hash  CHAR(64) NOT NULL,
    code_verifier VARCHAR(128) NOT NULL,
    nonce         VARCHAR(128) NOT NULL,
    link_user_id  BIGINT,
    return_to     VARCHAR(512) NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT,
    INDEX oauth_flows_by_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
