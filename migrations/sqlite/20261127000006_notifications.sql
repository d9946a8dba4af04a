-- Notifications: one row per (event, user). The unique key makes the
-- consumer idempotent: a redelivered event, or the same event handled by
-- two nodes, finds the row there and creates nothing.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    event_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    link        TEXT NOT NULL DEFAULT '',
    -- 0: kept only as the event's dedup key (the user turned the in-app
    -- channel of this kind off); not listed, not counted.
    in_app      INTEGER NOT NULL DEFAULT 1,
    read_at     INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (event_id, user_id)
);
CREATE INDEX notifications_by_user ON notifications (user_id, id);

-- Per kind and channel; no row: the kind's defaults.
CREATE TABLE notification_prefs (
    user_id  INTEGER NOT NULL REFERENCES users (id),
    kind     TEXT NOT NULL,
    in_app   INTEGER NOT NULL,
    email    INTEGER NOT NULL,
    PRIMARY KEY (user_id, kind)
);
