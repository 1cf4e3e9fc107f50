-- Live images in listing order: a page skips index entries only, never rows, so deep pages
-- of a large dataset stay cheap.
CREATE INDEX images_live_order ON images (dataset_id, created_at, id) WHERE is_archived = 0;

-- Dataset counters, kept per statement instead of per row: a batch that changes 100,000
-- images updates each dataset row once, from the statement's transition tables.
DROP TRIGGER images_counters_insert ON images;
DROP TRIGGER images_counters_delete ON images;
DROP TRIGGER images_counters_update ON images;
DROP FUNCTION images_counters();

CREATE FUNCTION images_counters() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    -- Rows a statement added count up, rows it removed count down; an update does both.
    changes TEXT := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT 1 AS sign, * FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT -1 AS sign, * FROM old_rows'
        ELSE 'SELECT 1 AS sign, * FROM new_rows UNION ALL SELECT -1, * FROM old_rows'
    END;
BEGIN
    EXECUTE format($sql$
        UPDATE datasets d SET
            image_count = d.image_count + c.live,
            completed_image_count = d.completed_image_count + c.complete,
            archived_images = d.archived_images + c.archived,
            total_size = d.total_size + c.size,
            annotation_count = d.annotation_count + c.annotations
        FROM (
            SELECT dataset_id,
                SUM(sign * (is_archived = 0)::int) AS live,
                SUM(sign * (is_archived = 0 AND status = 'complete')::int) AS complete,
                SUM(sign * (is_archived <> 0)::int) AS archived,
                SUM(sign * CASE WHEN is_archived = 0 THEN file_size ELSE 0 END) AS size,
                SUM(sign * CASE WHEN is_archived = 0 THEN annotation_count ELSE 0 END) AS annotations
            FROM (%s) changes
            GROUP BY dataset_id
        ) c
        WHERE d.id = c.dataset_id
            AND (c.live, c.complete, c.archived, c.size, c.annotations) <> (0, 0, 0, 0, 0)
    $sql$, changes);
    RETURN NULL;
END;
$$;

CREATE TRIGGER images_counters_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();
