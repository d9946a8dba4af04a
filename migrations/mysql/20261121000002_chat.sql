-- Chat: rooms, members, bans, messages (MySQL 8 / MariaDB 10.11).
-- Text is VARCHAR, not TEXT: sqlx's Any driver reads TEXT as bytes.
CREATE TABLE rooms (
    id               BIGINT PRIMARY KEY AUTO_INCREMENT,
    kind             VARCHAR(16) NOT NULL CHECK (kind IN ('direct', 'open')),
    name             VARCHAR(200) NOT NULL DEFAULT '',
    description      VARCHAR(500) NOT NULL,
    capacity         BIGINT NOT NULL,
    passcode_hash    VARCHAR(255),
    owner_id         BIGINT,
    direct_key       VARCHAR(80) UNIQUE,
    member_count     BIGINT NOT NULL DEFAULT 0,
    last_seq         BIGINT NOT NULL DEFAULT 0,
    last_activity_at BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    INDEX rooms_open_by_id (kind, id),
    FOREIGN KEY (owner_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE room_members (
    room_id        BIGINT NOT NULL,
    user_id        BIGINT NOT NULL,
    role           VARCHAR(16) NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at      BIGINT NOT NULL,
    visible_from   BIGINT NOT NULL DEFAULT 0,
    last_read_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id),
    INDEX room_members_by_user (user_id),
    FOREIGN KEY (room_id) REFERENCES rooms (id),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE room_bans (
    room_id    BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    banned_by  BIGINT NOT NULL,
    banned_at  BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE messages (
    room_id        BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    sender_id      BIGINT NOT NULL,
    client_msg_id  VARCHAR(64),
    kind           VARCHAR(16) NOT NULL CHECK (kind IN ('text', 'system')),
    body           VARCHAR(4000) NOT NULL,
    payload        VARCHAR(4000),
    created_at     BIGINT NOT NULL,
    edited_at      BIGINT,
    deleted_at     BIGINT,
    PRIMARY KEY (room_id, seq),
    UNIQUE INDEX messages_by_client_id (room_id, sender_id, client_msg_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
