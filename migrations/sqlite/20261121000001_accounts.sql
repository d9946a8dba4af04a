-- Accounts and sessions. Times are UTC epoch milliseconds; ids are 64-bit.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL once withdrawn, so the address can sign up again.
    email         TEXT UNIQUE,
    -- NULL for withdrawn accounts (and, later, OAuth-only accounts).
    password_hash TEXT,
    nickname      TEXT NOT NULL,
    role          TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    status        TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    withdrawn_at  INTEGER
);

CREATE TABLE sessions (
    -- SHA-256 (hex) of the bearer token; the token itself is never stored.
    token_hash    TEXT PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
