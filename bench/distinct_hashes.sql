-- Gives every image of a PostgreSQL database seeded by the scale tool a hash of its own, as
-- real photos have (the scale tool's images all share one). The triggers are off for the
-- update; the table of references, where the schema has one, is rebuilt from the images.
-- Used by bench/batch_ab.sh and bench/postgres_floor.py (`--distinct-hashes`).
ALTER TABLE images DISABLE TRIGGER USER;
UPDATE images SET blob_hash = sha256(convert_to(id, 'UTF8'));
ALTER TABLE images ENABLE TRIGGER USER;
DO $$ BEGIN
    IF to_regclass('image_blobs') IS NOT NULL THEN
        TRUNCATE image_blobs;
        INSERT INTO image_blobs (blob_hash, image_id) SELECT blob_hash, id FROM images;
    END IF;
END $$;
VACUUM FULL;
ANALYZE;
