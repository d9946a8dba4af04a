-- A listing belongs to the region (읍/면/동 code) its seller was verified
-- in when posting it; the feed by range reads listings of a set of regions
-- newest first through this index.
ALTER TABLE listings ADD COLUMN region_code VARCHAR(10) NULL;
CREATE INDEX listings_by_region ON listings (region_code, id);
