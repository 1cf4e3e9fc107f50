-- Narrower image rows, as on SQLite (its migration 0015): an image names its dataset by the
-- dataset's integer `seq`, keeps its SHA-256 as 32 bytes and its times as microseconds since
-- 1970. PostgreSQL's batches cost per row rather than per byte, so this changes little for
-- them; the two backends keep one schema, so that every query is written once.
ALTER TABLE datasets ADD COLUMN seq BIGSERIAL;
ALTER TABLE datasets ADD CONSTRAINT datasets_seq_key UNIQUE (seq);

-- Filling the new column changes no counter: the counter and change-notice triggers are off
-- for it.
ALTER TABLE images DISABLE TRIGGER USER;
ALTER TABLE images ADD COLUMN dataset_seq BIGINT;
UPDATE images i SET dataset_seq = d.seq FROM datasets d WHERE d.id = i.dataset_id;
ALTER TABLE images ENABLE TRIGGER USER;

-- One rewrite of the table; dropping `dataset_id` drops the indexes that led with it.
ALTER TABLE images
    DROP COLUMN dataset_id,
    ALTER COLUMN dataset_seq SET NOT NULL,
    ADD CONSTRAINT images_dataset_seq_fkey
        FOREIGN KEY (dataset_seq) REFERENCES datasets (seq) ON DELETE CASCADE,
    ALTER COLUMN blob_hash TYPE BYTEA USING decode(blob_hash, 'hex'),
    ALTER COLUMN created_at TYPE BIGINT
        USING (EXTRACT(EPOCH FROM created_at::timestamptz) * 1000000)::bigint,
    ALTER COLUMN updated_at TYPE BIGINT
        USING (EXTRACT(EPOCH FROM updated_at::timestamptz) * 1000000)::bigint;

CREATE UNIQUE INDEX images_name ON images
    (dataset_seq, folder, filename, (CASE WHEN is_archived = 0 THEN '' ELSE id END));
CREATE INDEX images_live_order ON images (dataset_seq, created_at, id) WHERE is_archived = 0;
CREATE INDEX images_archived_order ON images (dataset_seq, created_at, id) WHERE is_archived <> 0;

-- The counter changes still name the dataset by its id (readers and the fold join on it).
CREATE OR REPLACE FUNCTION images_counters() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    direction INT := CASE TG_OP WHEN 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO dataset_counter_changes
        SELECT d.id, s.live, s.fresh, s.annotate, s.review, s.complete, s.archived, s.size,
            s.notes
        FROM (
            SELECT dataset_seq,
                SUM(sign * (is_archived = 0)::int) AS live,
                SUM(sign * (is_archived = 0 AND status = 'new')::int) AS fresh,
                SUM(sign * (is_archived = 0 AND status = 'annotate')::int) AS annotate,
                SUM(sign * (is_archived = 0 AND status = 'review')::int) AS review,
                SUM(sign * (is_archived = 0 AND status = 'complete')::int) AS complete,
                SUM(sign * (is_archived <> 0)::int) AS archived,
                SUM(sign * CASE WHEN is_archived = 0 THEN file_size ELSE 0 END) AS size,
                SUM(sign * CASE WHEN is_archived = 0 THEN annotation_count ELSE 0 END) AS notes
            FROM (SELECT 1 AS sign, * FROM changed_rows UNION ALL SELECT -1, * FROM old_rows) c
            GROUP BY dataset_seq
        ) s
        JOIN datasets d ON d.seq = s.dataset_seq
        WHERE (s.live, s.fresh, s.annotate, s.review, s.complete, s.archived, s.size, s.notes)
            <> (0, 0, 0, 0, 0, 0, 0, 0);
    ELSE
        INSERT INTO dataset_counter_changes
        SELECT d.id, s.live, s.fresh, s.annotate, s.review, s.complete, s.archived, s.size,
            s.notes
        FROM (
            SELECT dataset_seq,
                direction * COUNT(*) FILTER (WHERE is_archived = 0) AS live,
                direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'new') AS fresh,
                direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'annotate') AS annotate,
                direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'review') AS review,
                direction * COUNT(*) FILTER (WHERE is_archived = 0 AND status = 'complete') AS complete,
                direction * COUNT(*) FILTER (WHERE is_archived <> 0) AS archived,
                direction * COALESCE(SUM(file_size) FILTER (WHERE is_archived = 0), 0) AS size,
                direction * COALESCE(SUM(annotation_count) FILTER (WHERE is_archived = 0), 0) AS notes
            FROM changed_rows
            GROUP BY dataset_seq
        ) s
        JOIN datasets d ON d.seq = s.dataset_seq;
    END IF;
    RETURN NULL;
END;
$$;
