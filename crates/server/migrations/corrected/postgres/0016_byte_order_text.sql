-- The correction of migrations/postgres/0016_byte_order_text.sql that new databases apply
-- (see `CORRECTED_POSTGRES` in src/store/mod.rs). The release changed every text column of
-- every table and view in the schema: it failed on a view some extension had put there
-- (pg_stat_statements in `public`: "ALTER action ALTER COLUMN ... SET DATA TYPE cannot be
-- performed on relation"), and would have changed the tables of any other application
-- sharing the schema. This one changes the server's own tables only, which ends the same for
-- them, so a database that applied the release keeps it as it is.
--
-- Text compares byte by byte (the "C" collation), whatever the database's locale, as it does
-- on SQLite. Under a libc locale (C.UTF-8, en_US.UTF-8, …) every comparison in an index of
-- ids, names, folders and times goes through strcoll: batches of 100,000 images, which insert
-- five index entries per image, ran 7-13% slower for it. Byte order also makes names, folders
-- and the listings that sort by them come out in the same order on both backends, and lets a
-- folder's sub-folders be read as one range of the name index (`folder >= '/a/' AND folder <
-- '/a0'`), which a linguistic order would not keep together.
--
-- Changing a column's collation rewrites none of its rows but rebuilds every index on it:
-- one ALTER TABLE per table, so that each index is built once (about 10-20 s per million
-- images). A new text column should be declared `COLLATE "C"` too.
DROP TRIGGER datasets_changes ON datasets;

DO $$
DECLARE
    t RECORD;
BEGIN
    FOR t IN
        SELECT table_name,
               string_agg(format('ALTER COLUMN %I TYPE TEXT COLLATE "C"', column_name), ', ') AS changes
        FROM information_schema.columns
        WHERE table_schema = current_schema()
            AND data_type = 'text'
            AND table_name IN ('api_keys', 'blob_holds', 'blobs', 'datasets', 'export_jobs',
                'idempotency', 'image_annotations', 'images', 'organizations',
                'pending_uploads', 'rate_buckets', 'settings')
        GROUP BY table_name
    LOOP
        EXECUTE format('ALTER TABLE %I %s', t.table_name, t.changes);
    END LOOP;
END;
$$;

CREATE TRIGGER datasets_changes AFTER UPDATE OF org_id ON datasets
    FOR EACH STATEMENT EXECUTE FUNCTION notify_changes('images');
