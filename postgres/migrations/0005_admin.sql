-- 0005: the admin side, shared by the nodes of a cluster: the admin
-- token's SHA-256 (one row) and the console sessions, each kept by the
-- SHA-256 of its id only.
CREATE TABLE admin_token (
    id   int   PRIMARY KEY CHECK (id = 1),
    hash bytea NOT NULL
);

CREATE TABLE console_sessions (
    key        bytea       PRIMARY KEY,
    started_at timestamptz NOT NULL,
    used_at    timestamptz NOT NULL
);
