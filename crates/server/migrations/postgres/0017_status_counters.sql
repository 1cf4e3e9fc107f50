-- Live images per status, kept with the other dataset counters (`completed_image_count`
-- already counts 'complete'), so that a listing filtered by status answers its total without
-- reading the dataset. The statement trigger counts them from its transition tables like the
-- others; a status change alone now updates the dataset row too (once per statement).
ALTER TABLE datasets
    ADD COLUMN new_image_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN annotate_image_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN review_image_count BIGINT NOT NULL DEFAULT 0;

UPDATE datasets d SET
    new_image_count = c.fresh,
    annotate_image_count = c.annotate,
    review_image_count = c.review,
    completed_image_count = c.complete
FROM (
    SELECT dataset_id,
        COUNT(*) FILTER (WHERE status = 'new') AS fresh,
        COUNT(*) FILTER (WHERE status = 'annotate') AS annotate,
        COUNT(*) FILTER (WHERE status = 'review') AS review,
        COUNT(*) FILTER (WHERE status = 'complete') AS complete
    FROM images WHERE is_archived = 0 GROUP BY dataset_id
) c
WHERE d.id = c.dataset_id;

CREATE OR REPLACE FUNCTION images_counters() RETURNS trigger LANGUAGE plpgsql AS $$
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
            new_image_count = d.new_image_count + c.fresh,
            annotate_image_count = d.annotate_image_count + c.annotate,
            review_image_count = d.review_image_count + c.review,
            completed_image_count = d.completed_image_count + c.complete,
            archived_images = d.archived_images + c.archived,
            total_size = d.total_size + c.size,
            annotation_count = d.annotation_count + c.annotations
        FROM (
            SELECT dataset_id,
                SUM(sign * (is_archived = 0)::int) AS live,
                SUM(sign * (is_archived = 0 AND status = 'new')::int) AS fresh,
                SUM(sign * (is_archived = 0 AND status = 'annotate')::int) AS annotate,
                SUM(sign * (is_archived = 0 AND status = 'review')::int) AS review,
                SUM(sign * (is_archived = 0 AND status = 'complete')::int) AS complete,
                SUM(sign * (is_archived <> 0)::int) AS archived,
                SUM(sign * CASE WHEN is_archived = 0 THEN file_size ELSE 0 END) AS size,
                SUM(sign * CASE WHEN is_archived = 0 THEN annotation_count ELSE 0 END) AS annotations
            FROM (%s) changes
            GROUP BY dataset_id
        ) c
        WHERE d.id = c.dataset_id
            AND (c.live, c.fresh, c.annotate, c.review, c.complete, c.archived, c.size, c.annotations)
                <> (0, 0, 0, 0, 0, 0, 0, 0)
    $sql$, changes);
    RETURN NULL;
END;
$$;
