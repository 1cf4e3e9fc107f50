-- Values every server of an installation shares, made once by the first server that needs
-- them: the URL-signing key of servers started without --signing-secret.
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
