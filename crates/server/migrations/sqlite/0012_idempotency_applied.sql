-- A keyed write records, in its own transaction, that it was applied. A retry that finds
-- the key claimed by a server that stopped before keeping the answer then learns the write
-- took effect, instead of running it a second time.
ALTER TABLE idempotency ADD COLUMN applied BIGINT NOT NULL DEFAULT 0;
