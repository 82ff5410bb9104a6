-- 0001: instances, their key/value space and the generation counter.

-- One row per instance. settings is the JSON of portrait.Settings;
-- created_at is RFC 3339 with nanoseconds, always UTC.
CREATE TABLE instances (
    id         INTEGER PRIMARY KEY,
    type       TEXT    NOT NULL,
    engine     TEXT    NOT NULL,
    token_hash BLOB    NOT NULL,
    settings   TEXT    NOT NULL CHECK (json_valid(settings)),
    created_at TEXT    NOT NULL
);

-- The per-instance key/value space of portrait.KV.
CREATE TABLE kv (
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    value       BLOB    NOT NULL,
    PRIMARY KEY (instance_id, key)
) WITHOUT ROWID;

-- A single row counting instance changes; every transaction that creates,
-- changes or deletes an instance increments it (Store.Generation).
CREATE TABLE generation (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);

INSERT INTO generation (id, value) VALUES (1, 0);
