-- 0004: nodes and instance leases (portrait.Leases). Times are INTEGER
-- microseconds since the Unix epoch, read from SQLite's clock (to the
-- millisecond), never from the caller.

-- One row per node that ever sent a heartbeat.
CREATE TABLE nodes (
    id        TEXT    PRIMARY KEY,
    addr      TEXT    NOT NULL,
    heartbeat INTEGER NOT NULL
) WITHOUT ROWID;

-- The last fence given (a single row): every new lease owner gets the next
-- one, so fences never repeat, across instances too.
CREATE TABLE lease_fences (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
);
INSERT INTO lease_fences (id, value) VALUES (1, 0);

-- The owner of each instance that has one, until expires_at.
CREATE TABLE leases (
    instance_id INTEGER PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    node        TEXT    NOT NULL,
    fence       INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- Renew and RemoveNode find a node's leases.
CREATE INDEX leases_node ON leases (node);
