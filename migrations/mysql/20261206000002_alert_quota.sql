-- Keyword alerts per (watcher, seller) (MySQL 8 / MariaDB 10.11). Mirrors
-- ../sqlite, which explains the table.
CREATE TABLE keyword_alert_log (
    watcher_id BIGINT NOT NULL,
    event_id   VARCHAR(64) NOT NULL,
    seller_id  BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (watcher_id, event_id),
    INDEX keyword_alert_log_by_pair (watcher_id, seller_id, created_at),
    INDEX keyword_alert_log_by_age (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
