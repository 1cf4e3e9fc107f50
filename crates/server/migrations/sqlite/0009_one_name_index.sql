-- One index over every image's name instead of two with the same key. `images_live_name`
-- (unique, live images only) and `images_path` (all images) both held (dataset, folder, file
-- name), so a move rewrote two index entries per image and every insert wrote both. The new
-- index ends in a marker that is empty for a live image and the image's own id for an
-- archived one: live names stay unique, archived images of one name may repeat, and a lookup
-- by path, archived images included, reads its first three columns.
CREATE UNIQUE INDEX images_name ON images
    (dataset_id, folder, filename, (CASE WHEN is_archived = 0 THEN '' ELSE id END));
DROP INDEX images_live_name;
DROP INDEX images_path;
