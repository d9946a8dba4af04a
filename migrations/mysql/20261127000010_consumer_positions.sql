-- Where a durable bus consumer (the notifications consumer) has got to, per
-- partition: the next offset to read. Shared by every node; only ever moved
-- forward (MySQL 8 / MariaDB 10.11). Mirrors ../sqlite.
CREATE TABLE consumer_positions (
    consumer     VARCHAR(64) NOT NULL,
    partition_id INT NOT NULL,
    next_offset  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer, partition_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
