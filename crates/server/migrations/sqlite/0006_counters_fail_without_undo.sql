-- The counter triggers update their dataset with UPDATE OR FAIL. With the default conflict
-- handling, a statement firing them could stop half-way and undo its own rows, so SQLite kept
-- a statement journal (a copy of every page the statement changes) for any insert, update or
-- delete of many images inside a transaction. A failure rolls the whole transaction back
-- anyway, so that copy bought nothing.

DROP TRIGGER images_counters_insert;
CREATE TRIGGER images_counters_insert AFTER INSERT ON images BEGIN
    UPDATE OR FAIL datasets SET
        image_count = image_count + (NEW.is_archived = 0),
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
        completed_image_count = completed_image_count - (OLD.is_archived = 0 AND OLD.status = 'complete'),
        archived_images = archived_images - (OLD.is_archived <> 0),
        total_size = total_size - CASE WHEN OLD.is_archived = 0 THEN OLD.file_size ELSE 0 END,
        annotation_count = annotation_count - CASE WHEN OLD.is_archived = 0 THEN OLD.annotation_count ELSE 0 END
    WHERE id = OLD.dataset_id;
END;

DROP TRIGGER images_counters_update;
CREATE TRIGGER images_counters_update AFTER UPDATE OF is_archived, status, file_size, annotation_count ON images BEGIN
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
