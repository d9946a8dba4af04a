-- Email verification (security round 2): an address counts as the user's
-- only once they followed a link we mailed to it, or a provider (Kakao,
-- Google) vouched for it.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
-- Accounts created by a provider sign-in stored the email only when the
-- provider said it was verified; administrators come from the CLI.
UPDATE users SET email_verified_at = created_at
WHERE email IS NOT NULL AND (password_hash IS NULL OR role = 'admin');

-- Single-use tokens mailed to a user: only the SHA-256 of the token is
-- kept, with the address it was sent to (a token proves that address,
-- not whatever the account holds later).
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'password_reset')),
    email      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX email_tokens_by_user ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_by_expiry ON email_tokens (expires_at);

-- Emails sent per recipient address per UTC day (`mail_daily_max_per_recipient`).
CREATE TABLE mail_quota (
    address TEXT NOT NULL,
    day     INTEGER NOT NULL,
    sent    INTEGER NOT NULL,
    PRIMARY KEY (address, day)
);
