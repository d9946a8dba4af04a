-- An open room may belong to a region (읍/면/동 code): its creator is
-- verified there, and joiners need a verified neighbourhood whose range
-- takes it in.
ALTER TABLE rooms ADD COLUMN region_code VARCHAR(10) NULL;
CREATE INDEX rooms_by_region ON rooms (region_code, id);
