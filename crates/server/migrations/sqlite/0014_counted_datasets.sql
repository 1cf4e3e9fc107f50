-- Datasets with their counters as of now. On SQLite the row holds them already (its triggers
-- update it in the writing transaction, and SQLite runs one writer at a time); PostgreSQL
-- adds changes not yet folded into the row (its migration 0018). Readers of counters read
-- this view on both.
CREATE VIEW counted_datasets AS
SELECT id, org_id, name, description, classes, annotation_types, image_count,
    new_image_count, annotate_image_count, review_image_count, completed_image_count,
    archived_images, total_size, annotation_count, created_at, updated_at
FROM datasets;
