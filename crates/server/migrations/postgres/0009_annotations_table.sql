-- Annotation lists move out of the images table into a table of their own, one row per image
-- that has any. A labelled image's list (a few hundred bytes to kilobytes of JSON) made its row
-- several times wider, and every batch over images wrote a new version of the whole row:
-- fewer versions fit beside the old ones on a page, so fewer updates stayed heap-only, and
-- each one copied and logged the list again. `annotation_count` stays on the image: the
-- dataset counters and listings read it. Rows written before this migration keep the list's
-- bytes until they are next updated (or the table is rewritten).
CREATE TABLE image_annotations (
    image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    annotations TEXT NOT NULL
);
INSERT INTO image_annotations (image_id, annotations)
    SELECT id, annotations FROM images WHERE annotation_count > 0;
ALTER TABLE images DROP COLUMN annotations;
