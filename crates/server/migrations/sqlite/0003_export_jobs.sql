-- Export jobs: a dataset written in a training format (COCO, YOLO, VOC, pictograph) into one
-- tar archive stored among the blobs (not in the blobs table: only its job refers to it).
CREATE TABLE export_jobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    format TEXT NOT NULL,
    status_filter TEXT,
    polygons_as_boxes BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    images_total BIGINT NOT NULL DEFAULT 0,
    images_done BIGINT NOT NULL DEFAULT 0,
    annotations BIGINT NOT NULL DEFAULT 0,
    warnings TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    archive_hash TEXT,
    archive_size BIGINT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX export_jobs_dataset ON export_jobs (dataset_id, created_at);
