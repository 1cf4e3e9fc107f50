-- Holds on freeing bytes: while a row here is valid (`until` in the future), no stored
-- bytes are freed. A running backup holds them, renewing its row, so bytes its database
-- copy refers to are still there when it copies them.
CREATE TABLE blob_holds (
    id TEXT PRIMARY KEY,
    until TEXT NOT NULL
);
