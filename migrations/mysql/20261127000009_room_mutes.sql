-- A member can mute a room (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
ALTER TABLE room_members ADD COLUMN muted BIGINT NOT NULL DEFAULT 0;
