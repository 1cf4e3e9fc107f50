-- Live images per status, kept with the other dataset counters (`completed_image_count`
-- already counts 'complete'), so that a listing filtered by status answers its total without
-- reading the dataset.
--
-- The update trigger runs again for any status change of a live image (migration 0007 had
-- limited it to changes to or from 'complete'). One dataset update per image now costs a
-- 100,000-image status batch 3-7% (it was a third when 0007 was written); counting the
-- chunk's statuses in the batch statement instead cost as much, and a trigger counts
-- whatever statement changes a row.
ALTER TABLE datasets ADD COLUMN new_image_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN annotate_image_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE datasets ADD COLUMN review_image_count BIGINT NOT NULL DEFAULT 0;

UPDATE datasets SET (new_image_count, annotate_image_count, review_image_count, completed_image_count) = (
    SELECT COALESCE(SUM(status = 'new'), 0), COALESCE(SUM(status = 'annotate'), 0),
        COALESCE(SUM(status = 'review'), 0), COALESCE(SUM(status = 'complete'), 0)
    FROM images WHERE images.dataset_id = datasets.id AND images.is_archived = 0
);

DROP TRIGGER images_counters_insert;
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
    WHERE id = NEW.dataset_id;
END;

DROP TRIGGER images_counters_delete;
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
    WHERE id = OLD.dataset_id;
END;

DROP TRIGGER images_counters_update;
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
    WHERE id = NEW.dataset_id;
END;
