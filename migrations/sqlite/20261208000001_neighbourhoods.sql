-- A user's neighbourhoods (동네): at most two regions, each verified by a
-- position inside it until `verified_until`; one of them active, with the
-- range the feed uses (`dong`, `near`, `normal`, `far`).
CREATE TABLE neighbourhoods (
    user_id        INTEGER NOT NULL REFERENCES users (id),
    region_code    TEXT NOT NULL,
    verified_at    INTEGER NOT NULL,
    verified_until INTEGER NOT NULL,
    range_level    TEXT NOT NULL,
    active         INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (user_id, region_code)
);
