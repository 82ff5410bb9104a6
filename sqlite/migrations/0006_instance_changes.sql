-- 0006: which instance each generation changed, so that a server follows
-- the changes other processes make (the CLI) one instance at a time
-- instead of re-reading every instance. Only the newest 10,000 are kept;
-- a server further behind re-reads everything.
CREATE TABLE instance_changes (
    gen         INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL
);
