-- Organisations own API keys and datasets.
CREATE TABLE organizations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

-- API keys are stored only as the SHA-256 of the whole key.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    tier TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE datasets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES organizations(id),
    name TEXT NOT NULL,
    description TEXT,
    classes TEXT NOT NULL DEFAULT '[]',
    annotation_types TEXT NOT NULL DEFAULT '["bbox"]',
    image_count BIGINT NOT NULL DEFAULT 0,
    completed_image_count BIGINT NOT NULL DEFAULT 0,
    archived_images BIGINT NOT NULL DEFAULT 0,
    total_size BIGINT NOT NULL DEFAULT 0,
    annotation_count BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX datasets_org_created ON datasets (org_id, created_at, id);

-- Image bytes, content-addressed; written once, never modified.
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    mime TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    touched_at TEXT NOT NULL
);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    filename TEXT NOT NULL,
    display_name TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    is_archived BIGINT NOT NULL DEFAULT 0,
    blob_hash TEXT NOT NULL,
    file_size BIGINT NOT NULL,
    mime_type TEXT NOT NULL,
    width BIGINT,
    height BIGINT,
    annotations TEXT NOT NULL DEFAULT '[]',
    annotation_count BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- One live image per (dataset, folder, filename); archived ones may repeat.
CREATE UNIQUE INDEX images_live_name ON images (dataset_id, folder, filename) WHERE is_archived = 0;
CREATE INDEX images_dataset_order ON images (dataset_id, created_at, id);
CREATE INDEX images_blob ON images (blob_hash);

-- A signed upload URL that was handed out, and what its PUT stored.
CREATE TABLE pending_uploads (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
    folder TEXT NOT NULL,
    filename TEXT NOT NULL,
    content_type TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    blob_hash TEXT,
    size BIGINT,
    mime TEXT,
    width BIGINT,
    height BIGINT,
    created_at TEXT NOT NULL
);
CREATE INDEX pending_uploads_blob ON pending_uploads (blob_hash);
CREATE INDEX pending_uploads_expiry ON pending_uploads (expires_at);

-- Responses to writes, replayed when the same Idempotency-Key comes again.
CREATE TABLE idempotency (
    key_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- Dataset counters follow every change of an image row, whatever statement made it.
CREATE FUNCTION images_counters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE datasets SET
            image_count = image_count - (OLD.is_archived = 0)::int,
            completed_image_count = completed_image_count - (OLD.is_archived = 0 AND OLD.status = 'complete')::int,
            archived_images = archived_images - (OLD.is_archived <> 0)::int,
            total_size = total_size - CASE WHEN OLD.is_archived = 0 THEN OLD.file_size ELSE 0 END,
            annotation_count = annotation_count - CASE WHEN OLD.is_archived = 0 THEN OLD.annotation_count ELSE 0 END
        WHERE id = OLD.dataset_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        UPDATE datasets SET
            image_count = image_count + (NEW.is_archived = 0)::int,
            completed_image_count = completed_image_count + (NEW.is_archived = 0 AND NEW.status = 'complete')::int,
            archived_images = archived_images + (NEW.is_archived <> 0)::int,
            total_size = total_size + CASE WHEN NEW.is_archived = 0 THEN NEW.file_size ELSE 0 END,
            annotation_count = annotation_count + CASE WHEN NEW.is_archived = 0 THEN NEW.annotation_count ELSE 0 END
        WHERE id = NEW.dataset_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER images_counters_insert AFTER INSERT ON images
    FOR EACH ROW EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_delete AFTER DELETE ON images
    FOR EACH ROW EXECUTE FUNCTION images_counters();
CREATE TRIGGER images_counters_update AFTER UPDATE OF is_archived, status, file_size, annotation_count ON images
    FOR EACH ROW EXECUTE FUNCTION images_counters();
