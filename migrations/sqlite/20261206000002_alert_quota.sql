-- Keyword alerts delivered per (watcher, seller): at most
-- `keyword_alerts_per_seller_per_hour` in any hour. One row per alert,
-- keyed by the event, so a second node handling the same event finds its
-- row and announces the same alert instead of counting it twice.
CREATE TABLE keyword_alert_log (
    watcher_id INTEGER NOT NULL,
    event_id   TEXT NOT NULL,
    seller_id  INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (watcher_id, event_id)
);
CREATE INDEX keyword_alert_log_by_pair ON keyword_alert_log (watcher_id, seller_id, created_at);
CREATE INDEX keyword_alert_log_by_age ON keyword_alert_log (created_at);
