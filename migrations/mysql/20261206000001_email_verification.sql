-- Email verification (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite, which
-- explains the tables.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT NULL;
UPDATE users SET email_verified_at = created_at
WHERE email IS NOT NULL AND (password_hash IS NULL OR role = 'admin');

CREATE TABLE email_tokens (
    token_hash CHAR(64) PRIMARY KEY,
    user_id    BIGINT NOT NULL,
    purpose    VARCHAR(16) NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    email      VARCHAR(254) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NULL,
    INDEX email_tokens_by_user (user_id, purpose),
    INDEX email_tokens_by_expiry (expires_at),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE mail_quota (
    address VARCHAR(254) NOT NULL,
    day     BIGINT NOT NULL,
    sent    BIGINT NOT NULL,
    PRIMARY KEY (address, day)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
