-- 0002: nodes and instance leases (portrait.Leases), for several portrait
-- processes sharing one database. Every time is the database's clock.

-- One row per node that ever sent a heartbeat.
CREATE TABLE nodes (
    id        text        PRIMARY KEY,
    addr      text        NOT NULL,
    heartbeat timestamptz NOT NULL
);

-- The owner of each instance that has one. A lease is the owner's until
-- expires_at; fence grows (from lease_fences, shared by every instance, so
-- that it grows even across deleting and creating an instance again) each
-- time the lease passes to a new owner or is taken again after it expired.
CREATE SEQUENCE lease_fences;
CREATE TABLE leases (
    instance_id bigint      PRIMARY KEY REFERENCES instances (id) ON DELETE CASCADE,
    node        text        NOT NULL,
    fence       bigint      NOT NULL,
    expires_at  timestamptz NOT NULL
);
-- Renew finds a node's leases.
CREATE INDEX leases_node ON leases (node);
