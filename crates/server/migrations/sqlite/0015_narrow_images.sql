-- no-transaction
-- Narrower image rows: an image names its dataset by the dataset's integer `seq` instead of
-- its 36-character id, keeps its SHA-256 as 32 bytes instead of 64 hex digits, and its times
-- as microseconds since 1970 instead of 27-character text. Image ids stay text. A batch over
-- images spread through a dataset rewrites every page of the table and of the indexes it
-- changes, so its time follows their size: on a million images the table and its indexes
-- shrink from 666 to 375 MB, and SQLite's own statements for 100,000 spread images took 0.74 s
-- instead of 1.03 to archive, 0.51 instead of 0.77 to move and 0.42 instead of 0.60 to change
-- status (`bench/sqlite_narrow_rows.py`).
--
-- SQLite cannot change a column's type, so the table is rebuilt. With foreign keys on,
-- dropping the old table would delete every image's annotations (their rows cascade from
-- the image), so the keys are off for the rebuild, outside its transaction. Every image has
-- its dataset (the keys were on), so the join below keeps them all.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

ALTER TABLE datasets ADD COLUMN seq INTEGER;
UPDATE datasets SET seq = rowid;
CREATE UNIQUE INDEX datasets_seq ON datasets (seq);
-- A new dataset gets the next number (a row id could be taken again after a VACUUM).
CREATE TRIGGER datasets_seq AFTER INSERT ON datasets WHEN NEW.seq IS NULL BEGIN
    UPDATE datasets SET seq = (SELECT IFNULL(MAX(seq), 0) + 1 FROM datasets) WHERE id = NEW.id;
END;

CREATE TABLE images_narrow (
    id TEXT PRIMARY KEY,
    dataset_seq INTEGER NOT NULL REFERENCES datasets(seq) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    filename TEXT NOT NULL,
    display_name TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    is_archived BIGINT NOT NULL DEFAULT 0,
    blob_hash BLOB NOT NULL,
    file_size BIGINT NOT NULL,
    mime_type TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    annotation_count BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO images_narrow
SELECT i.id, d.seq, i.folder, i.filename, i.display_name, i.status, i.is_archived,
    unhex(i.blob_hash), i.file_size, i.mime_type, i.width, i.height, i.annotation_count,
    i.version,
    unixepoch(substr(i.created_at, 1, 19)) * 1000000 + CAST(substr(i.created_at, 21, 6) AS INTEGER),
    unixepoch(substr(i.updated_at, 1, 19)) * 1000000 + CAST(substr(i.updated_at, 21, 6) AS INTEGER)
FROM images i JOIN datasets d ON d.id = i.dataset_id
ORDER BY i.rowid;
DROP TABLE images;
ALTER TABLE images_narrow RENAME TO images;

CREATE UNIQUE INDEX images_name ON images
    (dataset_seq, folder, filename, (CASE WHEN is_archived = 0 THEN '' ELSE id END));
CREATE INDEX images_dataset_order ON images (dataset_seq, created_at, id);
CREATE INDEX images_live_order ON images (dataset_seq, created_at, id) WHERE is_archived = 0;
CREATE INDEX images_blob ON images (blob_hash);

CREATE TRIGGER images_counters_insert AFTER INSERT ON images BEGIN
    UPDATE OR FAIL datasets SET
        image_count = image_count + (NEW.is_archived = 0),
        new_image_count = new_image_count + (NEW.is_archived = 0 AND NEW.status = 'new'),
        annotate_image_count = annotate_image_count + (NEW.is_archived = 0 AND NEW.status = 'annotate'),
        review_image_count = review_image_count + (NEW.is_archived = 0 AND NEW.status = 'review'),
        completed_image_count = completed_image_count + (NEW.is_archived = 0 AND NEW.status = 'complete'),
        archived_images = archived_images + (NEW.is_archived <> 0),
        total_size = total_size + CASE WHEN NEW.is_archived = 0 THEN NEW.file_size ELSE 0 END,
        annotation_count = annotation_count + CASE WHEN NEW.is_archived = 0 THEN NEW.annotation_count ELSE 0 END
    WHERE seq = NEW.dataset_seq;
END;

CREATE TRIGGER images_counters_delete AFTER DELETE ON images BEGIN
    UPDATE OR FAIL datasets SET
        image_count = image_count - (OLD.is_archived = 0),
        new_image_count = new_image_count - (OLD.is_archived = 0 AND OLD.status = 'new'),
        annotate_image_count = annotate_image_count - (OLD.is_archived = 0 AND OLD.status = 'annotate'),
        review_image_count = review_image_count - (OLD.is_archived = 0 AND OLD.status = 'review'),
        completed_image_count = completed_image_count - (OLD.is_archived = 0 AND OLD.status = 'complete'),
        archived_images = archived_images - (OLD.is_archived <> 0),
        total_size = total_size - CASE WHEN OLD.is_archived = 0 THEN OLD.file_size ELSE 0 END,
        annotation_count = annotation_count - CASE WHEN OLD.is_archived = 0 THEN OLD.annotation_count ELSE 0 END
    WHERE seq = OLD.dataset_seq;
END;

CREATE TRIGGER images_counters_update AFTER UPDATE OF is_archived, status, file_size, annotation_count ON images
WHEN OLD.is_archived <> NEW.is_archived
    OR OLD.file_size <> NEW.file_size
    OR OLD.annotation_count <> NEW.annotation_count
    OR (NEW.is_archived = 0 AND OLD.status <> NEW.status)
BEGIN
    UPDATE OR FAIL datasets SET
        image_count = image_count - (OLD.is_archived = 0) + (NEW.is_archived = 0),
        new_image_count = new_image_count
            - (OLD.is_archived = 0 AND OLD.status = 'new')
            + (NEW.is_archived = 0 AND NEW.status = 'new'),
        annotate_image_count = annotate_image_count
            - (OLD.is_archived = 0 AND OLD.status = 'annotate')
            + (NEW.is_archived = 0 AND NEW.status = 'annotate'),
        review_image_count = review_image_count
            - (OLD.is_archived = 0 AND OLD.status = 'review')
            + (NEW.is_archived = 0 AND NEW.status = 'review'),
        completed_image_count = completed_image_count
            - (OLD.is_archived = 0 AND OLD.status = 'complete')
            + (NEW.is_archived = 0 AND NEW.status = 'complete'),
        archived_images = archived_images - (OLD.is_archived <> 0) + (NEW.is_archived <> 0),
        total_size = total_size
            - CASE WHEN OLD.is_archived = 0 THEN OLD.file_size ELSE 0 END
            + CASE WHEN NEW.is_archived = 0 THEN NEW.file_size ELSE 0 END,
        annotation_count = annotation_count
            - CASE WHEN OLD.is_archived = 0 THEN OLD.annotation_count ELSE 0 END
            + CASE WHEN NEW.is_archived = 0 THEN NEW.annotation_count ELSE 0 END
    WHERE seq = NEW.dataset_seq;
END;

COMMIT;
PRAGMA foreign_keys = ON;
