-- Dataset counters as changes added up on read, so that writers of one dataset's images no
-- longer queue on its row.
--
-- The counter triggers updated the dataset's row in every statement that changed a counted
-- image, so each such transaction held that row's lock from its statement to its commit:
-- annotation saves into one dataset ran one at a time (about 1,200 a second from 16
-- connections, most of them waiting on the row). Each statement now inserts what it changed,
-- per dataset, into `dataset_counter_changes`, which nobody updates; readers add the changes
-- to the row (`counted_datasets`), and servers fold them into the row in the background
-- (`fold_counter_changes` in the store: one transaction deletes them and adds their sums).
-- The table has no foreign key: checking one would lock the dataset's row again. Changes of a
-- deleted dataset are dropped by the next fold.
--
-- The triggers' statements are written out instead of built at each call (`EXECUTE`), so
-- that their plans are kept: building them took about half of a one-image save's time.
CREATE TABLE dataset_counter_changes (
    dataset_id TEXT COLLATE "C" NOT NULL,
    image_count BIGINT NOT NULL,
    new_image_count BIGINT NOT NULL,
    annotate_image_count BIGINT NOT NULL,
    review_image_count BIGINT NOT NULL,
    completed_image_count BIGINT NOT NULL,
    archived_images BIGINT NOT NULL,
    total_size BIGINT NOT NULL,
    annotation_count BIGINT NOT NULL
);
CREATE INDEX dataset_counter_changes_dataset ON dataset_counter_changes (dataset_id);

DROP TRIGGER images_counters_insert ON images;
DROP TRIGGER images_counters_delete ON images;
DROP TRIGGER images_counters_update ON images;
DROP FUNCTION images_counters();

-- Rows a statement added count up, rows it removed count down; an update does both. Inserts
-- and deletes name their one transition table `changed_rows`; an update names its new rows
-- so and its old ones `old_rows`.
CREATE FUNCTION images_counters() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    direction INT := CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO dataset_counter_changes
        SELECT * FROM (
            SELECT dataset_id,
                SUM(sign * (is_archived = 0)::int) AS live,
                SUM(sign * (is_archived = 0 AND status = 'new')::int) AS fresh,
                SUM(sign * (is_archived = 0 AND status = 'annotate')::int) AS annotate,
                SUM(sign * (is_archived = 0 AND status = 'review')::int) AS review,
                SUM(sign * (is_archived = 0 AND status = 'complete')::int) AS complete,
                SUM(sign * (is_archived <> 0)::int) AS archived,
                SUM(sign * CASE WHEN is_archived = 0 THEN file_size ELSE 0 END) AS size,
                SUM(sign * CASE WHEN is_archived = 0 THEN annotation_count ELSE 0 END) AS notes
            FROM (SELECT 1 AS sign, * FROM changed_rows UNION ALL SELECT -1, * FROM old_rows) c
            GROUP BY dataset_id
        ) s
        WHERE (live, fresh, annotate, review, complete, archived, size, notes)
            <> (0, 0, 0, 0, 0, 0, 0, 0);
    ELSE
        INSERT INTO dataset_counter_changes
        SELECT dataset_id,
            direction * COUNT(*) FILTER (WHERE is_archived = 0),
            direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'new'),
            direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'annotate'),
            direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'review'),
            direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'complete'),
            direction * COUNT(*) FILTER (WHERE is_archived <> 0),
            direction * COALESCE(SUM(file_size) FILTER (WHERE is_archived = 0), 0),
            direction * COALESCE(SUM(annotation_count) FILTER (WHERE is_archived = 0), 0)
        FROM changed_rows
        GROUP BY dataset_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER images_counters_insert AFTER INSERT ON images
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_delete AFTER DELETE ON images
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_update AFTER UPDATE ON images
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION images_counters();

-- Datasets with their counters as of now: the row's, plus the changes not folded into it yet.
CREATE VIEW counted_datasets AS
SELECT d.id, d.org_id, d.name, d.description, d.classes, d.annotation_types,
    d.image_count + c.image_count AS image_count,
    d.new_image_count + c.new_image_count AS new_image_count,
    d.annotate_image_count + c.annotate_image_count AS annotate_image_count,
    d.review_image_count + c.review_image_count AS review_image_count,
    d.completed_image_count + c.completed_image_count AS completed_image_count,
    d.archived_images + c.archived_images AS archived_images,
    d.total_size + c.total_size AS total_size,
    d.annotation_count + c.annotation_count AS annotation_count,
    d.created_at, d.updated_at
FROM datasets d CROSS JOIN LATERAL (
    SELECT COALESCE(SUM(x.image_count), 0)::bigint AS image_count,
        COALESCE(SUM(x.new_image_count), 0)::bigint AS new_image_count,
        COALESCE(SUM(x.annotate_image_count), 0)::bigint AS annotate_image_count,
        COALESCE(SUM(x.review_image_count), 0)::bigint AS review_image_count,
        COALESCE(SUM(x.completed_image_count), 0)::bigint AS completed_image_count,
        COALESCE(SUM(x.archived_images), 0)::bigint AS archived_images,
        COALESCE(SUM(x.total_size), 0)::bigint AS total_size,
        COALESCE(SUM(x.annotation_count), 0)::bigint AS annotation_count
    FROM dataset_counter_changes x WHERE x.dataset_id = d.id
) c;
