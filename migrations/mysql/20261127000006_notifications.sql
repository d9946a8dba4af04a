-- Notifications (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE notifications (
    id          BIGINT PRIMARY KEY AUTO_INCREMENT,
    user_id     BIGINT NOT NULL,
    event_id    VARCHAR(64) NOT NULL,
    kind        VARCHAR(64) NOT NULL,
    title       VARCHAR(200) NOT NULL,
    body        VARCHAR(2000) NOT NULL,
    link        VARCHAR(500) NOT NULL DEFAULT '',
    in_app      BIGINT NOT NULL DEFAULT 1,
    read_at     BIGINT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE KEY notifications_event_user (event_id, user_id),
    KEY notifications_by_user (user_id, id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE notification_prefs (
    user_id  BIGINT NOT NULL,
    kind     VARCHAR(64) NOT NULL,
    in_app   BIGINT NOT NULL,
    email    BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
