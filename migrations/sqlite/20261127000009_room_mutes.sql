-- A member can mute a room: no chat notifications from it.
ALTER TABLE room_members ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
