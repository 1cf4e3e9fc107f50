-- Annotation lists move out of the images table into a table of their own, one row per image
-- that has any. A labelled image's list (a few hundred bytes to kilobytes of JSON) made its row
-- several times wider, and every batch over images rewrote it: with four boxes per image, a
-- status update, move or archive of 100,000 of a million images wrote about twice the pages
-- (and took about twice the time) of the same batch over unlabelled images. `annotation_count`
-- stays on the image: the dataset counters and listings read it.
CREATE TABLE image_annotations (
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    annotations TEXT NOT NULL
);
INSERT INTO image_annotations (image_id, annotations)
    SELECT id, annotations FROM images WHERE annotation_count > 0;
ALTER TABLE images DROP COLUMN annotations;
