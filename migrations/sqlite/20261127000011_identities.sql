-- Sign-in with Kakao and Google. Mirrors ../mysql.
--
-- An identity is (provider, subject): the provider's stable user id, never
-- the email (an address can change hands; a subject cannot). A user has at
-- most one identity per provider.
CREATE TABLE user_identities (
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    -- What the provider said at the last sign-in (shown in the account's list).
    email       TEXT,
    created_at  INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (provider, subject)
);
CREATE UNIQUE INDEX user_identities_by_user ON user_identities (user_id, provider);

-- One authorization-code flow in progress: created by /start (or a linking
-- request), used once by the callback, on whichever node it lands. Only
-- hashes of the state and of the browser binding are kept; the PKCE verifier
-- and the nonce live here for the flow's few minutes.
CREATE TABLE oauth_flows (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    -- Set for a linking flow: the signed-in user who asked.
    link_user_id  INTEGER,
    return_to     TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    -- Set when the callback took the flow (kept a while to tell a replay
    -- from an unknown state).
    used_at       INTEGER
);
CREATE INDEX oauth_flows_by_expiry ON oauth_flows (expires_at);
