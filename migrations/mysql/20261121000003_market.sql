-- Marketplace (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE media (
    id            BIGINT PRIMARY KEY AUTO_INCREMENT,
    owner_id      BIGINT NOT NULL,
    content_type  VARCHAR(64) NOT NULL,
    bytes         BIGINT NOT NULL,
    width         BIGINT NOT NULL,
    height        BIGINT NOT NULL,
    original_key  VARCHAR(200) NOT NULL,
    thumb_key     VARCHAR(200) NOT NULL,
    created_at    BIGINT NOT NULL,
    FOREIGN KEY (owner_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE listings (
    id              BIGINT PRIMARY KEY AUTO_INCREMENT,
    seller_id       BIGINT NOT NULL,
    title           VARCHAR(400) NOT NULL,
    description     VARCHAR(5000) NOT NULL,
    price           BIGINT NOT NULL CHECK (price >= 0),
    category        VARCHAR(32) NOT NULL,
    status          VARCHAR(16) NOT NULL CHECK (status IN ('selling', 'reserved', 'sold', 'hidden')),
    search_text     VARCHAR(5200) NOT NULL,
    buyer_id        BIGINT,
    view_count      BIGINT NOT NULL DEFAULT 0,
    favourite_count BIGINT NOT NULL DEFAULT 0,
    chat_count      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    sold_at         BIGINT,
    deleted_at      BIGINT,
    INDEX listings_feed (deleted_at, status, id),
    INDEX listings_by_price (price, id),
    INDEX listings_by_seller (seller_id, id),
    FOREIGN KEY (seller_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE listing_images (
    listing_id  BIGINT NOT NULL,
    position    BIGINT NOT NULL,
    media_id    BIGINT NOT NULL,
    PRIMARY KEY (listing_id, position)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE favourites (
    user_id     BIGINT NOT NULL,
    listing_id  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, listing_id),
    INDEX favourites_by_listing (listing_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE blocks (
    blocker_id  BIGINT NOT NULL,
    blocked_id  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    INDEX blocks_by_blocked (blocked_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE reports (
    id           BIGINT PRIMARY KEY AUTO_INCREMENT,
    reporter_id  BIGINT NOT NULL,
    target_kind  VARCHAR(16) NOT NULL CHECK (target_kind IN ('listing', 'user', 'message')),
    target_id    BIGINT NOT NULL,
    room_id      BIGINT,
    reason       VARCHAR(500) NOT NULL,
    created_at   BIGINT NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE reservations (
    id                 BIGINT PRIMARY KEY AUTO_INCREMENT,
    listing_id         BIGINT NOT NULL,
    buyer_id           BIGINT NOT NULL,
    active_listing_id  BIGINT UNIQUE,
    until              BIGINT,
    status             VARCHAR(16) NOT NULL CHECK (status IN ('active', 'cancelled', 'expired', 'completed', 'replaced')),
    created_at         BIGINT NOT NULL,
    ended_at           BIGINT,
    INDEX reservations_timed (status, until)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

CREATE TABLE reviews (
    id           BIGINT PRIMARY KEY AUTO_INCREMENT,
    listing_id   BIGINT NOT NULL,
    reviewer_id  BIGINT NOT NULL,
    reviewee_id  BIGINT NOT NULL,
    rating       VARCHAR(8) NOT NULL CHECK (rating IN ('good', 'bad')),
    tags         VARCHAR(400) NOT NULL DEFAULT '',
    body         VARCHAR(500) NOT NULL,
    created_at   BIGINT NOT NULL,
    UNIQUE (listing_id, reviewer_id),
    INDEX reviews_by_reviewee (reviewee_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

ALTER TABLE rooms ADD COLUMN listing_id BIGINT;
CREATE INDEX rooms_by_listing ON rooms (listing_id);
ALTER TABLE rooms ADD COLUMN min_manner_score DOUBLE;
