-- Upload quotas and the sweep of unattached uploads (MySQL 8 / MariaDB
-- 10.11). Mirrors ../sqlite.
CREATE INDEX media_by_owner ON media (owner_id, created_at);
CREATE INDEX media_by_age ON media (created_at);
CREATE INDEX listing_images_by_media ON listing_images (media_id);
CREATE INDEX product_images_by_media ON product_images (media_id);
