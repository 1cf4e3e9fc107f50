-- Live images in listing order: a page skips index entries only, never rows, so deep pages
-- of a large dataset stay cheap.
CREATE INDEX images_live_order ON images (dataset_id, created_at, id) WHERE is_archived = 0;
