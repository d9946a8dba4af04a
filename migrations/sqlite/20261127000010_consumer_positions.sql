-- Where a durable bus consumer (the notifications consumer) has got to, per
-- partition: the next offset to read. Shared by every node; only ever moved
-- forward. Mirrors ../mysql.
CREATE TABLE consumer_positions (
    consumer     TEXT NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (consumer, partition_id)
);
