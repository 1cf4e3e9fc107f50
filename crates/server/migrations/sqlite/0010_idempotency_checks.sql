-- A replay compares the request's body (its SHA-256) as well as its method and path, and an
-- answer too large to keep is recorded as not kept: a retry of that request is then refused
-- instead of being run a second time.
ALTER TABLE idempotency ADD COLUMN request_hash TEXT;
ALTER TABLE idempotency ADD COLUMN body_kept BIGINT NOT NULL DEFAULT 1;
