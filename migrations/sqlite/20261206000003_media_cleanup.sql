-- Upload quotas and the sweep of unattached uploads: a user's media by
-- owner (the storage quota sums them), and the references the sweep looks
-- for by media id.
CREATE INDEX media_by_owner ON media (owner_id, created_at);
CREATE INDEX media_by_age ON media (created_at);
CREATE INDEX listing_images_by_media ON listing_images (media_id);
CREATE INDEX product_images_by_media ON product_images (media_id);
