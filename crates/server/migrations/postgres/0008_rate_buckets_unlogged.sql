-- Request budgets change on every request of a limited key. Logged, each change waited for
-- its write-ahead log to reach the disk, holding the bucket's row lock meanwhile, so all
-- requests of one key queued behind one disk flush after another. Unlogged, a change
-- commits without waiting for the disk. PostgreSQL empties an unlogged table after a crash
-- (and a standby does not hold it): every key then starts again with a full budget.
ALTER TABLE rate_buckets SET UNLOGGED;
