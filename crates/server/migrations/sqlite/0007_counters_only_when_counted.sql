-- The counter trigger runs only for an update that changes what the counters count: the
-- archived flag, the size, the annotation count, or a live image's status to or from
-- 'complete'. A batch that sets 100,000 images to 'review' then runs no trigger at all
-- instead of one dataset update per image (about a third of its time).

DROP TRIGGER images_counters_update;
CREATE TRIGGER images_counters_update AFTER UPDATE OF is_archived, status, file_size, annotation_count ON images
WHEN OLD.is_archived <> NEW.is_archived
    OR OLD.file_size <> NEW.file_size
    OR OLD.annotation_count <> NEW.annotation_count
    OR (NEW.is_archived = 0 AND (OLD.status = 'complete') <> (NEW.status = 'complete'))
BEGIN
    UPDATE OR FAIL datasets SET
        image_count = image_count - (OLD.is_archived = 0) + (NEW.is_archived = 0),
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
