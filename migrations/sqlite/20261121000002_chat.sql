-- Chat: rooms, members, bans, messages.
CREATE TABLE rooms (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'open')),
    name             TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    capacity         INTEGER NOT NULL,
    passcode_hash    TEXT,
    owner_id         INTEGER REFERENCES users (id),
    -- Direct rooms only: "<min user id>:<max user id>[:<listing id>]", unique,
    -- which makes get-or-create race-safe.
    direct_key       TEXT UNIQUE,
    member_count     INTEGER NOT NULL DEFAULT 0,
    -- Highest seq assigned; unread = last_seq - member.last_read_seq.
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_at INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX rooms_open_by_id ON rooms (kind, id);

CREATE TABLE room_members (
    room_id        INTEGER NOT NULL REFERENCES rooms (id),
    user_id        INTEGER NOT NULL REFERENCES users (id),
    role           TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
    joined_at      INTEGER NOT NULL,
    -- History is visible to the member from this seq on (exclusive).
    visible_from   INTEGER NOT NULL DEFAULT 0,
    last_read_seq  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_members_by_user ON room_members (user_id);

CREATE TABLE room_bans (
    room_id    INTEGER NOT NULL REFERENCES rooms (id),
    user_id    INTEGER NOT NULL REFERENCES users (id),
    banned_by  INTEGER NOT NULL,
    banned_at  INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE messages (
    room_id        INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    sender_id      INTEGER NOT NULL,
    -- NULL for system messages; unique per (room, sender) otherwise.
    client_msg_id  TEXT,
    kind           TEXT NOT NULL CHECK (kind IN ('text', 'system')),
    body           TEXT NOT NULL,
    -- JSON payload of system messages.
    payload        TEXT,
    created_at     INTEGER NOT NULL,
    edited_at      INTEGER,
    deleted_at     INTEGER,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_by_client_id ON messages (room_id, sender_id, client_msg_id);
