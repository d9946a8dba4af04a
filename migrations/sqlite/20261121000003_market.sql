-- Marketplace: media, listings, favourites, blocks, reports, reservations,
-- reviews; listing chats are direct rooms that carry a listing id.
CREATE TABLE media (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id      INTEGER NOT NULL REFERENCES users (id),
    content_type  TEXT NOT NULL,
    bytes         INTEGER NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    -- Storage keys (relative paths under data_dir/media).
    original_key  TEXT NOT NULL,
    thumb_key     TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE listings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    seller_id       INTEGER NOT NULL REFERENCES users (id),
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    price           INTEGER NOT NULL CHECK (price >= 0),
    category        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('selling', 'reserved', 'sold', 'hidden')),
    -- Lower-cased title and description, for substring search in any script.
    search_text     TEXT NOT NULL,
    buyer_id        INTEGER REFERENCES users (id),
    view_count      INTEGER NOT NULL DEFAULT 0,
    favourite_count INTEGER NOT NULL DEFAULT 0,
    chat_count      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sold_at         INTEGER,
    deleted_at      INTEGER
);
CREATE INDEX listings_feed ON listings (deleted_at, status, id);
CREATE INDEX listings_by_price ON listings (price, id);
CREATE INDEX listings_by_seller ON listings (seller_id, id);

CREATE TABLE listing_images (
    listing_id  INTEGER NOT NULL REFERENCES listings (id),
    position    INTEGER NOT NULL,
    media_id    INTEGER NOT NULL REFERENCES media (id),
    PRIMARY KEY (listing_id, position)
);

CREATE TABLE favourites (
    user_id     INTEGER NOT NULL REFERENCES users (id),
    listing_id  INTEGER NOT NULL REFERENCES listings (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, listing_id)
);
CREATE INDEX favourites_by_listing ON favourites (listing_id);

CREATE TABLE blocks (
    blocker_id  INTEGER NOT NULL REFERENCES users (id),
    blocked_id  INTEGER NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id);

CREATE TABLE reports (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id  INTEGER NOT NULL REFERENCES users (id),
    target_kind  TEXT NOT NULL CHECK (target_kind IN ('listing', 'user', 'message')),
    target_id    INTEGER NOT NULL,
    -- For messages: the room (target_id is then the seq).
    room_id      INTEGER,
    reason       TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE reservations (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    listing_id         INTEGER NOT NULL REFERENCES listings (id),
    buyer_id           INTEGER NOT NULL REFERENCES users (id),
    -- Equal to listing_id while active, NULL after: a unique column that
    -- allows one active reservation per listing on SQLite and MySQL alike
    -- (MySQL has no partial indexes).
    active_listing_id  INTEGER UNIQUE,
    until              INTEGER,
    status             TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'expired', 'completed', 'replaced')),
    created_at         INTEGER NOT NULL,
    ended_at           INTEGER
);
CREATE INDEX reservations_timed ON reservations (status, until);

CREATE TABLE reviews (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    listing_id   INTEGER NOT NULL REFERENCES listings (id),
    reviewer_id  INTEGER NOT NULL REFERENCES users (id),
    reviewee_id  INTEGER NOT NULL REFERENCES users (id),
    rating       TEXT NOT NULL CHECK (rating IN ('good', 'bad')),
    -- Comma-separated tag codes from domain::listing::REVIEW_TAGS.
    tags         TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    UNIQUE (listing_id, reviewer_id)
);
CREATE INDEX reviews_by_reviewee ON reviews (reviewee_id);

ALTER TABLE rooms ADD COLUMN listing_id INTEGER REFERENCES listings (id);
CREATE INDEX rooms_by_listing ON rooms (listing_id);
-- Open rooms may require a minimum manner score to join.
ALTER TABLE rooms ADD COLUMN min_manner_score REAL;
