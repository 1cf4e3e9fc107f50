-- Request budgets shared by every server process using this database.
CREATE TABLE rate_buckets (
    key_id TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    updated_ms BIGINT NOT NULL,
    last_ok BIGINT NOT NULL
);
