-- Saved keywords: a new listing whose title contains one tells its owner.
-- Stored lower-cased; matched with INSTR on the lower-cased title.
CREATE TABLE keyword_alerts (
    user_id     INTEGER NOT NULL REFERENCES users (id),
    keyword     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, keyword)
);
