-- A user's neighbourhoods (동네): at most two regions, each verified by a
-- position inside it until `verified_until`; one of them active, with the
-- range the feed uses (`dong`, `near`, `normal`, `far`).
CREATE TABLE neighbourhoods (
    user_id        BIGINT NOT NULL,
    region_code    VARCHAR(10) NOT NULL,
    verified_at    BIGINT NOT NULL,
    verified_until BIGINT NOT NULL,
    range_level    VARCHAR(10) NOT NULL,
    active         INTEGER NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (user_id, region_code),
    FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
