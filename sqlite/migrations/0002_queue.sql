-- 0002: the notification queue and the jobs that feed it (portrait.Queue).
--
-- Times are INTEGER microseconds since the Unix epoch (UTC), so that they
-- compare and sort as numbers; the zero time.Time is -62135596800000000.

-- One row per queued notification. id is the receipt id: AUTOINCREMENT
-- makes SQLite never hand out an id again, even after the largest one is
-- deleted, so receipt ids keep growing for the life of the file. body is
-- the JSON envelope, stored as the bytes the caller gave.
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    body        BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- The oldest notification of an instance (Queue.Head), the depth of each
-- queue (Queue.Depths), and the cascade when an instance is deleted.
CREATE INDEX notifications_instance ON notifications (instance_id, id);

-- One row per pending job. ids are never reused either, so that finishing
-- a job twice cannot finish a newer job. key is '' for jobs that never
-- merge; deadline is NULL when the job has none.
CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    data        BLOB    NOT NULL,
    due_at      INTEGER NOT NULL,
    deadline    INTEGER,
    created_at  INTEGER NOT NULL
);

-- Merging: at most one job per instance, kind and non-empty key.
CREATE UNIQUE INDEX jobs_merge ON jobs (instance_id, kind, key) WHERE key <> '';

-- Queue.DueJobs, oldest due time first (ties in id order, the rowid).
CREATE INDEX jobs_due ON jobs (due_at);

-- The cascade when an instance is deleted (jobs_merge is partial, so it
-- cannot serve it).
CREATE INDEX jobs_instance ON jobs (instance_id);
